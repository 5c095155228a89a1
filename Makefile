# The two set-up commands of README.md: `make demo` and `make test`. Both install what is
# missing first. Other targets: build, release, man, install, deb, unit, integration, vectors, fuzz, soak, bench, clean.
SWIFT ?= swift
BIN_DIR := $(shell pwd)/.build/debug
RELEASE_DIR := $(shell pwd)/.build/release
# Man pages and shell completions generated from the release binary's argument parser.
GEN_DIR := $(shell pwd)/.build/generated
VERSION := $(shell cat VERSION)
DEB_ARCH := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB := weft_$(VERSION)_$(DEB_ARCH).deb
# The man pages' date: the commit's, so that a rebuild of one commit makes the same pages.
MAN_DATE := $(shell git log -1 --format=%cs 2>/dev/null || date +%F)

# `make install` (DESTDIR for staging). The unit reads $(SYSCONFDIR)/default/weft and the
# password $(SYSCONFDIR)/weft/password; systemd looks for units in $(UNITDIR) for both prefixes.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/weft
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d

.PHONY: all deps build release man install install-files uninstall deb test unit integration vectors fuzz fuzz-smoke soak demo bench clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

# The installable binary: Swift runtime, Foundation and the C++ runtime linked in (Package.swift,
# `installable`), no RUNPATH; it needs only libc, libsodium and libmnl on the host.
release: deps
	@archive=$$($(CC) -print-file-name=libstdc++.a); [ -f "$$archive" ] || { \
	  echo "release: the C++ runtime's archive libstdc++.a is missing; install g++ (scripts/install-deps.sh does)" >&2; exit 1; }; \
	  mkdir -p .build/static-libstdc++ && ln -sf "$$archive" .build/static-libstdc++/libstdc++.a
	$(SWIFT) build -c release --static-swift-stdlib --disable-local-rpath

# Man pages: the generate-manual tool of swift-argument-parser's GenerateManual plugin, run on
# the release binary (the plugin itself would rebuild the release without the flags above);
# `generate-manual --help` builds the tool and nothing else. Completions: the binary's own
# --generate-completion-script.
man: release
	$(SWIFT) package generate-manual --help >/dev/null
	rm -rf $(GEN_DIR) && mkdir -p $(GEN_DIR)/man $(GEN_DIR)/completions
	$(BIN_DIR)/generate-manual-tool $(RELEASE_DIR)/weft --multi-page --section 8 --date $(MAN_DATE) -o $(GEN_DIR)/man
	gzip -9n $(GEN_DIR)/man/*.8
	$(RELEASE_DIR)/weft --generate-completion-script bash > $(GEN_DIR)/completions/weft
	$(RELEASE_DIR)/weft --generate-completion-script zsh > $(GEN_DIR)/completions/_weft
	$(RELEASE_DIR)/weft --generate-completion-script fish > $(GEN_DIR)/completions/weft.fish

install: man
	@$(MAKE) --no-print-directory install-files

# The files of `make install`, from what `make man` left; an existing defaults file is kept.
install-files:
	install -D -s -m 0755 $(RELEASE_DIR)/weft $(DESTDIR)$(BINDIR)/weft
	install -d -m 0755 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR)
	sed -e 's|/usr/local/bin/weft|$(BINDIR)/weft|' -e 's|/etc/|$(SYSCONFDIR)/|g' contrib/weft.service > $(DESTDIR)$(UNITDIR)/weft.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/weft.service
	install -d -m 0700 $(DESTDIR)$(SYSCONFDIR)/weft
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/default/weft ]; then echo "install: kept $(DESTDIR)$(SYSCONFDIR)/default/weft (the new example: contrib/weft.default)"; \
	else install -D -m 0644 contrib/weft.default $(DESTDIR)$(SYSCONFDIR)/default/weft; fi
	install -m 0644 $(GEN_DIR)/man/*.8.gz $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 README.md docs/operations.md $(DESTDIR)$(DOCDIR)/
	install -D -m 0644 $(GEN_DIR)/completions/weft $(DESTDIR)$(BASHCOMPDIR)/weft
	install -D -m 0644 $(GEN_DIR)/completions/_weft $(DESTDIR)$(ZSHCOMPDIR)/_weft
	install -D -m 0644 $(GEN_DIR)/completions/weft.fish $(DESTDIR)$(FISHCOMPDIR)/weft.fish

# Removes what install-files put there, but the defaults file and $(SYSCONFDIR)/weft.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/weft $(DESTDIR)$(UNITDIR)/weft.service $(DESTDIR)$(MANDIR)/man8/weft.*8.gz \
	  $(DESTDIR)$(BASHCOMPDIR)/weft $(DESTDIR)$(ZSHCOMPDIR)/_weft $(DESTDIR)$(FISHCOMPDIR)/weft.fish
	rm -rf $(DESTDIR)$(DOCDIR)

# weft_VERSION_ARCH.deb: the same install under /usr (the unit in /lib/systemd/system, zsh's
# Debian folder), packaged by scripts/make-deb.sh.
deb: man
	rm -rf .build/deb
	@$(MAKE) --no-print-directory install-files DESTDIR=$(shell pwd)/.build/deb PREFIX=/usr UNITDIR=/lib/systemd/system \
	  ZSHCOMPDIR=/usr/share/zsh/vendor-completions
	scripts/make-deb.sh .build/deb $(VERSION) $(DEB_ARCH) $(DEB)

# Every test: unit tests (no privileges) and integration tests (root: network namespaces;
# without root they report that they were skipped and why); then the tests that need kernel
# modules this kernel lacks, inside the OVS VM (scripts/test-in-vm.sh); the vectors last.
# The package is built first: PackageInstallTests installs it into a scratch root.
test: deps deb
	$(SWIFT) build --build-tests
	WEFT_BIN_DIR=$(BIN_DIR) WEFT_DEB=$(shell pwd)/$(DEB) $(SWIFT) test --skip-build
	WEFT_BIN_DIR=$(BIN_DIR) scripts/test-in-vm.sh
	@$(MAKE) --no-print-directory vectors
	$(MAKE) fuzz-smoke
	SOAK_SECONDS=60 ROTATE_SECONDS=30 $(MAKE) soak

unit: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --skip IntegrationTests

integration: deps
	$(SWIFT) build --build-tests
	WEFT_BIN_DIR=$(BIN_DIR) $(SWIFT) test --skip-build --filter IntegrationTests

# Every test vector in Keys/vectors (Keys/README.md), public and Weft's own, through weft-vectors.
vectors: deps
	$(SWIFT) build --product weft-vectors
	$(BIN_DIR)/weft-vectors Keys/vectors/*.json

# Every libFuzzer target (Tests/Fuzz, docs/fuzzing.md) for FUZZ_SECONDS (60) each, with coverage and
# AddressSanitizer: executions and coverage per target; non-zero when one crashed.
FUZZ_SECONDS ?= 60
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

# What `make test` runs: each target over its seeds and regression inputs, then 2 s of fuzzing,
# so a build break or a known crash fails.
fuzz-smoke: deps
	FUZZ_SECONDS=2 scripts/fuzz.sh

# Bidirectional iperf3 across two encrypted links with rekeys every 10 s and a password rotation
# every ROTATE_SECONDS (300) for SOAK_SECONDS (1800): stalls, RSS and descriptor growth
# (scripts/soak.sh, docs/operations.md "Under faults"); `make test` runs it for 60 s.
SOAK_SECONDS ?= 1800
ROTATE_SECONDS ?= 300
soak: build
	SOAK_SECONDS=$(SOAK_SECONDS) ROTATE_SECONDS=$(ROTATE_SECONDS) WEFT=$(BIN_DIR)/weft scripts/soak.sh

demo: build
	WEFT=$(BIN_DIR)/weft scripts/demo.sh

# Throughput (1 and 4 streams), CPU per Gbit, ping idle and under load, peak RSS and the throughput
# issue's targets side by side (raw veth, kernel VXLAN, wireguard-go, Weft sleeve) with the release
# build; root. Knobs: BENCH_SECONDS, BENCH_RUNS, BENCH_CASES, BENCH_STALL (see scripts/bench.sh).
bench: release
	WEFT=$(shell pwd)/.build/release/weft scripts/bench.sh

clean:
	rm -rf .build .build-fuzz weft_*.deb

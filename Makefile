# The two set-up commands of README.md: `make demo` and `make test`. Both install what is
# missing first. Other targets: build, release, unit, integration, fuzz, bench, clean.
SWIFT ?= swift
BIN_DIR := $(shell pwd)/.build/debug

.PHONY: all deps build release test unit integration fuzz fuzz-smoke demo bench clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# Every test: unit tests (no privileges) and integration tests (root: network namespaces;
# without root they report that they were skipped and why); then the tests that need kernel
# modules this kernel lacks, inside the OVS VM (scripts/test-in-vm.sh); the vectors last.
test: deps
	$(SWIFT) build --build-tests
	WEFT_BIN_DIR=$(BIN_DIR) $(SWIFT) test --skip-build
	WEFT_BIN_DIR=$(BIN_DIR) scripts/test-in-vm.sh
	$(BIN_DIR)/weft-vectors Keys/vectors/*.json
	$(MAKE) fuzz-smoke

unit: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --skip IntegrationTests

integration: deps
	$(SWIFT) build --build-tests
	WEFT_BIN_DIR=$(BIN_DIR) $(SWIFT) test --skip-build --filter IntegrationTests

# Every libFuzzer target (Tests/Fuzz, docs/fuzzing.md) for FUZZ_SECONDS (60) each, with coverage and
# AddressSanitizer: executions and coverage per target; non-zero when one crashed.
FUZZ_SECONDS ?= 60
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

# What `make test` runs: each target over its seeds and regression inputs, then 2 s of fuzzing,
# so a build break or a known crash fails.
fuzz-smoke: deps
	FUZZ_SECONDS=2 scripts/fuzz.sh

demo: build
	WEFT=$(BIN_DIR)/weft scripts/demo.sh

# Throughput (1 and 4 streams), CPU per Gbit, ping idle and under load, peak RSS and the throughput
# issue's targets side by side (raw veth, kernel VXLAN, wireguard-go, Weft sleeve) with the release
# build; root. Knobs: BENCH_SECONDS, BENCH_RUNS, BENCH_CASES, BENCH_STALL (see scripts/bench.sh).
bench: release
	WEFT=$(shell pwd)/.build/release/weft scripts/bench.sh

clean:
	rm -rf .build .build-fuzz

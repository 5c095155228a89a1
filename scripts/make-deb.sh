#!/usr/bin/env bash
# Turns a staged install (`make install DESTDIR=ROOT PREFIX=/usr …`, done by `make deb`) into
# weft_VERSION_ARCH.deb: the control file (Depends from the binary's own shared libraries, as
# dpkg-shlibdeps finds them), the defaults file as a conffile, md5sums, and the maintainer
# scripts of contrib/deb. Usage: scripts/make-deb.sh ROOT VERSION ARCH OUTPUT.deb
set -euo pipefail
root=$(cd "$1" && pwd) version=$2 arch=$3 output=$4
repo=$(cd "$(dirname "$0")/.." && pwd)
binary="$root/usr/bin/weft"
[ -x "$binary" ] || { echo "make-deb: $binary is missing; run make deb (it stages the install first)" >&2; exit 1; }

# dpkg-shlibdeps reads the package names from a debian/control; it only needs a stub one.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/debian"
printf 'Source: weft\n\nPackage: weft\nArchitecture: any\n' > "$work/debian/control"
depends=$(cd "$work" && dpkg-shlibdeps -O -e "$binary" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "make-deb: dpkg-shlibdeps found no dependencies for $binary" >&2; exit 1; }

mkdir -p "$root/DEBIAN"
install -m 0755 "$repo"/contrib/deb/postinst "$repo"/contrib/deb/prerm "$repo"/contrib/deb/postrm "$root/DEBIAN/"
echo /etc/default/weft > "$root/DEBIAN/conffiles"
(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
installed_kib=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: weft
Version: $version
Architecture: $arch
Maintainer: ${DEB_MAINTAINER:-Weft developers <weft@localhost>}
Installed-Size: $installed_kib
Depends: $depends
Section: net
Priority: optional
Description: encrypted overlay network router
 One weft router runs on each host; the routers find each other over an
 encrypted gossip link and carry the Ethernet frames of attached workloads
 between hosts, through the kernel's fast datapath on trusted links and
 encrypted UDP elsewhere. The package installs the weft command, the
 weft.service unit (enabled, not started), /etc/default/weft, man pages
 (man weft) and bash, zsh and fish completions.
CONTROL
dpkg-deb --root-owner-group --build "$root" "$output" >/dev/null
echo "make-deb: $output ($(du -k "$output" | cut -f1) KiB; Depends: $depends)"

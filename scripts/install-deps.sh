#!/usr/bin/env bash
# Installs the Debian packages Weft needs to build, test, demo, benchmark and package (g++ for
# libstdc++.a, dpkg-dev for dpkg-shlibdeps, man-db for the man page check, graphviz for the
# `weft status topology --dot` check, chromium and a font for the mesh page's headless-browser
# test), when missing.
# Idempotent: does nothing (and needs no network) when everything is there.
set -euo pipefail
packages=(libsodium-dev libmnl-dev pkg-config g++ dpkg-dev binutils man-db graphviz iproute2 iputils-ping tcpdump iperf3 netcat-openbsd procps psmisc nftables conntrack ethtool wireguard-go wireguard-tools cpio qemu-system-x86 chromium fonts-dejavu-core)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The metrics test parses /metrics with the reference Prometheus text parser (PyPI).
python_ok() { python3 -c 'import prometheus_client' 2>/dev/null; }
if [ ${#missing[@]} -eq 0 ]; then
  python_ok || python3 -m pip install --quiet prometheus-client
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
python_ok || python3 -m pip install --quiet prometheus-client

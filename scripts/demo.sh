#!/usr/bin/env bash
# `make demo`: three Weft routers in three network namespaces joined by an underlay switch,
# started with a password. Waits for the full mesh, shows one router's connections, and removes
# everything it created on exit, also on Ctrl-C.
set -euo pipefail
WEFT=${WEFT:-.build/debug/weft}
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (it creates network namespaces)" >&2; exit 1; }
[ -x "$WEFT" ] || { echo "demo: $WEFT not built; run make build" >&2; exit 1; }

P=weftdemo$$
DIR=$(mktemp -d /tmp/weft-demo.XXXXXX)
PIDS=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for i in 1 2 3; do ip netns del "$P-h$i" 2>/dev/null || true; done
  ip netns del "$P-sw" 2>/dev/null || true
  rm -rf "$DIR"
  echo "demo: cleaned up"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "demo: underlay switch and three hosts (198.18.0.1-3)"
ip netns add "$P-sw"
ip -n "$P-sw" link add br0 type bridge
ip -n "$P-sw" link set br0 up
for i in 1 2 3; do
  ip netns add "$P-h$i"
  ip -n "$P-sw" link add "${P}h$i" type veth peer name eth0 netns "$P-h$i"
  ip -n "$P-sw" link set "${P}h$i" master br0 up
  ip -n "$P-h$i" link set lo up
  ip -n "$P-h$i" link set eth0 up
  ip -n "$P-h$i" addr add "198.18.0.$i/24" dev eth0
done

export WEFT_PASSWORD="demo password, not for production"
launch() {  # host index, peers...
  local i=$1; shift
  ip netns exec "$P-h$i" "$WEFT" launch --nickname "host$i" --socket "$DIR/h$i.sock" --data-dir "$DIR/h$i" "$@" \
    >"$DIR/h$i.log" 2>&1 &
  PIDS+=($!)
}
echo "demo: starting routers (host2 knows host1, host3 knows host2; the rest comes from gossip)"
launch 1
launch 2 198.18.0.1
launch 3 198.18.0.2

established() { "$WEFT" status connections --json --socket "$DIR/h$1.sock" 2>/dev/null | grep -c '"state" : "established"' || true; }
for _ in $(seq 150); do
  if [ "$(established 1)" = 2 ] && [ "$(established 2)" = 2 ] && [ "$(established 3)" = 2 ]; then break; fi
  sleep 0.2
done
if [ "$(established 1)" != 2 ]; then
  echo "demo: the mesh did not form; router logs:" >&2
  cat "$DIR"/h*.log >&2
  exit 1
fi
echo "demo: full mesh established"
echo
echo "\$ weft status"
"$WEFT" status --socket "$DIR/h1.sock"
echo
echo "\$ weft status connections"
"$WEFT" status connections --socket "$DIR/h1.sock"
echo
echo "\$ weft status peers"
"$WEFT" status peers --socket "$DIR/h1.sock"
echo
if [ -n "${WEFT_DEMO_HOLD:-}" ]; then
  echo "demo: holding until Ctrl-C (sockets in $DIR)"
  while true; do sleep 1; done
fi

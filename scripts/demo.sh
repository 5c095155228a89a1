#!/usr/bin/env bash
# `make demo`: three Weft routers in three network namespaces joined by an underlay switch,
# started with a password. Waits for the full mesh, attaches one workload per host, pings across
# the encrypted mesh, runs a short iperf3, shows that a text sent between workloads never
# appears on the underlay, and removes everything it created on exit, also on Ctrl-C.
set -euo pipefail
WEFT=${WEFT:-.build/debug/weft}
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (it creates network namespaces)" >&2; exit 1; }
[ -x "$WEFT" ] || { echo "demo: $WEFT not built; run make build" >&2; exit 1; }

P=weftdemo$$
DIR=$(mktemp -d /tmp/weft-demo.XXXXXX)
. "$(dirname "$0")/netns-mesh.sh"
cleanup() {
  trap - EXIT INT TERM
  mesh_cleanup
  echo "demo: cleaned up"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "demo: underlay switch and three hosts (198.18.0.1-3)"
mesh_underlay

export WEFT_PASSWORD="demo password, not for production"
echo "demo: starting routers (host2 knows host1, host3 knows host2; the rest comes from gossip)"
mesh_launch 1
mesh_launch 2 198.18.0.1
mesh_launch 3 198.18.0.2
mesh_wait_full || { echo "demo: the mesh did not form" >&2; exit 1; }
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

echo "demo: attaching one workload per host (10.47.0.1-3/24)"
for i in 1 2 3; do mesh_workload "$i" "10.47.0.$i/24"; done
for _ in $(seq 50); do
  ip netns exec "$P-w1" ping -c 1 -W 1 10.47.0.3 >/dev/null 2>&1 && break
  sleep 0.2
done
echo "\$ ping 10.47.0.2 and 10.47.0.3 from the workload on host1"
ip netns exec "$P-w1" ping -c 3 -i 0.2 10.47.0.2 | tail -2
ip netns exec "$P-w1" ping -c 3 -i 0.2 10.47.0.3 | tail -2
echo

echo "demo: iperf3 for 3 s from host1's workload to host2's (a debug build, on a shared machine)"
ip netns exec "$P-w2" iperf3 -s -1 -B 10.47.0.2 >/dev/null 2>&1 &
PIDS+=($!)
sleep 0.5
ip netns exec "$P-w1" iperf3 -c 10.47.0.2 -t 3 -f m | grep -E "receiver" | awk '{print "  throughput: " $7 " " $8}'
echo

MARKER="weft-demo-secret-$$"
echo "demo: sending the text '$MARKER' from host1's workload to host3's, capturing the underlay"
ip netns exec "$P-sw" tcpdump -i br0 -U -s 0 -w "$DIR/underlay.pcap" udp >/dev/null 2>&1 &
PIDS+=($!)
ip netns exec "$P-w3" sh -c "nc -l -p 5001 > $DIR/received.txt" &
PIDS+=($!)
sleep 1
ip netns exec "$P-w1" sh -c "echo $MARKER | nc -q 1 -w 3 10.47.0.3 5001" || true
sleep 1
kill "${PIDS[-3]}" 2>/dev/null || true
grep -q "$MARKER" "$DIR/received.txt" && echo "  delivered to host3's workload: yes" || echo "  delivered to host3's workload: NO"
if grep -aq "$MARKER" "$DIR/underlay.pcap"; then echo "  visible on the underlay: YES (not encrypted!)"; else echo "  visible on the underlay: no (encrypted)"; fi
echo
echo "\$ weft status connections --json  (host1, first connection)"
"$WEFT" status connections --json --socket "$DIR/h1.sock" | python3 -c 'import json,sys; c=json.load(sys.stdin)[0]; print(json.dumps({k: c[k] for k in ["peer","mode","encrypted","cipher","mtu","keyEpoch","counters"]}, indent=2))'
echo
if [ -n "${WEFT_DEMO_HOLD:-}" ]; then
  echo "demo: holding until Ctrl-C (sockets in $DIR)"
  while true; do sleep 1; done
fi

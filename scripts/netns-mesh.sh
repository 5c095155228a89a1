# Sourced by scripts/demo.sh and scripts/soak.sh: three hosts 198.18.0.1-3 in network
# namespaces "$P-h1…3" behind an underlay switch "$P-sw", Weft routers on them, and their
# removal. The caller sets P (namespace prefix), DIR (sockets, data dirs, logs), WEFT and
# WEFT_PASSWORD, and keeps PIDS.
PIDS=()

mesh_cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for i in 1 2 3; do ip netns del "$P-h$i" 2>/dev/null || true; ip netns del "$P-w$i" 2>/dev/null || true; done
  ip netns del "$P-sw" 2>/dev/null || true
  rm -rf "$DIR"
}

mesh_underlay() {
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
}

# Host index, then launch arguments; the router's pid goes to PIDS (ip netns exec becomes weft).
mesh_launch() {
  local i=$1; shift
  ip netns exec "$P-h$i" "$WEFT" launch --nickname "host$i" --socket "$DIR/h$i.sock" --data-dir "$DIR/h$i" "$@" \
    >"$DIR/h$i.log" 2>&1 &
  PIDS+=($!)
}

# Connections of host $1 established whose data plane answers heartbeats (`ready`).
mesh_established() {
  "$WEFT" status connections --json --socket "$DIR/h$1.sock" 2>/dev/null |
    python3 -c 'import json,sys; print(sum(1 for c in json.load(sys.stdin) if c["state"] == "established" and c["ready"]))' 2>/dev/null || echo 0
}

# Waits up to 30 s for the full mesh; returns non-zero (logs on stderr) when it does not form.
mesh_wait_full() {
  for _ in $(seq 150); do
    if [ "$(mesh_established 1)" = 2 ] && [ "$(mesh_established 2)" = 2 ] && [ "$(mesh_established 3)" = 2 ]; then return 0; fi
    sleep 0.2
  done
  echo "the mesh did not form; router logs:" >&2
  cat "$DIR"/h*.log >&2
  return 1
}

# A workload namespace "$P-w$1" attached to host $1 with address $2.
mesh_workload() {
  ip netns add "$P-w$1"
  "$WEFT" attach "$P-w$1" "$2" --socket "$DIR/h$1.sock" >/dev/null
}

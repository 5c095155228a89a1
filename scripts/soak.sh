#!/usr/bin/env bash
# `make soak`: bidirectional iperf3 across two encrypted links (workloads on host1↔host2 and
# host2↔host3) for SOAK_SECONDS (1800), with session rekeys every 10 s (--rekey-interval) and a
# password rotation every 5 min (ROTATE_SECONDS). Fails when a 1 s interval of either stream in
# either direction falls below 10 % of that stream's median (a stall), when a router's RSS grows
# by 5 MiB or more after the first minute (after half the run when it is shorter), or when a
# router holds more descriptors at the end than at that point. Prints its figures.
set -euo pipefail
WEFT=${WEFT:-.build/debug/weft}
SOAK_SECONDS=${SOAK_SECONDS:-1800}
ROTATE_SECONDS=${ROTATE_SECONDS:-300}
[ "$(id -u)" -eq 0 ] || { echo "soak: run as root (it creates network namespaces)" >&2; exit 1; }
[ -x "$WEFT" ] || { echo "soak: $WEFT not built; run make build" >&2; exit 1; }

P=weftsoak$$
DIR=$(mktemp -d /tmp/weft-soak.XXXXXX)
. "$(dirname "$0")/netns-mesh.sh"
trap 'trap - EXIT INT TERM; mesh_cleanup' EXIT
trap 'exit 130' INT TERM

mesh_underlay
export WEFT_PASSWORD="soak password one"
for i in 1 2 3; do
  peer=$([ "$i" = 1 ] || echo "198.18.0.1")
  mesh_launch "$i" --rekey-interval 10s --metrics-addr off $peer
done
ROUTERS=("${PIDS[@]}")
mesh_wait_full || { echo "soak: the mesh did not form" >&2; exit 1; }
mesh_workload 1 10.47.0.1/24
mesh_workload 2 10.47.0.2/24
mesh_workload 3 10.47.0.3/24
for _ in $(seq 50); do ip netns exec "$P-w1" ping -c 1 -W 1 10.47.0.3 >/dev/null 2>&1 && break; sleep 0.2; done

ip netns exec "$P-w2" iperf3 -s -B 10.47.0.2 -p 5201 >/dev/null 2>&1 & PIDS+=($!)
ip netns exec "$P-w3" iperf3 -s -B 10.47.0.3 -p 5202 >/dev/null 2>&1 & PIDS+=($!)
sleep 0.5
ip netns exec "$P-w1" iperf3 -c 10.47.0.2 -p 5201 --bidir -t "$SOAK_SECONDS" -i 1 -J >"$DIR/iperf12.json" 2>&1 & IPERF1=$!; PIDS+=($IPERF1)
ip netns exec "$P-w2" iperf3 -c 10.47.0.3 -p 5202 --bidir -t "$SOAK_SECONDS" -i 1 -J >"$DIR/iperf23.json" 2>&1 & IPERF2=$!; PIDS+=($IPERF2)

# RSS (KiB) and descriptors of each router every 5 s; a password rotation every ROTATE_SECONDS.
start=$(date +%s); next_rotation=$((start + ROTATE_SECONDS)); n=0
: >"$DIR/samples"
while kill -0 "$IPERF1" 2>/dev/null || kill -0 "$IPERF2" 2>/dev/null; do
  now=$(date +%s)
  for pid in "${ROUTERS[@]}"; do
    echo "$((now - start)) $pid $(awk '/VmRSS/ {print $2}' /proc/$pid/status) $(ls /proc/$pid/fd | wc -l)" >>"$DIR/samples"
  done
  if [ "$now" -ge "$next_rotation" ]; then
    n=$((n + 1)); printf 'soak password %s\n' "$n" >"$DIR/password-$n"
    "$WEFT" rotate-password --file "$DIR/password-$n" --grace 1m --socket "$DIR/h1.sock" >>"$DIR/rotations.log" 2>&1 ||
      { echo "soak: password rotation $n failed:" >&2; cat "$DIR/rotations.log" >&2; exit 1; }
    next_rotation=$((now + ROTATE_SECONDS))
  fi
  sleep 5
done
for pid in "${ROUTERS[@]}"; do kill -0 "$pid" 2>/dev/null || { echo "soak: a router exited; logs:" >&2; tail -n 20 "$DIR"/h*.log >&2; exit 1; }; done

python3 - "$DIR" "$SOAK_SECONDS" "$n" <<'PY'
import json, statistics, sys
d, seconds, rotations = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
failed = False
for name in ('iperf12', 'iperf23'):
    run = json.load(open(f'{d}/{name}.json'))
    if 'error' in run:
        print(f'soak: {name}: iperf3 error: {run["error"]}'); failed = True; continue
    for key, label in (('sum', 'forward'), ('sum_bidir_reverse', 'reverse')):
        rates = [i[key]['bits_per_second'] for i in run['intervals'] if key in i and i[key]['seconds'] > 0.5]
        median = statistics.median(rates); low = min(rates)
        stalls = sum(1 for r in rates if r < 0.1 * median)
        print(f'FIGURE soak: {name} {label}: {len(rates)} intervals, median {median / 1e6:.0f} Mbit/s, lowest {low / 1e6:.0f} Mbit/s, {stalls} below 10 % of the median')
        failed |= stalls > 0
samples = [line.split() for line in open(f'{d}/samples')]
settle = 60 if seconds > 120 else seconds // 2
for pid in sorted({s[1] for s in samples}):
    mine = [(int(t), int(rss), int(fd)) for t, p, rss, fd in samples if p == pid]
    base = next((m for m in mine if m[0] >= settle), mine[0]); end = mine[-1]
    growth = (end[1] - base[1]) / 1024
    print(f'FIGURE soak: router pid {pid}: RSS {base[1] / 1024:.1f} MiB at {base[0]} s, {end[1] / 1024:.1f} MiB at {end[0]} s (growth {growth:.2f} MiB); descriptors {base[2]} -> {end[2]}')
    failed |= growth >= 5 or end[2] > base[2]
print(f'FIGURE soak: {seconds} s, rekeys every 10 s, {rotations} password rotations')
sys.exit(1 if failed else 0)
PY

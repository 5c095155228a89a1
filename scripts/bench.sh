#!/usr/bin/env bash
# `make bench`: iperf3 throughput (one stream and 4 streams) between two hosts (network
# namespaces on an underlay switch namespace) through raw veth, the kernel VXLAN device,
# wireguard-go (upstream's with its offloads, and Debian's older build) and Weft's encrypted and
# unencrypted sleeve, side by side in one run on one
# machine. All cases are set up at once and the runs go round-robin over them (run 1 of every
# case, then run 2, ...), so that load from elsewhere on a shared machine does not land on one
# case only. Per case: Gbit/s (median of BENCH_RUNS runs), CPU seconds per gigabit, ping
# round-trip time idle and under load (p50, p99), peak RSS of the data-plane processes; ratios to
# the modern wireguard-go ("× wireguard-go 2025") and to raw veth; then the throughput issue's targets as MET / NOT MET, and
# optionally a stall check (one long single-stream run through Weft encrypted sleeve, 1 s
# intervals). Prints the tables and writes them as Markdown to $BENCH_RESULTS (bench-results.md).
#
# Knobs: BENCH_SECONDS (10), BENCH_RUNS (3), BENCH_CASES (all: "veth vxlan wireguard-go-2025
# wireguard-go weft-enc weft-clear"; also weft-enc-base and weft-clear-base: the same with the routers of
# the binary $WEFT_BASE, to compare two builds in one run), BENCH_RESULTS (bench-results.md), WEFT (.build/release/weft),
# BENCH_STALL (1 when BENCH_SECONDS >= 10, else 0; needs weft-enc among the cases),
# BENCH_STALL_SECONDS (60), WG_MODERN (wireguard-go-modern: upstream wireguard-go 0.0.20250522
# or newer, with its TUN and UDP offloads; docs/benchmarks.md, "The baseline").
#
# Everything it creates carries the prefix wb<pid>: namespaces, interface names, the temp dir,
# wireguard-go's UAPI sockets. It never touches the root namespace's interfaces and only signals
# processes it started (pid and start time recorded at start, checked before every signal).
#
# How measurements flow: each case records raw samples, one line each, into $DIR/samples.tsv
# ("case<TAB>run<TAB>metric<TAB>value"; run is "-" for per-case values). The report at the end
# (python3) turns them into the table; to add a column, record a new metric and add one line to
# COLUMNS in report().
set -euo pipefail

WEFT=${WEFT:-.build/release/weft}
SECONDS_PER_RUN=${BENCH_SECONDS:-10}
RUNS=${BENCH_RUNS:-3}
ALL_CASES="veth vxlan wireguard-go-2025 wireguard-go weft-enc weft-clear"
export WG_MODERN=${WG_MODERN:-wireguard-go-modern}
CASES=${BENCH_CASES:-$ALL_CASES}
RESULTS=${BENCH_RESULTS:-bench-results.md}
if [ "$SECONDS_PER_RUN" -ge 10 ]; then STALL=${BENCH_STALL:-1}; else STALL=${BENCH_STALL:-0}; fi
STALL_SECONDS=${BENCH_STALL_SECONDS:-60}
case " $CASES " in *" weft-enc "*) ;; *) STALL=0 ;; esac

[ "$(id -u)" -eq 0 ] || { echo "bench: run as root (it creates network namespaces)" >&2; exit 1; }
for c in $CASES; do
  case " $ALL_CASES weft-enc-base weft-clear-base " in *" $c "*) ;; *) echo "bench: unknown case '$c' (known: $ALL_CASES weft-enc-base weft-clear-base)" >&2; exit 1 ;; esac
done
need() { command -v "$1" >/dev/null || { echo "bench: $1 missing; run scripts/install-deps.sh" >&2; exit 1; }; }
need iperf3; need python3; need ip; need ping
case " $CASES " in *" wireguard-go "*) need wireguard-go; need wg ;; esac
case " $CASES " in *" wireguard-go-2025 "*)
  command -v "$WG_MODERN" >/dev/null || { echo "bench: $WG_MODERN missing: install upstream wireguard-go 0.0.20250522 or newer as wireguard-go-modern or set WG_MODERN to it (docs/benchmarks.md, \"The baseline\"), or leave wireguard-go-2025 out of BENCH_CASES" >&2; exit 1; }
  need wg; need ethtool ;;
esac
case " $CASES " in *" weft-"*) [ -x "$WEFT" ] || { echo "bench: $WEFT not built; run make release" >&2; exit 1; } ;; esac
WEFT=$(readlink -f "$WEFT" || echo "$WEFT")

P=wb$$
DIR=$(mktemp -d "/tmp/weft-bench-$P.XXXXXX")
SAMPLES=$DIR/samples.tsv
: >"$SAMPLES"
: >"$DIR/pids"
CLK_TCK=$(getconf CLK_TCK)
export WEFT_PASSWORD="weft bench password, not for production"

# --- processes we started: "pid starttime" lines in $DIR/pids -------------------------------

starttime() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }
# True while `pid` is the very process we started (same start time) and not yet a zombie.
ours_alive() {
  local pid=$1 st=$2 stat
  stat=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$(cut -d' ' -f20 <<<"$stat")" = "$st" ] && [ "$(cut -d' ' -f1 <<<"$stat")" != Z ]
}
running() { local stat; stat=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) && [ "${stat%% *}" != Z ]; }
# start_bg NETNS LOG CMD...: runs CMD in NETNS in the background (ip netns exec execs, so $! is
# CMD's own pid); sets BG_PID.
start_bg() {
  local ns=$1 log=$2; shift 2
  ip netns exec "$ns" "$@" >"$log" 2>&1 &
  BG_PID=$!
  echo "$BG_PID $(starttime "$BG_PID")" >>"$DIR/pids"
}
stop_started() {
  local pid st i
  [ -s "$DIR/pids" ] || return 0
  while read -r pid st; do ours_alive "$pid" "$st" && kill -TERM "$pid" 2>/dev/null || true; done <"$DIR/pids"
  for i in $(seq 50); do
    local any=0
    while read -r pid st; do ours_alive "$pid" "$st" && any=1; done <"$DIR/pids"
    [ $any = 0 ] && break
    sleep 0.1
  done
  while read -r pid st; do ours_alive "$pid" "$st" && kill -KILL "$pid" 2>/dev/null || true; done <"$DIR/pids"
  while read -r pid st; do wait "$pid" 2>/dev/null || true; done <"$DIR/pids"
  : >"$DIR/pids"
}
del_namespaces() {
  local ns
  for ns in $(ip netns list | awk '{print $1}' | grep -e "^$P-" || true); do ip netns del "$ns" 2>/dev/null || true; done
  rm -f /var/run/wireguard/"$P"[gm][12].sock
}
teardown() { stop_started; del_namespaces; }

PREPARING=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$PREPARING" ]; then
    echo "bench: setting up $PREPARING failed (exit $status); its logs:" >&2
    for f in "$DIR/$PREPARING"-*.log; do
      [ -s "$f" ] && { echo "== $f" >&2; tail -n 20 "$f" >&2; }
    done
  fi
  teardown
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- topology ------------------------------------------------------------------------------

netns_add() { ip netns add "$1"; ip -n "$1" link set lo up; ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1; }

# Two hosts $N-h1, $N-h2 with eth0 198.18.0.1/24, .2/24 (MTU 1500) on a bridge in $N-sw.
underlay() {
  local i
  netns_add "$N-sw"
  ip -n "$N-sw" link add br0 type bridge
  ip -n "$N-sw" link set br0 up
  for i in 1 2; do
    netns_add "$N-h$i"
    ip -n "$N-sw" link add "${P}h$i" type veth peer name eth0 netns "$N-h$i"
    ip -n "$N-sw" link set "${P}h$i" master br0 mtu 1500 up
    ip -n "$N-h$i" link set eth0 mtu 1500 up
    ip -n "$N-h$i" addr add "198.18.0.$i/24" dev eth0
  done
}

wait_ping() {  # NETNS ADDRESS: until one ping answers (15 s)
  local i
  for i in $(seq 75); do ip netns exec "$1" ping -c 1 -W 1 "$2" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "bench: $2 not reachable from $1" >&2; return 1
}

# Each setup_<case> builds its topology and sets CLIENT_NS, SERVER_NS, SERVER_ADDR and PROCS
# (pids of the userspace data plane: its CPU time and peak RSS are reported).

setup_veth() {
  netns_add "$N-h1"; netns_add "$N-h2"
  ip -n "$N-h1" link add eth0 type veth peer name eth0 netns "$N-h2"
  ip -n "$N-h1" addr add 198.18.0.1/24 dev eth0; ip -n "$N-h1" link set eth0 up
  ip -n "$N-h2" addr add 198.18.0.2/24 dev eth0; ip -n "$N-h2" link set eth0 up
  CLIENT_NS=$N-h1 SERVER_NS=$N-h2 SERVER_ADDR=198.18.0.2 PROCS=""
}

setup_vxlan() {
  underlay
  local i
  for i in 1 2; do
    ip -n "$N-h$i" link add vxlan42 type vxlan id 42 dstport 4789 remote "198.18.0.$((3 - i))" dev eth0
    ip -n "$N-h$i" link set vxlan42 mtu 1450 up
    ip -n "$N-h$i" addr add "10.48.0.$i/24" dev vxlan42
  done
  CLIENT_NS=$N-h1 SERVER_NS=$N-h2 SERVER_ADDR=10.48.0.2 PROCS=""
}

setup_wireguard-go() {  # [binary] [device-name letter]
  local bin=${1:-wireguard-go} g=${P}${2:-g}
  underlay
  local i key pub1 pub2
  mkdir -p "$DIR/wg-$CASE"
  for i in 1 2; do
    (umask 077; wg genkey >"$DIR/wg-$CASE/key$i")
    wg pubkey <"$DIR/wg-$CASE/key$i" >"$DIR/wg-$CASE/pub$i"
  done
  PROCS=""
  for i in 1 2; do
    # Interface names are unique per run: the UAPI socket /var/run/wireguard/NAME.sock is not
    # per namespace.
    start_bg "$N-h$i" "$DIR/$CASE-h$i.log" env WG_PROCESS_FOREGROUND=1 "$bin" "$g$i"
    PROCS="$PROCS $BG_PID"
  done
  for i in 1 2; do
    local j=$((3 - i)) n
    for n in $(seq 50); do [ -S "/var/run/wireguard/$g$i.sock" ] && break; sleep 0.1; done
    ip netns exec "$N-h$i" wg set "$g$i" listen-port 51820 private-key "$DIR/wg-$CASE/key$i" \
      peer "$(cat "$DIR/wg-$CASE/pub$j")" allowed-ips 10.49.0.0/24 endpoint "198.18.0.$j:51820"
    ip -n "$N-h$i" addr add "10.49.0.$i/24" dev "$g$i"
    ip -n "$N-h$i" link set "$g$i" mtu 1420 up
  done
  CLIENT_NS=$N-h1 SERVER_NS=$N-h2 SERVER_ADDR=10.49.0.2
}
# Upstream's with its offloads: the tunnel device must show them on (TUN TSO through the
# virtio-net header; UDP GSO/GRO are socket options and do not show in ethtool).
setup_wireguard-go-2025() {
  setup_wireguard-go "$WG_MODERN" m
  local k
  k=$(ip netns exec "$N-h1" ethtool -k "${P}m1" | awk -F': ' '/^(tcp-segmentation-offload|tx-tcp6-segmentation|generic-receive-offload|tx-udp-segmentation):/ {printf "%s%s %s", sep, $1, $2; sep=", "}')
  sample - note "$("$WG_MODERN" --version 2>/dev/null | head -1 | sed 's/^wireguard-go //'); ethtool -k: $k"
  case "$k" in *"tcp-segmentation-offload on"*) ;; *) echo "bench: $WG_MODERN runs without TSO on its TUN device ($k): not the modern baseline" >&2; return 1 ;; esac
}

# Waits until router `i` shows an established sleeve connection that is ready and has the
# expected `encrypted` (true/false).
weft_ready() {
  local i=$1 encrypted=$2 n pid
  for n in $(seq 100); do
    for pid in $PROCS; do
      running "$pid" || { echo "bench: $CASE: router $pid exited" >&2; return 1; }
    done
    if "$WEFT" status connections --json --socket "$DIR/$CASE-h$i.sock" 2>/dev/null | python3 -c '
import json, sys
want = sys.argv[1] == "true"
try:
    doc = json.load(sys.stdin)
except ValueError:
    sys.exit(1)  # the router is not answering yet
conns = doc if isinstance(doc, list) else doc.get("connections", [])
ok = [c for c in conns if c.get("state") == "established" and c.get("mode") == "sleeve" and c.get("ready")]
if not ok: sys.exit(1)
if ok[0].get("encrypted") != want:
    sys.exit("bench: connection encrypted=%s, expected %s" % (ok[0].get("encrypted"), want))
' "$encrypted"; then return 0; fi
    sleep 0.2
  done
  echo "bench: router h$i has no ready sleeve connection; its status:" >&2
  "$WEFT" status connections --json --socket "$DIR/$CASE-h$i.sock" >&2 || true
  return 1
}

setup_weft() {  # extra launch flags...
  underlay
  local i
  PROCS=""
  for i in 1 2; do
    local peers=()
    [ "$i" = 2 ] && peers=(198.18.0.1)
    start_bg "$N-h$i" "$DIR/$CASE-h$i.log" "${WEFT_LAUNCH:-$WEFT}" launch --nickname "bench$i" --socket "$DIR/$CASE-h$i.sock" \
      --data-dir "$DIR/$CASE-h$i" "$@" "${peers[@]}"
    PROCS="$PROCS $BG_PID"
  done
  local encrypted=true
  case " $* " in *" --trusted-subnets "*) encrypted=false ;; esac
  weft_ready 1 $encrypted
  weft_ready 2 $encrypted
  sample - note "cipher: $("$WEFT" status connections --json --socket "$DIR/$CASE-h1.sock" | python3 -c '
import json, sys
print(next(c for c in json.load(sys.stdin) if c["state"] == "established").get("cipher") or "none")')"
  for i in 1 2; do
    netns_add "$N-w$i"
    "$WEFT" attach "$N-w$i" "10.47.0.$i/24" --socket "$DIR/$CASE-h$i.sock" >/dev/null
  done
  CLIENT_NS=$N-w1 SERVER_NS=$N-w2 SERVER_ADDR=10.47.0.2
}
setup_weft-enc() { setup_weft; }
setup_weft-clear() { setup_weft --trusted-subnets 198.18.0.0/24; }
# The same two with the routers of another build ($WEFT_BASE), for before/after in one run.
setup_weft-enc-base() { WEFT_LAUNCH=${WEFT_BASE:?set WEFT_BASE to the other weft binary} setup_weft; }
setup_weft-clear-base() { WEFT_LAUNCH=${WEFT_BASE:?set WEFT_BASE to the other weft binary} setup_weft --trusted-subnets 198.18.0.0/24; }

# --- measurement ---------------------------------------------------------------------------

sample() { printf '%s\t%s\t%s\t%s\n' "$CASE" "$1" "$2" "$3" >>"$SAMPLES"; }
cpu_jiffies() {  # "busy total" over all CPUs since boot, from /proc/stat
  local _ user nice system idle iowait irq softirq steal
  read -r _ user nice system idle iowait irq softirq steal _ </proc/stat
  echo "$((user + nice + system + irq + softirq)) $((user + nice + system + idle + iowait + irq + softirq + steal))"
}
procs_ticks() {  # utime+stime of PROCS, summed
  local pid sum=0 f
  for pid in $PROCS; do
    f=($(sed 's/.*) //' "/proc/$pid/stat"))
    sum=$((sum + f[11] + f[12]))
  done
  echo $sum
}
procs_hwm_kib() {  # largest VmHWM of PROCS
  local pid max=0 v
  for pid in $PROCS; do
    v=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
    [ "$v" -gt "$max" ] && max=$v
  done
  echo $max
}

# Phase 1 for one case: topology, data plane, reachability, iperf3 server. What later phases
# need is handed on in $DIR/CASE.env.
prepare() {
  N=$P-$CASE
  "setup_$CASE"
  wait_ping "$CLIENT_NS" "$SERVER_ADDR"
  start_bg "$SERVER_NS" "$DIR/$CASE-iperf-server.log" iperf3 -s -B "$SERVER_ADDR"
  local n
  for n in $(seq 50); do
    ip netns exec "$SERVER_NS" ss -Htln 'sport = :5201' | grep -q . && break
    sleep 0.1
  done
  printf 'CLIENT_NS=%q SERVER_NS=%q SERVER_ADDR=%q PROCS=%q\n' "$CLIENT_NS" "$SERVER_NS" "$SERVER_ADDR" "$PROCS" >"$DIR/$CASE.env"
}

# ping_samples FILE RUN METRIC: every round-trip time in ping's output FILE as one sample
# (METRIC, in ms), and the number of pings sent without a reply as METRIC_lost.
ping_samples() {
  local t
  python3 -c '
import re, sys
text = open(sys.argv[1]).read()
for t in re.findall(r"time=([0-9.]+)", text):
    print("rtt", t)
m = re.search(r"(\d+) packets transmitted, (\d+) received", text)
print("lost", int(m.group(1)) - int(m.group(2)) if m else "nan")' "$1" >"$1.parsed"
  while read -r kind t; do
    if [ "$kind" = rtt ]; then sample "$2" "$3" "$t"; else sample "$2" "$3_lost" "$t"; fi
  done <"$1.parsed"
}

# Phase 2: idle round-trip time, 300 pings 10 ms apart, while nothing else of the bench runs.
ping_idle() {
  ip netns exec "$CLIENT_NS" ping -c 300 -i 0.01 -W 1 "$SERVER_ADDR" >"$DIR/$CASE-ping-idle.txt" 2>&1 || true
  ping_samples "$DIR/$CASE-ping-idle.txt" idle rtt_idle_ms
}

# Phase 3: one iperf3 run ($1 = run number, $2 = parallel streams) with machine CPU and
# data-plane process CPU. Metrics carry the stream count as suffix (gbps1, gbps4, ...). During a
# single-stream run, ping measures the round-trip time under load on the same path: from 1 s
# into the run, up to 300 pings 10 ms apart (fewer when the run is short, so that they end
# before iperf3 does).
iperf_run() {
  local run=$1 streams=$2 busy0 total0 busy1 total1 t0 t1 out json=$DIR/$CASE-run$1-P$2.json
  local pingpid="" pingfile=$DIR/$CASE-ping-load$1.txt count delay=1
  [ "$SECONDS_PER_RUN" -ge 3 ] || delay=0
  count=$(( (SECONDS_PER_RUN - delay - 1) * 100 ))
  [ "$count" -le 300 ] || count=300
  [ "$count" -ge 20 ] || count=20
  read -r busy0 total0 < <(cpu_jiffies)
  t0=$(procs_ticks)
  if [ "$streams" = 1 ]; then
    (sleep "$delay"; exec ip netns exec "$CLIENT_NS" ping -c "$count" -i 0.01 -W 1 "$SERVER_ADDR") >"$pingfile" 2>&1 &
    pingpid=$!
  fi
  ip netns exec "$CLIENT_NS" iperf3 -c "$SERVER_ADDR" -t "$SECONDS_PER_RUN" -P "$streams" -J >"$json" || true
  read -r busy1 total1 < <(cpu_jiffies)
  t1=$(procs_ticks)
  if [ -n "$pingpid" ]; then
    wait "$pingpid" || true
    ping_samples "$pingfile" "$run" rtt_load_ms
  fi
  # gbps, gigabits moved (bytes received), and the CPU figures per run and per gigabit.
  out=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
if "error" in d: sys.exit("bench: %s: iperf3: %s" % (sys.argv[2], d["error"]))
r = d["end"]["sum_received"]
gbit = r["bytes"] * 8 / 1e9
busy, total, procs, tck, has_procs = [int(x) for x in sys.argv[3:8]]
busy_s = busy / tck
print("gbps", r["bits_per_second"] / 1e9)
print("cpu_pct", 100 * busy / max(1, total))
print("machine_cpu_s", busy_s)
print("machine_cpu_s_per_gbit", busy_s / gbit if gbit else "nan")
if has_procs:
    print("proc_cpu_s", procs / tck)
    print("proc_cpu_s_per_gbit", procs / tck / gbit if gbit else "nan")
' "$json" "$CASE" $((busy1 - busy0)) $((total1 - total0)) $((t1 - t0)) "$CLK_TCK" "$([ -n "$PROCS" ] && echo 1 || echo 0)")
  local metric value
  while read -r metric value; do sample "$run" "$metric$streams" "$value"; done <<<"$out"
  printf 'bench: run %d/%d  %-12s -P %d %6.2f Gbit/s\n' "$run" "$RUNS" "$CASE" "$streams" \
    "$(awk '$1 == "gbps" {print $2}' <<<"$out")"
}

# Phase 3b (optional, weft-enc only): one long single-stream run with 1 s intervals; every
# interval's Gbit/s is a sample (stall_gbps), the whole run's too (stall_total_gbps).
stall_run() {
  local json=$DIR/$CASE-stall.json
  echo "bench: stall check: $STALL_SECONDS s single stream through $CASE"
  ip netns exec "$CLIENT_NS" iperf3 -c "$SERVER_ADDR" -t "$STALL_SECONDS" -i 1 -J >"$json" || true
  # A failure here is reported in the targets block; it does not mark the case failed.
  python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
if "error" in d: sys.exit("bench: %s: stall check: iperf3: %s" % (sys.argv[2], d["error"]))
for iv in d["intervals"]:
    s = iv["sum"]
    if s["seconds"] >= 0.5:  # iperf3 may end with a sliver of an interval; it says nothing
        print("stall_gbps", s["bits_per_second"] / 1e9)
print("stall_total_gbps", d["end"]["sum_received"]["bits_per_second"] / 1e9)
' "$json" "$CASE" >"$json.parsed" || { : >"$json.parsed"; sample - stall_failed 1; }
  local metric value
  while read -r metric value; do
    if [ "$metric" = stall_total_gbps ]; then sample - "$metric" "$value"; else sample stall "$metric" "$value"; fi
  done <"$json.parsed"
}

# Phase 4: per-case values read at the end (peak RSS of the data-plane processes).
finish() {
  if [ -n "$PROCS" ]; then sample - proc_peak_rss_mib "$(python3 -c "print($(procs_hwm_kib) / 1024)")"; fi
}

# step CASE FUNCTION ARGS...: runs one later phase of a case (one that starts no process) in a
# subshell with errexit; a failure marks the case failed (it is left out of the following phases)
# and the bench goes on with the others.
step() {
  CASE=$1; shift
  [ -e "$DIR/$CASE.failed" ] && return 0
  local rc
  set +e
  (
    set -e
    if [ -e "$DIR/$CASE.env" ]; then source "$DIR/$CASE.env"; fi
    "$@"
  )
  rc=$?
  set -e
  if [ $rc -ne 0 ]; then
    touch "$DIR/$CASE.failed"
    sample - failed 1
    echo "bench: $CASE failed in $1 (exit $rc)" >&2
  fi
}

# --- report --------------------------------------------------------------------------------

report() {
  python3 - "$SAMPLES" "$RESULTS" "$CASES" "$SECONDS_PER_RUN" "$RUNS" "$WEFT" "$STALL" "$STALL_SECONDS" <<'EOF'
import math, statistics, sys, os, subprocess, platform, datetime
samples, results, cases, secs, runs, weft = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4], sys.argv[5], sys.argv[6]
stall_on, stall_secs = sys.argv[7] == "1", sys.argv[8]

LABELS = {
    "veth": "raw veth",
    "vxlan": "kernel VXLAN",
    "wireguard-go": "wireguard-go (Debian, 2022)",
    "wireguard-go-2025": "wireguard-go 2025",
    "weft-enc": "Weft sleeve, encrypted",
    "weft-clear": "Weft sleeve, unencrypted",
    "weft-enc-base": "Weft sleeve, encrypted (%s)" % os.environ.get("WEFT_BASE", "WEFT_BASE"),
    "weft-clear-base": "Weft sleeve, unencrypted (%s)" % os.environ.get("WEFT_BASE", "WEFT_BASE"),
}
# Ratios are against the modern wireguard-go when it is among the cases.
BASELINE = "wireguard-go-2025" if "wireguard-go-2025" in cases else "wireguard-go"
RAW = "veth"
BL = LABELS[BASELINE].split(" (")[0]
per_run, per_case = {}, {}
for line in open(samples):
    case, run, metric, value = line.rstrip("\n").split("\t")
    if run == "-":
        try:
            per_case.setdefault(case, {})[metric] = float(value)
        except ValueError:
            per_case.setdefault(case, {})[metric] = value
    else:
        per_run.setdefault(case, {}).setdefault(metric, []).append(float(value))

def vals(case, metric):
    return [v for v in per_run.get(case, {}).get(metric, []) if not math.isnan(v)]

def med(case, metric):
    v = vals(case, metric)
    return statistics.median(v) if v else per_case.get(case, {}).get(metric)

def pct(case, metric, p):  # nearest-rank percentile of every sample of `metric`
    v = sorted(vals(case, metric))
    return v[max(0, math.ceil(p / 100 * len(v)) - 1)] if v else None

def ratio(f, base):
    def g(case):
        a, b = f(case), f(base)
        return a / b if a is not None and b else None
    return g

def gbps(n): return lambda c: med(c, "gbps%d" % n)
def cpu_per_gbit(n):  # tunnel processes where there are any, else the machine's busy CPU
    return lambda c: med(c, "proc_cpu_s_per_gbit%d" % n) if vals(c, "proc_cpu_s_per_gbit%d" % n) else med(c, "machine_cpu_s_per_gbit%d" % n)
def runs_of(metric): return lambda c: per_run.get(c, {}).get(metric)
def lost(metric):
    def f(c):
        v = per_run.get(c, {}).get(metric + "_lost")
        n = len(vals(c, metric))
        return None if v is None else "%d / %d" % (sum(v), sum(v) + n)
    return f
def note(c):
    parts = []
    if per_case.get(c, {}).get("note"): parts.append(per_case[c]["note"])
    if c in per_run and not vals(c, "proc_cpu_s1"): parts.append("CPU s/Gbit: machine busy CPU (kernel data path)")
    elif c in per_run: parts.append("CPU s/Gbit: both tunnel processes")
    return "; ".join(parts) or None

# The tables' columns: (header, value for a case, format). Add a column here.
THROUGHPUT = [
    ("1 stream Gbit/s", gbps(1), "{:.2f}"),
    ("runs", runs_of("gbps1"), None),
    ("× " + BL, ratio(gbps(1), BASELINE), "{:.2f}×"),
    ("× raw veth", ratio(gbps(1), RAW), "{:.3f}×"),
    ("4 streams Gbit/s", gbps(4), "{:.2f}"),
    ("runs", runs_of("gbps4"), None),
    ("× " + BL, ratio(gbps(4), BASELINE), "{:.2f}×"),
    ("× raw veth", ratio(gbps(4), RAW), "{:.3f}×"),
    ("CPU s/Gbit 1 stream", cpu_per_gbit(1), "{:.2f}"),
    ("CPU s/Gbit 4 streams", cpu_per_gbit(4), "{:.2f}"),
    ("machine busy CPU s/Gbit 1 / 4 streams", lambda c: (med(c, "machine_cpu_s_per_gbit1"), med(c, "machine_cpu_s_per_gbit4")), "{:.2f} / {:.2f}"),
    ("machine CPU % 1 / 4 streams", lambda c: (med(c, "cpu_pct1"), med(c, "cpu_pct4")), "{:.0f} / {:.0f}"),
]
LATENCY = [
    ("ping idle p50 ms", lambda c: pct(c, "rtt_idle_ms", 50), "{:.3f}"),
    ("ping idle p99 ms", lambda c: pct(c, "rtt_idle_ms", 99), "{:.3f}"),
    ("idle p50 × " + BL, ratio(lambda c: pct(c, "rtt_idle_ms", 50), BASELINE), "{:.2f}×"),
    ("ping under load p50 ms", lambda c: pct(c, "rtt_load_ms", 50), "{:.3f}"),
    ("ping under load p99 ms", lambda c: pct(c, "rtt_load_ms", 99), "{:.3f}"),
    ("pings lost/sent idle; under load", lambda c: (lost("rtt_idle_ms")(c), lost("rtt_load_ms")(c)), "{}; {}"),
    ("tunnel process peak RSS MiB", lambda c: med(c, "proc_peak_rss_mib"), "{:.1f}"),
    ("notes", note, "{}"),
]

def cell(value, fmt):
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " / ".join("%.2f" % v for v in value)
    if isinstance(value, tuple):
        if any(v is None for v in value): return "–"
        return fmt.format(*value)
    return fmt.format(value)

def table(columns):
    rows = []
    for c in cases:
        if per_case.get(c, {}).get("failed"):
            rows.append([LABELS[c], "FAILED"] + [""] * (len(columns) - 1))
        else:
            rows.append([LABELS[c]] + [cell(f(c), fmt) for _, f, fmt in columns])
    return ["case"] + [h for h, _, _ in columns], rows

tables = [("Throughput and CPU", table(THROUGHPUT)), ("Latency and memory", table(LATENCY))]

# The throughput issue's targets, in the same run.
def have(*xs): return all(x is not None for x in xs)
checks = []
enc, clear, wg = gbps(1)("weft-enc"), gbps(1)("weft-clear"), gbps(1)(BASELINE)
def against_baseline(name, mine, theirs, factor):
    if have(mine, theirs) and theirs:
        checks.append((name, mine >= factor * theirs, "%.2f / %.2f Gbit/s = %.2f×" % (mine, theirs, mine / theirs)))
    else:
        checks.append((name, None, "needs weft-enc and %s" % BASELINE))
against_baseline("Weft encrypted sleeve, single stream ≥ 2.5× %s" % BL, enc, wg, 2.5)
against_baseline("Weft encrypted sleeve, 4 streams ≥ 2.5× %s" % BL, gbps(4)("weft-enc"), gbps(4)(BASELINE), 2.5)
cpu = cpu_per_gbit(1)("weft-enc")
if have(cpu):
    checks.append(("Weft encrypted sleeve CPU s/Gbit (both routers, 1 stream) ≤ 0.35", cpu <= 0.35, "%.3f CPU s/Gbit" % cpu))
else:
    checks.append(("Weft encrypted sleeve CPU s/Gbit (both routers, 1 stream) ≤ 0.35", None, "needs weft-enc"))
if have(enc, clear):
    e4, c4 = gbps(4)("weft-enc"), gbps(4)("weft-clear")
    extra = "; 4 streams (not part of the check): %.2f vs %.2f" % (c4, e4) if have(e4, c4) else ""
    checks.append(("Weft unencrypted sleeve ≥ encrypted, single stream", clear >= enc,
                   "%.2f vs %.2f Gbit/s%s" % (clear, enc, extra)))
else:
    checks.append(("Weft unencrypted sleeve ≥ encrypted, single stream", None, "needs weft-enc and weft-clear"))
pe, pw = pct("weft-enc", "rtt_idle_ms", 50), pct(BASELINE, "rtt_idle_ms", 50)
if have(pe, pw) and pw:
    checks.append(("Idle ping p50 through encrypted sleeve ≤ %s's" % BL, pe <= pw,
                   "%.3f / %.3f ms = %.2f×" % (pe, pw, pe / pw)))
else:
    checks.append(("Idle ping p50 through encrypted sleeve ≤ %s's" % BL, None, "needs weft-enc and %s" % BASELINE))
rss = [(med(c, "proc_peak_rss_mib"), c) for c in ("weft-enc", "weft-clear") if med(c, "proc_peak_rss_mib") is not None]
if rss:
    m, c = max(rss)
    checks.append(("Router peak RSS (VmHWM, after the runs) ≤ 64 MiB", m <= 64,
                   "largest %.1f MiB (%s)" % (m, LABELS[c])))
else:
    checks.append(("Router peak RSS (VmHWM, after the runs) ≤ 64 MiB", None, "needs a Weft case"))
iv = vals("weft-enc", "stall_gbps")
if not stall_on:
    checks.append(("No stall in a %s s single-stream run (every 1 s interval ≥ 10%% of the median interval)" % stall_secs,
                   None, "not run: BENCH_STALL=0, BENCH_SECONDS < 10, or weft-enc not among the cases"))
elif not iv:
    checks.append(("No stall in a %s s single-stream run (every 1 s interval ≥ 10%% of the median interval)" % stall_secs,
                   None, "run, but no intervals recorded (failed)"))
else:
    mi, md = min(iv), statistics.median(iv)
    below = [i for i, v in enumerate(iv) if v < 0.1 * md]
    checks.append(("No stall in a %s s single-stream run (every 1 s interval ≥ 10%% of the median interval)" % stall_secs,
                   not below,
                   "%d intervals, min %.2f, median %.2f, max %.2f Gbit/s, whole run %.2f Gbit/s; %s" % (
                       len(iv), mi, md, max(iv), per_case.get("weft-enc", {}).get("stall_total_gbps", float("nan")),
                       "intervals below 10%%: %s" % ", ".join(str(i + 1) for i in below) if below else "none below 10 %")))
def verdict(ok): return "not evaluated" if ok is None else ("MET" if ok else "NOT MET")
target_lines = ["%s: %s (%s)" % (name, verdict(ok), detail) for name, ok, detail in checks]
stall_line = ("Stall check intervals (Gbit/s, 1 s each): " + " ".join("%.2f" % v for v in iv)) if iv else None

for title, (headers, rows) in tables:
    widths = [max(len(headers[i]), *(len(r[i]) for r in rows)) for i in range(len(headers))]
    print("\n" + title)
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))
print("\nTargets (throughput issue):")
for l in target_lines: print("- " + l)

def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception:
        return "?"
model = sh("grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2-").strip()
with open(results, "w") as out:
    out.write("# Weft bench results\n\n")
    out.write("- date: %s\n" % datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"))
    out.write("- machine: %s cores, %s, kernel %s\n" % (os.cpu_count(), model, platform.release()))
    out.write("- %s; %s; wireguard-go %s; weft %s%s (%s)\n" % (
        sh("swift --version 2>&1 | head -1"), sh("iperf3 --version | head -1"),
        sh("dpkg-query -W -f='${Version}' wireguard-go") + (", wireguard-go 2025 " + sh(os.environ.get("WG_MODERN", "wireguard-go-modern") + " --version | head -1 | cut -d' ' -f2") if "wireguard-go-2025" in cases else ""), sh("git rev-parse --short HEAD"),
        " + uncommitted changes" if sh("git status --porcelain --untracked-files=no") else "", weft))
    out.write("- iperf3 1 stream and 4 streams (-P 4), %s s per run, %s runs of each taken round-robin over the cases, median; "
              "ping 300 × 10 ms idle, and during each single-stream run (all round-trip times pooled, nearest-rank p50/p99)\n" % (secs, runs))
    out.write("- load average (1/5/15 min) before: %s, after: %s; bench took %s s\n\n" % (
        os.environ.get("BENCH_LOADAVG", "?"), os.environ.get("BENCH_LOADAVG_AFTER", "?"), os.environ.get("BENCH_ELAPSED", "?")))
    for title, (headers, rows) in tables:
        out.write("%s:\n\n" % title)
        out.write("| " + " | ".join(headers) + " |\n")
        out.write("|" + "|".join("---" for _ in headers) + "|\n")
        for r in rows:
            out.write("| " + " | ".join(r) + " |\n")
        out.write("\n")
    out.write("Targets (throughput issue):\n\n")
    for l in target_lines: out.write("- %s\n" % l)
    if stall_line: out.write("\n%s\n" % stall_line)
print("bench: results written to %s" % results)
failed = [c for c in cases if per_case.get(c, {}).get("failed")]
sys.exit(1 if failed else 0)
EOF
}

# --- main ----------------------------------------------------------------------------------

export BENCH_LOADAVG
BENCH_LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench: cases: $CASES; $RUNS × $SECONDS_PER_RUN s each, 1 and 4 streams; stall check: $([ "$STALL" = 1 ] && echo "$STALL_SECONDS s" || echo off); prefix $P; load average $BENCH_LOADAVG"
start=$(date +%s)
# Every case is set up first and stays up; the runs then go round the cases in turn, so that
# load from elsewhere on a shared machine spreads over all cases instead of hitting one.
# Set-up runs in this shell, not a subshell: the processes it starts stay our children, so they
# are reaped when stopped. A set-up failure ends the bench (cleanup shows that case's logs).
for c in $CASES; do
  echo "bench: setting up $c"
  CASE=$c PREPARING=$c
  prepare
  PREPARING=""
done
for c in $CASES; do step "$c" ping_idle; done
for run in $(seq "$RUNS"); do
  for streams in 1 4; do
    for c in $CASES; do step "$c" iperf_run "$run" "$streams"; done
  done
done
if [ "$STALL" = 1 ]; then step weft-enc stall_run; fi
for c in $CASES; do step "$c" finish; done
BENCH_LOADAVG_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
BENCH_ELAPSED=$(( $(date +%s) - start ))
export BENCH_LOADAVG_AFTER BENCH_ELAPSED
status=0
report || status=$?
echo "bench: done in $(( $(date +%s) - start )) s"
exit $status

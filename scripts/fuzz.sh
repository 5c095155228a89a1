#!/usr/bin/env bash
# Builds the libFuzzer targets of Tests/Fuzz (docs/fuzzing.md) with coverage and
# AddressSanitizer into .build-fuzz, and runs each for FUZZ_SECONDS (default 60): first over its
# seed corpus (Tests/Fuzz/corpus/<target>) and its regression inputs
# (Tests/Fuzz/regressions/<target>), then fuzzing. Prints executions and coverage per target;
# exits non-zero when a target crashed (the input is kept in .build-fuzz/crashes/).
# Knobs: FUZZ_SECONDS, FUZZ_TARGETS (space-separated names; default all), FUZZ_RUNS (stop each
# target after this many executions instead of the time bound), FUZZ_MAX_LEN, FUZZ_CONFIG (debug,
# the default, builds fastest; release runs several times more executions per second).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scratch="$root/.build-fuzz"
seconds=${FUZZ_SECONDS:-60}
config=${FUZZ_CONFIG:-debug}

# SwiftPM's --sanitize flags link libFuzzer; the swiftc driver keeps only the last -sanitize=
# it is given, so the combined flag comes last for the compiler to instrument for coverage too.
# -enable-testing: the targets reach internal decoders through @testable (debug has it anyway).
echo "fuzz: building the fuzz targets ($config, .build-fuzz)"
(cd Tests/Fuzz && swift build -c "$config" --scratch-path "$scratch" --sanitize=address --sanitize=fuzzer \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -enable-testing 2>&1 \
  | grep -v "Cannot export local symbol" | grep -Ev '^\[[0-9]+/[0-9]+\]' || true)
bin="$scratch/$config/weft-fuzz"
[ -x "$bin" ] || { echo "fuzz: the build failed (see above)" >&2; exit 1; }

targets=${FUZZ_TARGETS:-$( (WEFT_FUZZ_TARGET=list "$bin" 2>&1 || true) | sed -n 's/.*one of: //p')}
mkdir -p "$scratch/crashes"
failed=()
printf '%-14s %12s %8s %8s %10s  %s\n' target executions cov ft exec/s result
for t in $targets; do
  work="$scratch/corpus/$t"
  mkdir -p "$work"
  seeds="Tests/Fuzz/corpus/$t"
  regressions=()
  [ -d "Tests/Fuzz/regressions/$t" ] && regressions=("Tests/Fuzz/regressions/$t")
  limit=(-max_total_time="$seconds")
  [ -n "${FUZZ_RUNS:-}" ] && limit=(-runs="$FUZZ_RUNS")
  log="$scratch/$t.log"
  # The regression inputs first, each run once: a known crash fails at once.
  if [ ${#regressions[@]} -gt 0 ]; then
    if ! WEFT_FUZZ_TARGET=$t "$bin" "${regressions[0]}"/* >"$log" 2>&1; then
      echo "fuzz: $t crashes on a regression input (see $log)" >&2
      failed+=("$t"); continue
    fi
  fi
  status=ok
  WEFT_FUZZ_TARGET=$t "$bin" "${limit[@]}" ${FUZZ_MAX_LEN:+-max_len=$FUZZ_MAX_LEN} -print_final_stats=1 \
    -artifact_prefix="$scratch/crashes/$t-" "$work" "$seeds" >"$log" 2>&1 || status=CRASH
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | grep -E 'cov: ' | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  rate=$(sed -n 's/.* exec\/s: \([0-9]*\).*/\1/p' <<<"$last")
  if [ "$status" != ok ]; then
    failed+=("$t")
    status="CRASH: $(grep -m1 -E 'invariant broken|Fatal error|ERROR: AddressSanitizer|ERROR: libFuzzer' "$log" | cut -c1-100) (input: $(ls -t "$scratch"/crashes/"$t"-* 2>/dev/null | head -1))"
  fi
  printf '%-14s %12s %8s %8s %10s  %s\n' "$t" "${runs:-?}" "${cov:-?}" "${ft:-?}" "${rate:-?}" "$status"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashed: ${failed[*]} (logs in .build-fuzz/<target>.log); fix the decoder, then add the input to Tests/Fuzz/regressions/<target>/ and to the module's unit tests" >&2
  exit 1
fi

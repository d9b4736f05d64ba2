#!/usr/bin/env bash
# fuzz_smoke.sh - a short libFuzzer run of the layout detector, decoder and stdout sink
# (test/fuzz/fuzz_decode.c) inside make test, so a crash on hostile input fails the suite.
# The seed corpus is the OTLP fixtures plus one small request per layout (test/fuzz/seeds.py),
# both put at run time into a temporary directory (never into the repository). Longer runs: scripts/fuzz SECONDS. Environment: FIXTURES,
# FUZZ_SECONDS (default 20).
set -u
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-20}
fixtures=${FIXTURES:-$(cd .. && pwd)/shared/fixtures/otlp}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! out=$(make --no-print-directory fuzz 2>&1); then
  echo "not ok - fuzz target builds (make fuzz)"
  printf '%s\n' "$out" | tail -n 30 | sed 's/^/#   /'
  exit 1
fi
echo "ok - fuzz target builds (make fuzz)"

mkdir -p "$work/seeds" "$work/corpus"
cp "$fixtures"/*.pb "$work/seeds"/
/usr/bin/python3 test/fuzz/seeds.py "$work/seeds" || echo "# no built seeds (test/fuzz/seeds.py failed); fixtures only"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
timeout $((seconds + 120)) build/fuzz/fuzz_decode -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -max_len=65536 -artifact_prefix="$work/" -print_final_stats=1 \
    "$work/corpus" "$work/seeds" >"$work/log" 2>&1
rc=$?
runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/log" | grep -o '[0-9]*$')
if [ "$rc" -eq 0 ]; then
  echo "ok - fuzz ${seconds}s of detector+decoder+stdout sink: ${runs:-?} inputs, no crash"
else
  echo "not ok - fuzz ${seconds}s of detector+decoder+stdout sink (exit $rc)"
  grep -E 'ERROR|SUMMARY|runtime error|fuzz_decode:|#[0-9]+ 0x' "$work/log" | head -n 30 | sed 's/^/#   /'
  for crash in "$work"/crash-* "$work"/timeout-* "$work"/oom-*; do
    [ -e "$crash" ] || continue
    echo "#   input ($(wc -c <"$crash") bytes, base64): $(head -c 2048 "$crash" | base64 -w0)"
  done
  exit 1
fi

#!/usr/bin/env bash
# fuzz_smoke.sh - a short libFuzzer run of every fuzz target (test/fuzz/fuzz_*.c: the layout
# detector + decoder + stdout sink, the fast layout detection against the full walk, the conformance checker, the OTLP/JSON transcoder, the traces decoder, the HTTP
# port, gRPC framing and the gRPC port, the usdt bridge's reading, the write-ahead log read back, ClickHouse's
# RowBinary answers and stored strings, the bearer-token file and header) inside make test, so a crash on hostile input fails the suite. One "ok - fuzz <target> ..." line per target.
#
# Seeds are made at run time into a temporary directory (test/fuzz/seeds.py: the fixtures and
# requests built by reference encoders), never into the repository. Longer runs:
# scripts/fuzz SECONDS [TARGET...]. Environment: FIXTURES, FUZZ_SECONDS (per target, default
# 10: twelve targets take about two minutes).
set -u
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-10}
FIXTURES=${FIXTURES:-$(cd .. && pwd)/shared/fixtures/otlp}
export FIXTURES
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! out=$(make --no-print-directory fuzz 2>&1); then
  echo "not ok - fuzz targets build (make fuzz)"
  printf '%s\n' "$out" | tail -n 30 | sed 's/^/#   /'
  exit 1
fi
echo "ok - fuzz targets build (make fuzz)"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=0

# One target: seeds, a run of $seconds, one TAP line (and the crashing input when it failed).
fuzz_one() {
  local target=$1 dir="$work/$1"
  mkdir -p "$dir/seeds" "$dir/corpus"
  /usr/bin/python3 test/fuzz/seeds.py "$dir/seeds" "$target" ||
    echo "# fuzz $target: no seeds (test/fuzz/seeds.py failed); starting from nothing"
  # -close_fd_mask=2: the server's log lines go nowhere; libFuzzer and sanitizer reports
  # still reach the log.
  timeout $((seconds + 120)) "build/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -max_len=65536 -close_fd_mask=2 -artifact_prefix="$dir/" \
      -print_final_stats=1 "$dir/corpus" "$dir/seeds" >"$dir/log" 2>&1
  local rc=$? runs
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$dir/log" | grep -o '[0-9]*$')
  if [ "$rc" -eq 0 ]; then
    echo "ok - fuzz $target ${seconds}s: ${runs:-?} inputs, no crash"
    return
  fi
  failed=1
  echo "not ok - fuzz $target ${seconds}s (exit $rc)"
  grep -aE 'ERROR|SUMMARY|runtime error|invariant broken|#[0-9]+ 0x' "$dir/log" | head -n 30 | sed 's/^/#   /'
  for crash in "$dir"/crash-* "$dir"/timeout-* "$dir"/oom-*; do
    [ -e "$crash" ] || continue
    echo "#   input ($(wc -c <"$crash") bytes, base64): $(head -c 2048 "$crash" | base64 -w0)"
  done
}

for target in decode speculate check json traces http grpc usdt wal query_rows auth store_blobs; do
  fuzz_one "$target"
done
exit "$failed"

#!/usr/bin/env bash
# Runs the whole suite: every unit-test binary, then every end-to-end script in test/e2e/.
# Each prints TAP-like lines ("ok - name" / "not ok - name"); a program that dies without
# printing counts as one failure. Ends with the line "N passed, N failed".
# Environment: LAZYBACKEND (the binary), BUILD (object dir), SANITIZE (0/1), SHARED (fixtures).
set -u
cd "$(dirname "$0")/.."
export LAZYBACKEND="${LAZYBACKEND:-$PWD/lazybackend}"
export BUILD="${BUILD:-build/rel}"
export SHARED="${SHARED:-$(cd .. && pwd)/shared}"
export FIXTURES="$SHARED/fixtures/otlp"
export PYTHON=/usr/bin/python3      # Debian's grpcio/protobuf live only there
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

passed=0 failed=0
log=$(mktemp -d)/suite.log

run_one() {   # name, command...
  local name=$1; shift
  local out rc start=$SECONDS
  out=$("$@" 2>"$log.err"); rc=$?
  printf '%s\n' "$out"
  echo "# $name took $((SECONDS - start)) s"   # the CI budget is read off these lines
  local ok nok
  ok=$(grep -c '^ok - ' <<<"$out")
  nok=$(grep -c '^not ok - ' <<<"$out")
  passed=$((passed + ok)); failed=$((failed + nok))
  if [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then
    echo "not ok - $name exited $rc"
    failed=$((failed + 1))
  fi
  if [ "$rc" -ne 0 ] || [ "$nok" -ne 0 ]; then
    echo "# --- stderr of $name (last 40 lines) ---"; tail -n 40 "$log.err" | sed 's/^/# /'
  fi
}

for t in "$BUILD"/test/*; do
  [ -f "$t" ] && [ -x "$t" ] || continue
  echo "# unit: $(basename "$t")"
  run_one "$(basename "$t")" "$t"
done
for t in test/e2e/*; do
  [ -f "$t" ] && [ -x "$t" ] || continue
  echo "# e2e: $(basename "$t")"
  run_one "$(basename "$t")" timeout 600 "$t"
done

echo "# the suite took $SECONDS s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

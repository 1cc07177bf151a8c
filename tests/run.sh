#!/usr/bin/env bash
# Run the test suites and print one last line "N passed, N failed, N skipped".
#
#   tests/run.sh [all|unit|integration]     (BUILD=build-san for sanitizer builds)
#
# Unit tests are the programs $BUILD/tests/test_*; integration tests are the
# scenarios in tests/integration (real nginx, enrichd, worker and the provider
# simulator) and the simulator's own tests.  Every test prints "PASS name",
# "FAIL name" or "SKIP name (reason)" (it could not check anything here; counted
# neither passed nor failed); this script counts those lines, so a run that
# executed nothing shows "0 passed".
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD=${BUILD:-build}
export BUILD
export SAN=${SAN:-}
what=${1:-all}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0

run() {
    local name=$1; shift
    echo "== $name"
    "$@" 2>&1 | tee -a "$log"
    local rc=${PIPESTATUS[0]}
    if [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' <<<"$(tail -n 200 "$log")"; then
        # A crash or an exit without a FAIL line still counts as a failure.
        echo "FAIL $name (exit $rc)" | tee -a "$log"
    fi
    [ "$rc" -eq 0 ] || status=1
}

if [ "$what" = all ] || [ "$what" = unit ]; then
    shopt -s nullglob
    for t in "$BUILD"/tests/test_*; do
        [ -x "$t" ] || continue
        run "unit $(basename "$t")" "$t"
    done
fi

if [ "$what" = all ] || [ "$what" = integration ]; then
    run "simulator self-test" python3 tests/sim/test_providersim.py
    run "integration" python3 tests/integration/run.py "${@:2}"
fi

passed=$(grep -c '^PASS ' "$log")
failed=$(grep -c '^FAIL ' "$log")
skipped=$(grep -c '^SKIP ' "$log")
echo
if [ "$failed" -gt 0 ]; then
    echo "Failed tests:"
    grep '^FAIL ' "$log" | sed 's/^/  /'
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$passed" -gt 0 ] || status=1
[ "$failed" -eq 0 ] || status=1
exit $status

#!/usr/bin/env bash
# Run the test suites and print one last line "N passed, N failed, N skipped".
#
#   tests/run.sh [all|unit|integration|postgresql] [WORDS]
#                                           (BUILD=build-san for sanitizer builds)
#
# "unit" runs the store conformance suite twice: on SQLite and on a
# PostgreSQL server that tests/pg.sh starts for it (ENRICHD_TEST_PG=off
# skips that run, and says so).  "postgresql" runs the integration scenarios
# that must hold on both back ends (auth and rate limits, rotation, jobs,
# usage durability, the admin API and metrics, credit budgets, company
# lookups coalesced across processes) again on PostgreSQL; WORDS narrow it.
# The two-host and store copy scenarios always run on PostgreSQL, in the
# normal pass.
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
# The suites run on Debian's python3, whose packages (python3-jsonschema,
# python3-selenium) deploy.sh installs; PYTHON overrides it.
if [ -z "${PYTHON:-}" ]; then
    if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi
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

if [ "$what" = all ] || [ "$what" = unit ]; then
    if [ "${ENRICHD_TEST_PG:-on}" = off ]; then
        echo "SKIP unit test_store_conformance on postgresql (ENRICHD_TEST_PG=off)" | tee -a "$log"
    elif [ -x "$BUILD/tests/test_store_conformance" ]; then
        pgdir=$(mktemp -d /tmp/enrichd-pg-XXXXXX)
        if pgurl=$(tests/pg.sh start "$pgdir" 2>"$pgdir.err"); then
            run "unit test_store_conformance (postgresql)" \
                env ENRICHD_TEST_PG_URL="$pgurl" "$BUILD/tests/test_store_conformance"
        else
            cat "$pgdir.err"
            echo "FAIL unit test_store_conformance (postgresql): no server" | tee -a "$log"
            status=1
        fi
        tests/pg.sh stop "$pgdir" >/dev/null 2>&1
        rm -f "$pgdir.err"
    fi
fi

if [ "$what" = postgresql ]; then
    words=("${@:2}")
    # test_scaleout and test_store_copy run on PostgreSQL in the normal pass already.
    [ ${#words[@]} -gt 0 ] || words=(test_auth test_rotation test_jobs test_usage test_admin test_budget test_economics)
    run "integration (postgresql)" env ENRICHD_TEST_STORE=postgresql \
        "$PYTHON" tests/integration/run.py "${words[@]}"
fi

if [ "$what" = all ] || [ "$what" = integration ]; then
    # INTEGRATION_EXCLUDE: words naming scenarios this pass leaves out (ci.sh's
    # sanitizer pass leaves out what tests shell scripts, not the C programs).
    excludes=()
    for w in ${INTEGRATION_EXCLUDE:-}; do excludes+=("--exclude=$w"); done
    # The simulator is Python: its own tests say nothing new on a sanitizer build.
    [ -n "$SAN" ] || run "simulator self-test" "$PYTHON" tests/sim/test_providersim.py
    run "integration" "$PYTHON" tests/integration/run.py "${excludes[@]}" "${@:2}"
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

#!/usr/bin/env bash
# The whole test suite, as CI runs it (./deploy.sh test):
#   0. make lint (banned functions), counted as one PASS/FAIL line, a check
#      that the lint catches each kind of banned name planted in a file, the lint
#      of docs/openapi.json (tests/lint-openapi.sh, @redocly/cli pinned);
#   1. unit and integration tests on the normal build, then the scenarios
#      that must hold on both back ends again on PostgreSQL;
#   2. the same on a build with AddressSanitizer and UBSan;
#   3. the unit tests on a ThreadSanitizer build (the event loop, the store
#      pool and every other unit test; a reported race fails its test);
#   4. every fuzz target for a few seconds from its seed corpus, each input on
#      a thread with the responder's stack size.
# Ends with one line "N passed, N failed, N skipped" over all of them.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
jobs=$(nproc)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0

step() {
    echo "=== $1"
    shift
    "$@" 2>&1 | tee -a "$log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
}

lint() {
    if make -s lint; then echo "PASS lint"; else echo "FAIL lint"; return 1; fi
}

# The lint itself: each kind of name it bans, planted in a scratch file, fails it.
lint_catches() {
    local d rc=0
    d=$(mktemp -d)
    for call in 'strncpy(a, b, n)' 'strtok_r(s, ",", &p)' 'gmtime(&t)' 'sprintf(b, "%d", 1)' \
                'strtoul(s, &e, 10)' 'atoi(s)'; do
        printf 'void f(void) { %s; }\n' "$call" > "$d/planted.c"
        if make -s lint LINT_SRCS="$d/planted.c" >/dev/null 2>&1; then
            echo "FAIL lint catches $call"; rc=1
        else
            echo "PASS lint catches $call"
        fi
    done
    printf 'void f(void) { copy(a, b, n); }\n' > "$d/planted.c"
    if make -s lint LINT_SRCS="$d/planted.c" >/dev/null 2>&1; then
        echo "PASS lint passes a clean file"
    else
        echo "FAIL lint passes a clean file"; rc=1
    fi
    rm -rf "$d"
    return $rc
}

step "lint" lint
step "lint catches banned names" lint_catches
step "openapi lint" tests/lint-openapi.sh
step "build" make -j"$jobs" all
step "tests (normal build)" env BUILD=build tests/run.sh all
step "tests on PostgreSQL (normal build)" env BUILD=build tests/run.sh postgresql
step "build with sanitizers" make -j"$jobs" SAN=address,undefined all
# The deploy, install and package scenarios test shell scripts around the
# programs; they run on the normal build only.
step "tests (AddressSanitizer + UBSan)" env BUILD=build-san SAN=address,undefined \
    INTEGRATION_EXCLUDE="test_deploy" tests/run.sh all
step "build with ThreadSanitizer" make -j"$jobs" SAN=thread all
step "unit tests (ThreadSanitizer)" env BUILD=build-tsan SAN=thread \
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}" tests/run.sh unit
step "build fuzz targets" make -j"$jobs" fuzz
step "fuzz smoke run" tests/fuzz/run.sh "${FUZZ_SECONDS:-5}"

passed=$(grep -c '^PASS ' "$log")
failed=$(grep -c '^FAIL ' "$log")
skipped=$(grep -c '^SKIP ' "$log")
echo
echo "=== all suites"
[ "$failed" -eq 0 ] || grep '^FAIL ' "$log" | sed 's/^/  /'
[ "$status" -eq 0 ] || [ "$failed" -gt 0 ] || { echo "FAIL a build step"; failed=$((failed + 1)); }
echo "$passed passed, $failed failed, $skipped skipped"
[ "$passed" -gt 0 ] && [ "$failed" -eq 0 ]

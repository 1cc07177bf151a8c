#!/usr/bin/env bash
# Run every fuzz target for N seconds (default 30) from its seed corpus; new
# inputs go to a scratch directory, findings (crash-*, leak-*) to tests/fuzz/.
# Prints "PASS fuzz_x (N runs)" or "FAIL fuzz_x" per target.
#
# Every input runs on a thread with the responder's stack (LIM_RESPONDER_STACK
# in lib/limits.h, through tests/fuzz/responder_stack.h), so a parser that
# would overflow a responder thread fails here; a target whose source does not
# use FUZZ_TARGET() is a failure, not a silent run on libFuzzer's 8 MiB stack.
#   tests/fuzz/run.sh [SECONDS]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
secs=${1:-30}
export LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}
status=0
for bin in build-fuzz/fuzz_*; do
    case $bin in *.d) continue ;; esac
    name=${bin#build-fuzz/fuzz_}
    if ! grep -q '^FUZZ_TARGET(' "tests/fuzz/fuzz_$name.c" 2>/dev/null; then
        echo "FAIL fuzz_$name (does not run its inputs on the responder's stack: FUZZ_TARGET)"
        status=1
        continue
    fi
    corpus=tests/fuzz/corpus/$name
    mkdir -p "$corpus"
    work=$(mktemp -d)
    out=$("$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix=tests/fuzz/ \
            "$work" "$corpus" 2>&1)
    rc=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' <<<"$out" | grep -o '[0-9]*$')
    if [ $rc -eq 0 ]; then
        echo "PASS fuzz_$name (${runs:-?} runs in ${secs}s)"
    else
        echo "FAIL fuzz_$name"
        grep -E 'ERROR|SUMMARY|artifact' <<<"$out" | head -5
        status=1
    fi
    rm -rf "$work"
done
exit $status

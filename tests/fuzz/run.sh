#!/usr/bin/env bash
# Run every fuzz target for N seconds (default 30) from its seed corpus; new
# inputs go to a scratch directory, findings (crash-*, leak-*) to tests/fuzz/.
# Prints "PASS fuzz_x (N runs)" or "FAIL fuzz_x" per target.
#   tests/fuzz/run.sh [SECONDS]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
secs=${1:-30}
export LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}
status=0
for bin in build-fuzz/fuzz_*; do
    case $bin in *.d) continue ;; esac
    name=${bin#build-fuzz/fuzz_}
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

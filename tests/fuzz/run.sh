#!/usr/bin/env bash
# Run every fuzz target for N seconds (default 30) from its seed corpus.
#   tests/fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
secs=${1:-30}
export LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}
status=0
for bin in build-fuzz/fuzz_*; do
    name=${bin#build-fuzz/fuzz_}
    corpus=tests/fuzz/corpus/$name
    mkdir -p "$corpus"
    work=$(mktemp -d)
    echo "== fuzz_$name for ${secs}s"
    if ! "$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix=tests/fuzz/ \
            "$work" "$corpus" 2>&1 | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|Done'; then
        :
    fi
    [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "FAIL fuzz_$name"; status=1; }
    rm -rf "$work"
done
exit $status

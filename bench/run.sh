#!/usr/bin/env bash
# make bench: build, then run the benchmark harness (bench/bench.py).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec python3 bench/bench.py "$@"

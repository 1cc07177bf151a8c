#!/usr/bin/env bash
# Lint docs/openapi.json with @redocly/cli (pinned in tests/openapi-lint/, with its
# integrity hash in the lock file) and the rules of docs/redocly.yaml.  The package
# is installed once into $BUILD/openapi-lint (npm ci, from the npm registry) and
# reused while the lock file is unchanged.  Prints "PASS openapi-lint" or
# "FAIL openapi-lint (...)" and exits 0 or 1.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD=${BUILD:-build}
dir=$BUILD/openapi-lint
bin=$dir/node_modules/.bin/redocly

if ! command -v npm >/dev/null; then
    echo "FAIL openapi-lint (npm is not installed: ./deploy.sh deps installs it)"
    exit 1
fi
mkdir -p "$dir"
if [ ! -x "$bin" ] || ! cmp -s tests/openapi-lint/package-lock.json "$dir/package-lock.json"; then
    cp tests/openapi-lint/package.json tests/openapi-lint/package-lock.json "$dir/"
    if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >npm.log 2>&1); then
        cat "$dir/npm.log"
        echo "FAIL openapi-lint (npm ci of @redocly/cli failed, see above)"
        exit 1
    fi
fi
out=$("$bin" lint --config docs/redocly.yaml --format=stylish docs/openapi.json 2>&1)
rc=$?
# Keep the verdict lines; the CLI's banners say nothing about the document.
grep -vE '^\s*$|[║╔╚]' <<<"$out"
if [ $rc -eq 0 ] && ! grep -qE '^\s+[0-9]+:[0-9]+\s+(error|warning)\s' <<<"$out"; then
    echo "PASS openapi-lint"
    exit 0
fi
echo "FAIL openapi-lint (docs/openapi.json has problems, see above)"
exit 1

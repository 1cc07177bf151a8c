#!/usr/bin/env bash
# refresh-domain-lists.sh - regenerate data/free-email-domains.txt and
# data/disposable-email-domains.txt (and their licence files) from the
# latest npm packages "free-email-domains" and "disposable-email-domains".
#
#   tools/refresh-domain-lists.sh [DATA_DIR]     (default: data/ of the repository)
#
# Needs npm and node (node parses the packages' JSON and converts Unicode
# domain names to their ASCII "xn--" form, the only form enrichd accepts).
# Nothing in DATA_DIR changes unless both packages were fetched and
# converted; then the new files replace the old ones and the script prints
# how many domains each list gained and lost.  Review the diff and commit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data=${1:-$here/data}

die() { echo "refresh-domain-lists: $*" >&2; exit 1; }

command -v npm >/dev/null 2>&1 || die "npm is not installed; nothing changed"
command -v node >/dev/null 2>&1 || die "node is not installed; nothing changed"
[ -d "$data" ] || die "no such directory: $data"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/enrichd-domains.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Fetch one package's tarball into $tmp/<name>/package without running any
# of its scripts.  A registry that cannot be reached ends the script here.
fetch() {
    local pkg=$1 tgz
    mkdir -p "$tmp/$pkg"
    if ! tgz=$(cd "$tmp/$pkg" && npm pack --loglevel=error --ignore-scripts --fetch-retries=1 --fetch-timeout=60000 "$pkg" 2>"$tmp/$pkg.err"); then
        grep -iE -m 4 "npm (error|err!)" "$tmp/$pkg.err" | sed 's/^/  /' >&2
        die "cannot fetch $pkg from the npm registry (offline or registry unreachable); nothing changed"
    fi
    tgz=$(printf '%s\n' "$tgz" | tail -n 1)
    [ -f "$tmp/$pkg/$tgz" ] || die "npm pack did not produce a tarball for $pkg; nothing changed"
    tar -xzf "$tmp/$pkg/$tgz" -C "$tmp/$pkg" || die "cannot unpack $tgz; nothing changed"
}

# Print a field of a package.json.
pkg_field() {
    node -e 'const p = require(process.argv[1]); const v = p[process.argv[2]];
             process.stdout.write(typeof v === "string" ? v : "")' "$1/package.json" "$2"
}

# Convert JSON arrays of domains (the files given) into one sorted list on
# stdout: trimmed, lower case, Unicode labels in ASCII form, duplicates and
# names that are not plain host names dropped (counted on stderr).
to_list() {
    node -e '
        const fs = require("fs");
        const url = require("url");
        const ok = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,63}|xn--[a-z0-9-]{1,59})$/;
        const out = new Set();
        let bad = 0;
        for (const f of process.argv.slice(1)) {
            const list = JSON.parse(fs.readFileSync(f, "utf8"));
            if (!Array.isArray(list)) throw new Error(f + ": not a JSON array");
            for (const raw of list) {
                if (typeof raw !== "string") { bad++; continue; }
                const d = url.domainToASCII(raw.trim().toLowerCase());
                if (d && ok.test(d)) out.add(d); else bad++;
            }
        }
        if (bad) process.stderr.write("  skipped " + bad + " entries that are not host names\n");
        process.stdout.write([...out].join("\n") + "\n");
    ' "$@" | LC_ALL=C sort -u
}

fetch free-email-domains
fetch disposable-email-domains

free_pkg=$tmp/free-email-domains/package
disp_pkg=$tmp/disposable-email-domains/package
free_ver=$(pkg_field "$free_pkg" version)
disp_ver=$(pkg_field "$disp_pkg" version)
free_lic=$(pkg_field "$free_pkg" license)
disp_lic=$(pkg_field "$disp_pkg" license)

# Both lists are bundled under the MIT licence; stop if that changed.
[ "$free_lic" = "MIT" ] || die "free-email-domains $free_ver declares licence '$free_lic', not MIT; nothing changed"
[ "$disp_lic" = "MIT" ] || die "disposable-email-domains $disp_ver declares licence '$disp_lic', not MIT; nothing changed"
[ -f "$free_pkg/domains.json" ] || die "free-email-domains $free_ver has no domains.json; nothing changed"
[ -f "$disp_pkg/index.json" ] || die "disposable-email-domains $disp_ver has no index.json; nothing changed"

echo "free-email-domains $free_ver:"
to_list "$free_pkg/domains.json" >"$tmp/free.list"
echo "disposable-email-domains $disp_ver:"
disp_json=("$disp_pkg/index.json")
[ -f "$disp_pkg/wildcard.json" ] && disp_json+=("$disp_pkg/wildcard.json")
to_list "${disp_json[@]}" >"$tmp/disp.list"

[ -s "$tmp/free.list" ] || die "free-email-domains $free_ver produced an empty list; nothing changed"
[ -s "$tmp/disp.list" ] || die "disposable-email-domains $disp_ver produced an empty list; nothing changed"

{
    echo "# Free e-mail provider domains, one per line."
    echo "# Source: npm package free-email-domains $free_ver (https://github.com/Kikobeats/free-email-domains)"
    echo "# Licence: MIT, see LICENSE-free-email-domains."
    echo "# $(wc -l <"$tmp/free.list") domains.  Regenerate with tools/refresh-domain-lists.sh."
    cat "$tmp/free.list"
} >"$tmp/free-email-domains.txt"

{
    echo "# Disposable e-mail domains, one per line (index.json and wildcard.json merged;"
    echo "# enrichd also treats subdomains of these names as disposable)."
    echo "# Source: npm package disposable-email-domains $disp_ver (https://github.com/ivolo/disposable-email-domains)"
    echo "# Licence: MIT, see LICENSE-disposable-email-domains."
    echo "# $(wc -l <"$tmp/disp.list") domains.  Regenerate with tools/refresh-domain-lists.sh."
    cat "$tmp/disp.list"
} >"$tmp/disposable-email-domains.txt"

# free-email-domains ships LICENSE.md.  disposable-email-domains ships no
# licence file: its package.json declares "MIT" and its Readme.md ends with
# a "License" section, which is reproduced verbatim.
lic=""
for f in LICENSE.md LICENSE license LICENSE.txt; do
    if [ -f "$free_pkg/$f" ]; then lic=$free_pkg/$f; break; fi
done
[ -n "$lic" ] || die "free-email-domains $free_ver ships no licence file; nothing changed"
cp "$lic" "$tmp/LICENSE-free-email-domains"

lic=""
for f in LICENSE.md LICENSE license LICENSE.txt; do
    if [ -f "$disp_pkg/$f" ]; then lic=$disp_pkg/$f; break; fi
done
if [ -n "$lic" ]; then
    cp "$lic" "$tmp/LICENSE-disposable-email-domains"
else
    readme=$disp_pkg/Readme.md
    [ -f "$readme" ] || readme=$disp_pkg/README.md
    [ -f "$readme" ] || die "disposable-email-domains $disp_ver has neither a licence file nor a readme; nothing changed"
    section=$(awk '/^#+[[:space:]]*Licen[cs]e/ { on = 1 } on' "$readme")
    [ -n "$section" ] || die "disposable-email-domains $disp_ver: no License section in its readme; nothing changed"
    {
        echo "disposable-email-domains $disp_ver (https://github.com/ivolo/disposable-email-domains)"
        echo
        echo "The npm package ships no separate licence file.  Its package.json,"
        echo "composer.json and component.json declare the licence as \"MIT\"; the"
        echo "License section of its Readme.md reads, verbatim:"
        echo
        printf '%s\n' "$section"
    } >"$tmp/LICENSE-disposable-email-domains"
fi

# Added and removed names, against what is in DATA_DIR now.
summary() {
    local name=$1 new=$2 old=$data/$1
    local n added removed
    n=$(wc -l <"$new")
    if [ -f "$old" ]; then
        grep -v '^#' "$old" | LC_ALL=C sort -u >"$tmp/old.list"
        added=$(LC_ALL=C comm -13 "$tmp/old.list" "$new" | wc -l)
        removed=$(LC_ALL=C comm -23 "$tmp/old.list" "$new" | wc -l)
        echo "$name: $n domains, +$added added, -$removed removed"
    else
        echo "$name: $n domains (new file)"
    fi
}
summary free-email-domains.txt "$tmp/free.list"
summary disposable-email-domains.txt "$tmp/disp.list"

for f in free-email-domains.txt disposable-email-domains.txt \
         LICENSE-free-email-domains LICENSE-disposable-email-domains; do
    cp "$tmp/$f" "$data/$f.new"
    chmod 0644 "$data/$f.new"
done
for f in free-email-domains.txt disposable-email-domains.txt \
         LICENSE-free-email-domains LICENSE-disposable-email-domains; do
    mv -f "$data/$f.new" "$data/$f"
done
echo "refresh-domain-lists: updated $data"

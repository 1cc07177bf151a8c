#!/usr/bin/env bash
# A throw-away PostgreSQL server for the tests (Debian's postgresql package).
#
#   tests/pg.sh start DIR     initdb + start a server in DIR (created), print its URL
#   tests/pg.sh url DIR       print the URL of the server in DIR
#   tests/pg.sh stop DIR      stop it and remove DIR
#
# The server listens on a unix socket in DIR only (listen_addresses=''), trusts
# local connections, and runs with fsync=off and synchronous_commit=off: test
# data, fast.  PostgreSQL refuses to run as root, so under root (CI) the server
# runs as the "postgres" user (the package creates it) and DIR is given to it.
# The URL names the database "postgres"; tests create one database each.
set -euo pipefail

PORT=5432
SUPERUSER=enrichd

bindir() {
    local d
    if command -v pg_config >/dev/null && d=$(pg_config --bindir) && [ -x "$d/initdb" ]; then
        echo "$d"; return
    fi
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && { echo "$d"; return; }
    done
    echo "tests/pg.sh: PostgreSQL server binaries not found (apt-get install postgresql)" >&2
    exit 1
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

url() {
    echo "postgresql://$SUPERUSER@/postgres?host=$1&port=$PORT"
}

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: tests/pg.sh start|url|stop DIR" >&2; exit 2; }

case "$cmd" in
start)
    bin=$(bindir)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -U "$SUPERUSER" --auth=trust -E UTF8 --no-locale \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start -o \
        "-c listen_addresses='' -k $dir -p $PORT -c fsync=off -c synchronous_commit=off \
         -c full_page_writes=off -c max_connections=300 -c shared_buffers=64MB" \
        >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    url "$dir"
    ;;
url)
    url "$(cd "$dir" && pwd)"
    ;;
stop)
    bin=$(bindir)
    if [ -d "$dir/data" ]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: tests/pg.sh start|url|stop DIR" >&2; exit 2
    ;;
esac

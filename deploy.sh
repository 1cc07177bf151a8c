#!/usr/bin/env bash
# enrichd local and production operations.
#
#   ./deploy.sh up [--postgres]
#                          install missing packages, build, start nginx + enrichd +
#                          enrich-worker locally (state under var/), print a curl example;
#                          enrichd and the worker run under a supervisor that restarts
#                          them (with back-off) when they die.  The store is the
#                          configuration's (SQLite by default), or ENRICHD_STORE when set
#                          (postgresql://...); --postgres starts a local PostgreSQL
#                          under var/pg (unix socket only) and uses it
#   ./deploy.sh down       stop them all (and the local PostgreSQL of up --postgres)
#   ./deploy.sh status     what runs, and /health
#   ./deploy.sh reload     apply conf/enrichd.conf to enrichd, the worker and nginx, or
#                          to none of them: the file is checked (enrichd -t), the nginx
#                          site rendered into a staging directory and checked (nginx -t),
#                          then enrichd is asked first; a refusal is printed, and nothing
#                          changes anywhere
#   ./deploy.sh history    the last 10 applied configurations (time, checksum, current)
#   ./deploy.sh rollback [CHECKSUM]
#                          go back to the previous applied configuration (or the one
#                          whose checksum starts with CHECKSUM) and reload; an edited file
#                          that was never applied is kept as <file>.rejected.<time>
#   ./deploy.sh logs       the last log lines (follows them on a terminal)
#   ./deploy.sh test       install missing packages, build, run the whole test suite
#                          (normal build, sanitizer build, fuzz smoke run)
#   ./deploy.sh deps       only install missing Debian packages
#   ./deploy.sh install    production install: enrichd user and group (real install only),
#                          /etc/enrichd, systemd units, nginx site; PREFIX=/usr/local and
#                          DESTDIR= as for make install (a DESTDIR install writes nothing
#                          outside DESTDIR)
#
# Environment for `up`: HTTPS_PORT (8443), HTTP_PORT (8080), ENRICHD_CONF
# (conf/enrichd.conf), ENRICHD_STORE (the configuration's store).  `up` remembers them
# in var/deploy.env and every other command uses what `up` used.  ENRICHD_VAR (var) holds pid files, logs, nginx state and the dev
# certificate.  Running `up` twice is harmless: what already runs is left running.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT=$(pwd)
SELF=$ROOT/deploy.sh
VAR=${ENRICHD_VAR:-$ROOT/var}
case $VAR in /*) ;; *) VAR=$ROOT/$VAR ;; esac
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
NGX=$VAR/nginx
RUN=$VAR/run
SETTINGS=$VAR/deploy.env

# Debian packages the build, the service, the packaging and the tests need.
PACKAGES=(build-essential pkg-config ca-certificates openssl curl ssl-cert
          libfcgi-dev libcurl4-openssl-dev libjansson-dev libconfig-dev libsqlite3-dev libnghttp2-dev
          libpq-dev libssl-dev libpsl-dev sqlite3 nginx-light fcgiwrap python3 wrk clang
          libclang-rt-14-dev systemd dpkg-dev postgresql postgresql-client
          python3-jsonschema chromium chromium-driver python3-selenium prometheus)
# The OpenAPI lint (tests/lint-openapi.sh) runs on Node.js: when no npm is on the
# PATH, Debian's nodejs and npm are installed (a Node.js installed otherwise, with
# its own npm, is left alone).

say() { printf '%s\n' "$*"; }
die() { printf 'deploy.sh: %s\n' "$*" >&2; exit 1; }

deps() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    command -v npm >/dev/null || missing+=(nodejs npm)
    [ ${#missing[@]} -eq 0 ] && return 0
    say "Installing missing Debian packages: ${missing[*]}"
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || die "run as root, or install: apt-get install ${missing[*]}"
        sudo=sudo
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    # policy-rc.d keeps the package scripts from starting the system nginx on port 80.
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build() {
    make -j"$(nproc)" BUILD="$BUILD" ${SAN:+SAN="$SAN"} all >/dev/null ||
        make BUILD="$BUILD" ${SAN:+SAN="$SAN"} all
}

# ---- settings remembered by `up` ------------------------------------------------

# Values from the environment (or defaults); `up` saves them and every other
# command takes the saved ones, so a reload never renders nginx on other ports.
ENV_CONF=${ENRICHD_CONF:-}
ENV_HTTPS_PORT=${HTTPS_PORT:-}
ENV_HTTP_PORT=${HTTP_PORT:-}
ENV_STORE=${ENRICHD_STORE:-}
STORE=${ENRICHD_STORE:-}
LOCAL_PG=""
CONF=${ENRICHD_CONF:-$ROOT/conf/enrichd.conf}
case $CONF in /*) ;; *) CONF=$ROOT/$CONF ;; esac
HTTPS_PORT=${HTTPS_PORT:-8443}
HTTP_PORT=${HTTP_PORT:-8080}
STATE_DIR=""
LOG_FILE=""
NGINX_USER=""
SOCKET_GROUP=""

load_settings() {
    [ -f "$SETTINGS" ] || return 0
    # shellcheck disable=SC1090
    . "$SETTINGS"
    local differs=""
    [ -z "$ENV_CONF" ] || [ "$(cd "$(dirname "$ENV_CONF")" 2>/dev/null && pwd)/$(basename "$ENV_CONF")" = "$CONF" ] || differs=1
    [ -z "$ENV_HTTPS_PORT" ] || [ "$ENV_HTTPS_PORT" = "$HTTPS_PORT" ] || differs=1
    [ -z "$ENV_HTTP_PORT" ] || [ "$ENV_HTTP_PORT" = "$HTTP_PORT" ] || differs=1
    [ -z "$ENV_STORE" ] || [ "$ENV_STORE" = "$STORE" ] || differs=1
    [ -z "$STORE" ] || export ENRICHD_STORE=$STORE
    if [ -n "$differs" ]; then
        say "note: using what ./deploy.sh up used: $CONF, ports $HTTPS_PORT and $HTTP_PORT${STORE:+, store $STORE} ($SETTINGS);"
        say "      ./deploy.sh down, then up with the new values, to change them"
    fi
}

save_settings() {
    local tmp=$SETTINGS.tmp
    {
        say "# Written by ./deploy.sh up; status, reload, rollback, history, logs and down read it."
        printf 'CONF=%q\nHTTPS_PORT=%q\nHTTP_PORT=%q\nSTATE_DIR=%q\nLOG_FILE=%q\n' \
            "$CONF" "$HTTPS_PORT" "$HTTP_PORT" "$STATE_DIR" "$LOG_FILE"
        printf 'NGINX_USER=%q\nSOCKET_GROUP=%q\nVAR=%q\n' "$NGINX_USER" "$SOCKET_GROUP" "$VAR"
        printf 'STORE=%q\nLOCAL_PG=%q\n' "$STORE" "$LOCAL_PG"
    } >"$tmp"
    mv "$tmp" "$SETTINGS"
}

enrichd_log() { if [ -n "$LOG_FILE" ]; then say "$LOG_FILE"; else say "$VAR/log/enrichd.log"; fi; }
worker_log() { say "$VAR/log/enrich-worker.log"; }

# ---- processes --------------------------------------------------------------------

# The pid in FILE when that process is alive, not a zombie, and its command
# line contains WANT (a pid file can outlive its process, and the pid can be
# reused by another program).
pid_of() {
    local f=$1 want=$2 pid state cmd
    [ -f "$f" ] || return 1
    pid=$(cat "$f" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    state=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$state" ] && [ "$state" != Z ] || return 1
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ "$cmd" == *"$want"* ]] || return 1
    say "$pid"
}

sup_pid() { pid_of "$RUN/$1.pid" "__supervise $1 $VAR "; }
child_pid() {
    case $1 in
        enrichd) pid_of "$RUN/enrichd.child" "enrichd -c $CONF" ;;
        enrich-worker) pid_of "$RUN/enrich-worker.child" "enrich-worker -c $CONF" ;;
    esac
}
nginx_pid() { pid_of "$NGX/nginx.pid" "-p $NGX -c "; }

log_line() { # LEVEL MESSAGE: a line in the services' log format
    printf '%s level=%s rid=- mod=supervise msg="%s"\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$1" "$2"
}

# deploy.sh __supervise NAME VAR LOG -- COMMAND...: run COMMAND, and run it again
# when it dies (1 s, doubling to 30 s; back to 1 s after a minute of running),
# logging how it died.  SIGTERM stops the child and the supervisor; SIGHUP is
# passed on.  A child that exits by itself within 3 s of the first start (a bad
# file, a store that cannot open) is not restarted.
supervise() {
    local name=$1 log=$3 child="" stopping=0 rc start ran how delay=1 restarts=0 first=1 nap
    shift 4
    set +e
    umask 027
    exec </dev/null >>"$log" 2>&1
    trap 'stopping=1; [ -z "$child" ] || kill -TERM "$child" 2>/dev/null' TERM INT
    trap '[ -z "$child" ] || kill -HUP "$child" 2>/dev/null' HUP
    echo $$ >"$RUN/$name.pid"
    while [ $stopping = 0 ]; do
        start=$(date +%s)
        "$@" &
        child=$!
        echo "$child" >"$RUN/$name.child"
        while :; do
            wait "$child"
            rc=$?
            # A signal to the supervisor interrupts wait; the child may still run.
            if [ $rc -gt 128 ] && kill -0 "$child" 2>/dev/null &&
               [ "$(sed 's/^.*) //' "/proc/$child/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]; then
                continue
            fi
            break
        done
        rm -f "$RUN/$name.child"
        [ $stopping = 0 ] || break
        ran=$(( $(date +%s) - start ))
        if [ $rc -gt 128 ]; then
            how="was killed by signal $((rc - 128)) (SIG$(kill -l $((rc - 128)) 2>/dev/null || echo '?'))"
        else
            how="exited with status $rc"
        fi
        if [ $first = 1 ] && [ $rc -le 128 ] && [ $ran -lt 3 ]; then
            log_line error "$name (pid $child) $how at start; not restarting it"
            rm -f "$RUN/$name.pid"
            exit 1
        fi
        first=0
        [ $ran -lt 60 ] || delay=1
        restarts=$((restarts + 1))
        log_line warn "$name (pid $child) $how after ${ran}s; restarting it in ${delay}s (restart $restarts)"
        child=""
        sleep "$delay" &
        nap=$!
        wait $nap
        kill $nap 2>/dev/null
        [ $stopping = 0 ] || break
        delay=$((delay * 2 > 30 ? 30 : delay * 2))
        log_line notice "$name restarted (restart $restarts)"
    done
    rm -f "$RUN/$name.pid"
    exit 0
}

# Stop a supervised program: the supervisor stops its child and exits.  A child
# left without its supervisor (the supervisor was killed) is stopped too.
stop_supervised() {
    local name=$1 pid child i
    pid=$(sup_pid "$name") || pid=""
    child=$(child_pid "$name") || child=""
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 400); do sup_pid "$name" >/dev/null || break; sleep 0.1; done
        if sup_pid "$name" >/dev/null; then
            say "$name did not stop in 40 s; killing it"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    if [ -n "$child" ] && child_pid "$name" >/dev/null; then
        kill -TERM "$child" 2>/dev/null || true
        for i in $(seq 1 400); do child_pid "$name" >/dev/null || break; sleep 0.1; done
        child_pid "$name" >/dev/null && kill -KILL "$child" 2>/dev/null || true
    fi
    [ -z "$pid$child" ] || say "$name stopped"
    rm -f "$RUN/$name.pid" "$RUN/$name.child"
}

start_supervised() { # NAME COMMAND...
    local name=$1 pid child i
    shift
    if pid=$(sup_pid "$name"); then
        say "$name already running (pid $(child_pid "$name" || echo "?"), supervisor $pid)"
        return 0
    fi
    if child=$(child_pid "$name"); then
        say "$name (pid $child) runs without its supervisor; restarting it under supervision"
        stop_supervised "$name" >/dev/null
    fi
    rm -f "$RUN/$name.pid" "$RUN/$name.child"
    local log
    if [ "$name" = enrichd ]; then log=$VAR/log/enrichd.log; else log=$(worker_log); fi
    setsid "$SELF" __supervise "$name" "$VAR" "$log" -- "$@" </dev/null >/dev/null 2>&1 &
    for i in $(seq 1 100); do child_pid "$name" >/dev/null && break; sleep 0.05; done
    child_pid "$name" >/dev/null || die "$name did not start; see $log"
}

wait_socket() {
    local i
    for i in $(seq 1 200); do
        [ -S "$ENRICHD_LISTEN" ] && return 0
        sup_pid enrichd >/dev/null || die "enrichd exited at start; see $(enrichd_log)"
        sleep 0.05
    done
    die "enrichd did not open $ENRICHD_LISTEN in 10 s; see $(enrichd_log)"
}

wait_health() {
    local i
    for i in $(seq 1 150); do
        if curl -skf "https://127.0.0.1:$HTTPS_PORT/health" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    return 1
}

# ---- a local PostgreSQL for trying it (up --postgres) -------------------------------

PG_DIR=$VAR/pg
PG_PORT=5432

pg_bin() {
    local d
    if command -v pg_config >/dev/null && d=$(pg_config --bindir) && [ -x "$d/initdb" ]; then
        say "$d"; return
    fi
    for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && { say "$d"; return; }; done
    die "PostgreSQL server binaries not found (apt-get install postgresql)"
}

# PostgreSQL refuses to run as root: under root it runs as the postgres user, who
# must be able to reach var/pg (var/ becomes traversable by others, 0751; what is
# in it stays private).
pg_as() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

pg_up() {
    local bin
    bin=$(pg_bin)
    mkdir -p "$PG_DIR"
    pg_reachable
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$PG_DIR"
        chmod 0700 "$PG_DIR"
    fi
    if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
        pg_as "$bin/initdb" -D "$PG_DIR/data" -U enrichd --auth=peer --auth-local=trust \
            -E UTF8 --no-locale >"$PG_DIR/initdb.log" 2>&1 ||
            { cat "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
    fi
    if ! pg_as "$bin/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1; then
        pg_as "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 start -o \
            "-c listen_addresses='' -k $PG_DIR -p $PG_PORT" >/dev/null ||
            { tail -20 "$PG_DIR/server.log" >&2; die "PostgreSQL did not start"; }
        say "PostgreSQL started (unix socket in $PG_DIR, data in $PG_DIR/data)"
    fi
    psql "postgresql://enrichd@/postgres?host=$PG_DIR&port=$PG_PORT" -qAtc \
        "SELECT 1 FROM pg_database WHERE datname = 'enrichd'" | grep -q 1 ||
        psql "postgresql://enrichd@/postgres?host=$PG_DIR&port=$PG_PORT" -qc "CREATE DATABASE enrichd"
    STORE="postgresql://enrichd@/enrichd?host=$PG_DIR&port=$PG_PORT"
    LOCAL_PG=1
}

pg_reachable() { [ "$(id -u)" != 0 ] || chmod o+x "$VAR"; }

pg_down() {
    [ -d "$PG_DIR/data" ] || return 0
    local bin
    bin=$(pg_bin)
    pg_reachable
    if pg_as "$bin/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1; then
        pg_as "$bin/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null
        say "PostgreSQL stopped (its data stays in $PG_DIR/data)"
    fi
}

# ---- configuration ------------------------------------------------------------------

cert() {
    install -d -m 0750 "$VAR/tls"
    if [ ! -f "$VAR/tls/cert.pem" ]; then
        say "Creating a development TLS certificate ($VAR/tls/cert.pem)"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 -subj "/CN=localhost" \
            -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
            -keyout "$VAR/tls/key.pem" -out "$VAR/tls/cert.pem" 2>/dev/null
        chmod 600 "$VAR/tls/key.pem"
    fi
}

check_conf() {
    local out
    if ! out=$("$BUILD/enrichd" -t -c "$CONF" 2>&1); then
        say "$out"
        return 1
    fi
}

# Read the settings nginx and deploy.sh need (socket, state dir, log file, ...).
read_conf() {
    ENRICHD_SETTINGS=$("$BUILD/enrichd" -p -c "$CONF") || return 1
    eval "$ENRICHD_SETTINGS"
    STATE_DIR=$ENRICHD_STATE_DIR
    LOG_FILE=$ENRICHD_LOG_FILE
}

# As root, nginx's workers run as an unprivileged user, in the socket's group.
choose_users() {
    NGINX_USER="" SOCKET_GROUP=""
    [ "$(id -u)" = 0 ] || return 0
    if id www-data >/dev/null 2>&1; then NGINX_USER=www-data; else NGINX_USER=nobody; fi
    SOCKET_GROUP=${ENRICHD_LISTEN_GROUP:-$(id -gn "$NGINX_USER")}
}

# Render the nginx site into DIR (read by nginx from DIR) from the settings read once.
render_into() {
    ENRICHD_SETTINGS="$ENRICHD_SETTINGS" PREFIX="$NGX" INCLUDE_DIR="$1" \
    HTTP_PORT=$HTTP_PORT HTTPS_PORT=$HTTPS_PORT \
    CERT="$VAR/tls/cert.pem" CERT_KEY="$VAR/tls/key.pem" \
    NGINX_USER="${NGINX_USER:+$NGINX_USER $SOCKET_GROUP}" \
        nginx/render.sh "$1"
}

nginx_test() { # DIR: nginx -t on DIR/nginx.conf; prints nginx's message on failure
    local out
    if ! out=$(nginx -t -q -p "$NGX" -c "$1/nginx.conf" 2>&1); then
        say "$out" | grep -v 'the "user" directive makes sense only' >&2 || true
        return 1
    fi
}

# Directories nginx's workers (and enrichd's socket) need are in the socket's group.
share_dirs() {
    [ -n "$SOCKET_GROUP" ] || return 0
    local d
    for d in "$VAR" "$RUN" "$NGX" "$NGX/tmp" "$(dirname "$ENRICHD_LISTEN")"; do
        [ -d "$d" ] || continue
        chgrp "$SOCKET_GROUP" "$d" && chmod 0750 "$d"
    done
}

dev_key() {
    local ctl="$BUILD/enrichctl" keyfile="$VAR/dev-api-key"
    [ -x "$ctl" ] || return 0
    if [ ! -s "$keyfile" ]; then
        "$ctl" -c "$CONF" account create dev >/dev/null 2>&1 || true
        "$ctl" -c "$CONF" key create dev --scopes enrich,enqueue,admin --name dev --raw >"$keyfile.tmp"
        mv "$keyfile.tmp" "$keyfile"
        chmod 600 "$keyfile"
    fi
    cat "$keyfile"
}

# ---- commands -----------------------------------------------------------------------

cmd_up() {
    local postgres=""
    for a in "$@"; do
        case $a in --postgres) postgres=1 ;; *) die "up: unknown argument $a" ;; esac
    done
    deps
    build
    umask 027
    if sup_pid enrichd >/dev/null || sup_pid enrich-worker >/dev/null || nginx_pid >/dev/null; then
        load_settings
    fi
    install -d -m 0750 "$VAR" "$RUN" "$VAR/log" "$NGX"
    if [ -n "$postgres" ]; then
        [ -z "$ENV_STORE" ] || die "up: --postgres and ENRICHD_STORE both name a store; choose one"
        pg_up
    fi
    # Every program of this deployment (enrichd, the worker, enrichctl) uses the store.
    [ -z "$STORE" ] || export ENRICHD_STORE=$STORE
    cert
    check_conf || die "$CONF is not valid (see above)"
    read_conf || die "cannot read the settings of $CONF"
    choose_users
    mkdir -p "$(dirname "$ENRICHD_LISTEN")"
    if ! nginx_pid >/dev/null; then
        render_into "$NGX"
        nginx_test "$NGX" || die "the rendered nginx configuration is not valid (see above)"
    fi
    share_dirs
    [ -z "$LOCAL_PG" ] || pg_reachable
    save_settings
    local gflag=()
    [ -z "$SOCKET_GROUP" ] || [ -n "$ENRICHD_LISTEN_GROUP" ] || gflag=(-g "$SOCKET_GROUP")
    start_supervised enrichd "$BUILD/enrichd" -c "$CONF" "${gflag[@]}"
    wait_socket
    if [ -n "$NGINX_USER" ] &&
       ! setpriv --reuid="$NGINX_USER" --regid="$SOCKET_GROUP" --clear-groups test -w "$ENRICHD_LISTEN"; then
        die "nginx's workers (user $NGINX_USER, group $SOCKET_GROUP) cannot reach $ENRICHD_LISTEN: every directory above it must be searchable by them (chmod o+x)"
    fi
    say "enrichd running (pid $(child_pid enrichd), supervised)"
    if [ -x "$BUILD/enrich-worker" ]; then
        start_supervised enrich-worker "$BUILD/enrich-worker" -c "$CONF"
        say "enrich-worker running (pid $(child_pid enrich-worker), supervised)"
    fi
    if nginx_pid >/dev/null; then
        say "nginx already running (pid $(nginx_pid)); apply configuration changes with ./deploy.sh reload"
    else
        nginx -p "$NGX" -c "$NGX/nginx.conf"
        say "nginx started on https://127.0.0.1:$HTTPS_PORT (http://127.0.0.1:$HTTP_PORT redirects)"
    fi
    wait_health || die "/health did not answer; see ./deploy.sh logs"
    say "store: $ENRICHD_STORE"
    local key
    key=$(dev_key)
    say ""
    say "enrichd is up: https://127.0.0.1:$HTTPS_PORT"
    say "  curl -sk https://127.0.0.1:$HTTPS_PORT/health"
    if [ -n "$key" ]; then
        say "Development API key (kept in $VAR/dev-api-key): $key"
        say "  curl -sk https://127.0.0.1:$HTTPS_PORT/enrich -H 'Authorization: Bearer $key' \\"
        say "       -H 'Content-Type: application/json' -d '{\"email\": \"john.doe@example.com\"}'"
        say "The operators' console: https://127.0.0.1:$HTTPS_PORT/console/ (sign in with that key)"
    fi
}

cmd_down() {
    load_settings
    local pid i
    if pid=$(nginx_pid); then
        kill -QUIT "$pid"
        for i in $(seq 1 100); do nginx_pid >/dev/null || break; sleep 0.1; done
        nginx_pid >/dev/null && kill -TERM "$pid" 2>/dev/null
        say "nginx stopped"
    fi
    rm -f "$NGX/nginx.pid"
    stop_supervised enrich-worker
    stop_supervised enrichd
    [ -z "$LOCAL_PG" ] || pg_down
}

cmd_status() {
    load_settings
    local rc=0 p
    if p=$(child_pid enrichd); then say "enrichd:       running (pid $p$(sup_pid enrichd >/dev/null && echo ", supervised" || echo ", NOT supervised"))"
    elif sup_pid enrichd >/dev/null; then say "enrichd:       restarting (see ./deploy.sh logs)"; rc=1
    else say "enrichd:       stopped"; rc=1; fi
    if p=$(child_pid enrich-worker); then say "enrich-worker: running (pid $p)"
    elif sup_pid enrich-worker >/dev/null; then say "enrich-worker: restarting"
    else say "enrich-worker: stopped"; fi
    if p=$(nginx_pid); then say "nginx:         running (pid $p) on https://127.0.0.1:$HTTPS_PORT"; else say "nginx:         stopped"; rc=1; fi
    say "configuration: $CONF"
    say "store:         ${ENRICHD_STORE:-$(grep -E '^store *=' "$CONF" | sed -n '1s/^store *= *"\{0,1\}\([^";]*\).*/\1/p')}"
    say "health:        $(curl -sk --max-time 3 "https://127.0.0.1:$HTTPS_PORT/health" || echo unreachable)"
    return $rc
}

# Wait for the next verdict line (reloaded / reload refused) after line COUNT of LOG.
verdict() { # LOG BEFORE-LINES -> prints "reloaded" or the refused line; 1 on timeout
    local log=$1 before=$2 i line
    for i in $(seq 1 300); do
        line=$(tail -n +"$((before + 1))" "$log" 2>/dev/null |
               grep -m1 -E 'mod=config msg="(reloaded|reload refused)' || true)
        if [ -n "$line" ]; then say "$line"; return 0; fi
        sleep 0.1
    done
    return 1
}

lines_of() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }

refusal_help() { # the refused line
    local reason
    reason=$(sed -e 's/.*msg="reload refused[^:]*: //' -e 's/"$//' <<<"$1")
    say "enrichd refused the file: $reason" >&2
    if [[ "$reason" =~ environment\ variable\ ([A-Za-z_][A-Za-z0-9_]*)\ is\ not\ set ]]; then
        local v=${BASH_REMATCH[1]}
        say "  $v must be set in the environment enrichd runs in, which is fixed when it starts:" >&2
        say "  locally:  export $v=...; ./deploy.sh down; ./deploy.sh up" >&2
        say "  systemd:  add $v=... to /etc/enrichd/secrets.env; systemctl restart enrichd enrich-worker" >&2
    fi
}

cmd_reload() {
    load_settings
    local epid wpid npid
    epid=$(child_pid enrichd) || die "enrichd is not running (./deploy.sh up)"
    # 1. the file itself
    check_conf || die "configuration refused; nothing changed"
    # 2. the nginx site it renders, in a staging directory
    read_conf || die "cannot read the settings of $CONF"
    local staging=$NGX/staging
    rm -rf "$staging"
    render_into "$staging" >/dev/null
    if ! nginx_test "$staging"; then
        rm -rf "$staging"
        die "nginx refused the site rendered from $CONF (see above); nothing changed"
    fi
    rm -rf "$staging"
    # 3. enrichd (which keeps the history of applied files), then the others
    local log before line
    log=$(enrichd_log)
    before=$(lines_of "$log")
    kill -HUP "$epid"
    line=$(verdict "$log" "$before") || die "enrichd gave no verdict on the reload in 30 s; see ./deploy.sh logs"
    if [[ "$line" == *'reload refused'* ]]; then
        refusal_help "$line"
        die "nothing changed: enrichd, the worker and nginx run the previous file"
    fi
    local failed=""
    if wpid=$(child_pid enrich-worker); then
        log=$(worker_log)
        before=$(lines_of "$log")
        kill -HUP "$wpid"
        line=$(verdict "$log" "$before") || line="no verdict in 30 s"
        [[ "$line" == *'msg="reloaded'* ]] || failed="enrich-worker did not take the file: $line"
    fi
    if npid=$(nginx_pid); then
        render_into "$NGX" >/dev/null
        nginx -s reload -p "$NGX" -c "$NGX/nginx.conf" 2>&1 | grep -v 'signal process started' >&2 || true
    fi
    save_settings
    [ -z "$failed" ] || die "$failed (enrichd and nginx run the new file)"
    say "reloaded $CONF: enrichd, enrich-worker and nginx run it"
}

cmd_history() {
    load_settings
    [ -n "$STATE_DIR" ] || { read_conf 2>/dev/null || die "no state directory known: run ./deploy.sh up first"; }
    "$BUILD/enrichd" -c "$CONF" --state-dir "$STATE_DIR" --history
}

cmd_rollback() {
    load_settings
    [ -n "$STATE_DIR" ] || { read_conf 2>/dev/null || die "no state directory known: run ./deploy.sh up first"; }
    "$BUILD/enrichd" -c "$CONF" --state-dir "$STATE_DIR" --rollback${1:+="$1"} || exit 1
    if child_pid enrichd >/dev/null; then cmd_reload; else say "enrichd is not running; the file applies at the next ./deploy.sh up"; fi
}

cmd_logs() {
    load_settings
    local files=() f
    for f in "$(enrichd_log)" "$VAR/log/enrichd.log" "$(worker_log)" "$NGX/logs/error.log"; do
        [ -f "$f" ] && [[ " ${files[*]} " != *" $f "* ]] && files+=("$f")
    done
    [ ${#files[@]} -gt 0 ] || die "no logs yet"
    if [ -t 1 ]; then tail -n 50 -F "${files[@]}"; else tail -n 50 "${files[@]}"; fi
}

cmd_test() {
    deps
    tests/ci.sh
}

cmd_install() {
    deps
    local prefix=${PREFIX:-/usr/local}
    make -j"$(nproc)" BUILD="$BUILD" all >/dev/null
    make install-service BUILD="$BUILD" PREFIX="$prefix" DESTDIR="${DESTDIR:-}"
    if [ -z "${DESTDIR:-}" ]; then
        dist/service-setup.sh "$prefix"
        if [ -d /run/systemd/system ]; then
            systemctl daemon-reload
            systemctl enable --now enrichd enrich-worker
            systemctl reload nginx
            say "installed and started: systemctl status enrichd"
        else
            say "installed; systemd is not running here: start enrichd and enrich-worker by hand"
        fi
    else
        say "installed under $DESTDIR (nothing written outside it); on the target machine run"
        say "  $prefix/share/enrichd/service-setup.sh $prefix"
        say "to create the enrichd user and group, the state directory and the nginx site, then"
        say "  systemctl daemon-reload && systemctl enable --now enrichd enrich-worker && systemctl reload nginx"
    fi
    say "Replace the snakeoil certificate in /etc/nginx/enrichd/enrichd-site.conf with the real one;"
    say "put provider secrets in /etc/enrichd/secrets.env (mode 0600) as NAME=value lines."
}

case "${1:-}" in
    up) shift; cmd_up "$@" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    reload) cmd_reload ;;
    history) cmd_history ;;
    rollback) cmd_rollback "${2:-}" ;;
    logs) cmd_logs ;;
    test) cmd_test ;;
    deps) deps ;;
    install) shift; for a in "$@"; do case $a in DESTDIR=*|PREFIX=*) export "${a?}" ;; *) die "install: unknown argument $a" ;; esac; done; cmd_install ;;
    __supervise) shift; supervise "$@" ;;
    *) sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

#!/usr/bin/env bash
# enrichd local and production operations.
#
#   ./deploy.sh up         install missing packages, build, start nginx + enrichd +
#                          enrich-worker locally (state under var/), print a curl example
#   ./deploy.sh down       stop them
#   ./deploy.sh status     what runs, and /health
#   ./deploy.sh reload     validate conf/enrichd.conf, then apply it (SIGHUP); a bad file
#                          is reported and nothing changes
#   ./deploy.sh rollback   restore the last configuration that loaded well, and reload
#   ./deploy.sh logs       the last log lines (follows them on a terminal)
#   ./deploy.sh test       install missing packages, build, run the whole test suite
#                          (normal build, sanitizer build, fuzz smoke run)
#   ./deploy.sh deps       only install missing Debian packages
#   ./deploy.sh install    production install: service user, /etc/enrichd, systemd units,
#                          nginx site (PREFIX=/usr/local by default)
#
# Environment: HTTPS_PORT (8443), HTTP_PORT (8080), ENRICHD_CONF (conf/enrichd.conf),
# ENRICHD_VAR (var: pid files, logs, nginx state, dev certificate and key).
# Running `up` twice is harmless: what already runs is left running.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT=$(pwd)
VAR=${ENRICHD_VAR:-$ROOT/var}
CONF=${ENRICHD_CONF:-$ROOT/conf/enrichd.conf}
HTTPS_PORT=${HTTPS_PORT:-8443}
HTTP_PORT=${HTTP_PORT:-8080}
BUILD=${BUILD:-build}
NGX=$VAR/nginx
ENRICHD_PID=$VAR/run/enrichd.pid
WORKER_PID=$VAR/run/enrich-worker.pid

# Debian packages the build, the service and the tests need.
PACKAGES=(build-essential pkg-config ca-certificates openssl curl
          libfcgi-dev libcurl4-openssl-dev libjansson-dev libconfig-dev libsqlite3-dev
          libpq-dev libssl-dev libpsl-dev sqlite3 nginx-light fcgiwrap python3 wrk clang
          libclang-rt-14-dev)

say() { printf '%s\n' "$*"; }
die() { printf 'deploy.sh: %s\n' "$*" >&2; exit 1; }

deps() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
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

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

cert() {
    mkdir -p "$VAR/tls"
    if [ ! -f "$VAR/tls/cert.pem" ]; then
        say "Creating a development TLS certificate (var/tls/cert.pem)"
        openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=localhost" \
            -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
            -keyout "$VAR/tls/key.pem" -out "$VAR/tls/cert.pem" 2>/dev/null
        chmod 600 "$VAR/tls/key.pem"
    fi
}

render_nginx() {
    ENRICHD="$BUILD/enrichd" ENRICHD_CONF="$CONF" PREFIX="$NGX" \
    HTTP_PORT=$HTTP_PORT HTTPS_PORT=$HTTPS_PORT \
    CERT="$VAR/tls/cert.pem" CERT_KEY="$VAR/tls/key.pem" \
        nginx/render.sh "$NGX"
}

wait_health() {
    local i
    for i in $(seq 1 150); do
        if curl -skf "https://127.0.0.1:$HTTPS_PORT/health" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    return 1
}

start_enrichd() {
    if alive "$ENRICHD_PID"; then say "enrichd already running (pid $(cat "$ENRICHD_PID"))"; return; fi
    "$BUILD/enrichd" -t -c "$CONF" >/dev/null || die "$CONF is not valid (see above)"
    local ENRICHD_LISTEN
    eval "$("$BUILD/enrichd" -p -c "$CONF" | grep '^ENRICHD_LISTEN=')"
    mkdir -p "$(dirname "$ENRICHD_LISTEN")"
    setsid "$BUILD/enrichd" -c "$CONF" >>"$VAR/log/enrichd.log" 2>&1 </dev/null &
    echo $! >"$ENRICHD_PID"
    local i
    for i in $(seq 1 100); do
        [ -S "$ENRICHD_LISTEN" ] && break
        alive "$ENRICHD_PID" || die "enrichd exited at start; see var/log/enrichd.log"
        sleep 0.05
    done
    say "enrichd started (pid $(cat "$ENRICHD_PID"))"
}

start_worker() {
    [ -x "$BUILD/enrich-worker" ] || return 0
    if alive "$WORKER_PID"; then say "enrich-worker already running (pid $(cat "$WORKER_PID"))"; return; fi
    setsid "$BUILD/enrich-worker" -c "$CONF" >>"$VAR/log/enrich-worker.log" 2>&1 </dev/null &
    echo $! >"$WORKER_PID"
    say "enrich-worker started (pid $(cat "$WORKER_PID"))"
}

start_nginx() {
    if alive "$NGX/nginx.pid"; then
        nginx -p "$NGX" -c "$NGX/nginx.conf" -s reload
        say "nginx already running (pid $(cat "$NGX/nginx.pid")); configuration reloaded"
        return
    fi
    nginx -t -q -p "$NGX" -c "$NGX/nginx.conf" || die "the rendered nginx configuration is not valid"
    nginx -p "$NGX" -c "$NGX/nginx.conf"
    say "nginx started on https://127.0.0.1:$HTTPS_PORT (http://127.0.0.1:$HTTP_PORT redirects)"
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

cmd_up() {
    deps
    build
    mkdir -p "$VAR/run" "$VAR/log" "$NGX"
    cert
    render_nginx
    start_enrichd
    start_worker
    start_nginx
    wait_health || die "/health did not answer; see ./deploy.sh logs"
    local key
    key=$(dev_key)
    say ""
    say "enrichd is up: https://127.0.0.1:$HTTPS_PORT"
    say "  curl -sk https://127.0.0.1:$HTTPS_PORT/health"
    if [ -n "$key" ]; then
        say "Development API key (kept in var/dev-api-key): $key"
        say "  curl -sk https://127.0.0.1:$HTTPS_PORT/enrich -H 'Authorization: Bearer $key' \\"
        say "       -H 'Content-Type: application/json' -d '{\"email\": \"john.doe@example.com\"}'"
    fi
}

stop_pid() {
    local f=$1 name=$2 i
    if alive "$f"; then
        kill -TERM "$(cat "$f")"
        for i in $(seq 1 300); do alive "$f" || break; sleep 0.1; done
        alive "$f" && { say "$name did not stop in 30 s; killing"; kill -KILL "$(cat "$f")"; }
        say "$name stopped"
    fi
    rm -f "$f"
}

cmd_down() {
    if alive "$NGX/nginx.pid"; then
        nginx -p "$NGX" -c "$NGX/nginx.conf" -s quit
        local i
        for i in $(seq 1 100); do alive "$NGX/nginx.pid" || break; sleep 0.1; done
        say "nginx stopped"
    fi
    stop_pid "$WORKER_PID" enrich-worker
    stop_pid "$ENRICHD_PID" enrichd
}

cmd_status() {
    local rc=0
    if alive "$ENRICHD_PID"; then say "enrichd:       running (pid $(cat "$ENRICHD_PID"))"; else say "enrichd:       stopped"; rc=1; fi
    if alive "$WORKER_PID"; then say "enrich-worker: running (pid $(cat "$WORKER_PID"))"; else say "enrich-worker: stopped"; fi
    if alive "$NGX/nginx.pid"; then say "nginx:         running (pid $(cat "$NGX/nginx.pid"))"; else say "nginx:         stopped"; rc=1; fi
    say "health:        $(curl -sk --max-time 3 "https://127.0.0.1:$HTTPS_PORT/health" || echo unreachable)"
    return $rc
}

cmd_reload() {
    local out
    if ! out=$("$BUILD/enrichd" -t -c "$CONF" 2>&1); then
        say "$out"
        die "configuration refused; the running configuration is unchanged"
    fi
    alive "$ENRICHD_PID" || die "enrichd is not running (./deploy.sh up)"
    local before
    before=$(grep -c 'mod=config msg="reloaded' "$VAR/log/enrichd.log" 2>/dev/null || true)
    kill -HUP "$(cat "$ENRICHD_PID")"
    alive "$WORKER_PID" && kill -HUP "$(cat "$WORKER_PID")"
    render_nginx
    alive "$NGX/nginx.pid" && nginx -p "$NGX" -c "$NGX/nginx.conf" -s reload
    local i
    for i in $(seq 1 50); do
        [ "$(grep -c 'mod=config msg="reloaded' "$VAR/log/enrichd.log" 2>/dev/null || true)" -gt "$before" ] && { say "reloaded $CONF"; return 0; }
        sleep 0.1
    done
    die "enrichd did not confirm the reload; see ./deploy.sh logs"
}

cmd_rollback() {
    [ -f "$CONF.last-good" ] || die "no $CONF.last-good to roll back to"
    if cmp -s "$CONF" "$CONF.last-good"; then say "$CONF already equals the last good file"; fi
    cp -p "$CONF" "$CONF.rejected.$(date -u +%Y%m%dT%H%M%SZ)"
    cp -p "$CONF.last-good" "$CONF"
    say "restored $CONF from $CONF.last-good (previous file kept as $CONF.rejected.*)"
    if alive "$ENRICHD_PID"; then cmd_reload; fi
}

cmd_logs() {
    local files=()
    for f in "$VAR/log/enrichd.log" "$VAR/log/enrich-worker.log" "$NGX/logs/error.log"; do
        [ -f "$f" ] && files+=("$f")
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
    make -j"$(nproc)" all >/dev/null
    make install PREFIX="$prefix" DESTDIR="${DESTDIR:-}"
    local root=${DESTDIR:-}
    id enrichd >/dev/null 2>&1 || useradd --system --home /var/lib/enrichd --shell /usr/sbin/nologin \
        --gid www-data enrichd 2>/dev/null || useradd --system --home /var/lib/enrichd --shell /usr/sbin/nologin enrichd
    install -d -o enrichd -m 0750 "$root/var/lib/enrichd"
    install -d -m 0755 "$root/etc/enrichd"
    if [ ! -f "$root/etc/enrichd/enrichd.conf" ]; then
        sed -e 's|^listen = .*|listen = "/run/enrichd/enrichd.sock";|' \
            -e 's|^store = .*|store = "sqlite:/var/lib/enrichd/enrichd.db";|' \
            -e "s|^data_dir = .*|data_dir = \"$prefix/share/enrichd/data\";|" \
            conf/enrichd.conf >"$root/etc/enrichd/enrichd.conf"
        chown root:enrichd "$root/etc/enrichd/enrichd.conf" 2>/dev/null || true
        chmod 0640 "$root/etc/enrichd/enrichd.conf"
    fi
    install -d -m 0755 "$root/etc/systemd/system"
    cat >"$root/etc/systemd/system/enrichd.service" <<EOF
[Unit]
Description=enrichd enrichment API (FastCGI responder)
After=network.target

[Service]
User=enrichd
Group=www-data
RuntimeDirectory=enrichd
RuntimeDirectoryMode=0750
WorkingDirectory=/var/lib/enrichd
EnvironmentFile=-/etc/enrichd/secrets.env
ExecStartPre=$prefix/sbin/enrichd -t -c /etc/enrichd/enrichd.conf
ExecStart=$prefix/sbin/enrichd -c /etc/enrichd/enrichd.conf
ExecReload=$prefix/sbin/enrichd -t -c /etc/enrichd/enrichd.conf
ExecReload=/bin/kill -HUP \$MAINPID
KillSignal=SIGTERM
TimeoutStopSec=40
Restart=on-failure
NoNewPrivileges=true
ProtectSystem=strict
ReadWritePaths=/var/lib/enrichd /etc/enrichd
PrivateTmp=true

[Install]
WantedBy=multi-user.target
EOF
    cat >"$root/etc/systemd/system/enrich-worker.service" <<EOF
[Unit]
Description=enrichd batch worker
After=network.target enrichd.service

[Service]
User=enrichd
Group=www-data
WorkingDirectory=/var/lib/enrichd
EnvironmentFile=-/etc/enrichd/secrets.env
ExecStart=$prefix/bin/enrich-worker -c /etc/enrichd/enrichd.conf
ExecReload=/bin/kill -HUP \$MAINPID
KillSignal=SIGTERM
TimeoutStopSec=60
Restart=on-failure
NoNewPrivileges=true
ProtectSystem=strict
ReadWritePaths=/var/lib/enrichd
PrivateTmp=true

[Install]
WantedBy=multi-user.target
EOF
    # nginx site: the system nginx includes sites-enabled/*.
    local site="$root/etc/nginx/sites-available/enrichd"
    install -d -m 0755 "$root/etc/nginx/sites-available" "$root/etc/nginx/sites-enabled" "$root/etc/nginx/enrichd"
    local cert=/etc/ssl/certs/ssl-cert-snakeoil.pem key=/etc/ssl/private/ssl-cert-snakeoil.key
    ( cd /tmp && ENRICHD="$prefix/sbin/enrichd" ENRICHD_CONF="$root/etc/enrichd/enrichd.conf" \
        PREFIX=/var/lib/nginx LOG_DIR=/var/log/nginx LISTEN_ADDR=0.0.0.0 HTTP_PORT=80 HTTPS_PORT=443 \
        CERT=$cert CERT_KEY=$key TEMPLATES="$ROOT/nginx" "$ROOT/nginx/render.sh" "$root/etc/nginx/enrichd" )
    ln -sf /etc/nginx/enrichd/enrichd-site.conf "$site"
    ln -sf "$site" "$root/etc/nginx/sites-enabled/enrichd"
    if [ -z "${DESTDIR:-}" ] && [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        systemctl enable --now enrichd enrich-worker
        systemctl reload nginx
        say "installed and started: systemctl status enrichd"
    else
        say "installed under ${root:-/}; start with: systemctl daemon-reload && systemctl enable --now enrichd enrich-worker && systemctl reload nginx"
    fi
    say "Replace the snakeoil certificate in /etc/nginx/enrichd/enrichd-site.conf with the real one;"
    say "put provider secrets in /etc/enrichd/secrets.env (mode 0600) as NAME=value lines."
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    reload) cmd_reload ;;
    rollback) cmd_rollback ;;
    logs) cmd_logs ;;
    test) cmd_test ;;
    deps) deps ;;
    install) cmd_install ;;
    *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

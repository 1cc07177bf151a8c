#!/usr/bin/env bash
# Render the enrichd nginx templates into a directory.
#
#   nginx/render.sh OUT_DIR
#
# Reads the enrichd configuration through `enrichd -p` (socket path, body cap,
# server name, CORS origins) so nginx and enrichd never disagree.  Environment:
#   ENRICHD       enrichd binary                (default: build/enrichd)
#   ENRICHD_CONF  configuration file            (default: conf/enrichd.conf)
#   ENRICHD_SETTINGS  the output of `enrichd -p` taken earlier: render from it
#                 instead of reading the file again (deploy.sh renders a staging
#                 copy and the live one from one reading)
#   INCLUDE_DIR   where the rendered files will be read by nginx, for the
#                 include lines                 (default: OUT_DIR; an install into
#                                                DESTDIR gives the final path)
#   SITE_ONLY     1: only the site files (no nginx.conf, no state directories),
#                 for a system nginx that includes enrichd-site.conf
#   PREFIX        nginx state dir (pid, temp)   (default: OUT_DIR)
#   LOG_DIR       nginx logs                    (default: $PREFIX/logs)
#   LISTEN_ADDR   address nginx listens on      (default: 127.0.0.1)
#   HTTP_PORT / HTTPS_PORT                      (default: 8080 / 8443)
#   CERT / CERT_KEY  TLS certificate and key    (required)
#   WORKERS       worker_processes              (default: auto)
#   WORKER_CONNECTIONS  worker_connections (stand-alone nginx.conf; default: 8192)
#   LISTEN_BACKLOG  queue of connections nginx has not accepted yet, per listen
#                 (default: 4096; the kernel caps it at net.core.somaxconn)
#   DAEMON        on | off                      (default: on)
#   NGINX_USER    user line for nginx.conf      (default: none when not root,
#                                                the current user when root)
#   CONSOLE_DIR   the operators' console files (default: console/ beside nginx/)
#   DOCS_DIR      where openapi.json is            (default: docs/ beside nginx/)
#   CGI_WRAPPER_SOCKET  conventional hosting: pass requests to a FastCGI-to-CGI
#                 wrapper (fcgiwrap) on this socket, which runs CGI_SCRIPT (the
#                 enrichd binary) once per request with ENRICHD_CONF set
set -euo pipefail

out=${1:?usage: render.sh OUT_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
templates=${TEMPLATES:-$here}
enrichd=${ENRICHD:-build/enrichd}
conf=${ENRICHD_CONF:-conf/enrichd.conf}

mkdir -p "$out"
out=$(cd "$out" && pwd)
console_dir=${CONSOLE_DIR:-$here/../console}
docs_dir=${DOCS_DIR:-$here/../docs}
[ ! -d "$console_dir" ] || console_dir=$(cd "$console_dir" && pwd)
[ ! -d "$docs_dir" ] || docs_dir=$(cd "$docs_dir" && pwd)
for d in "$console_dir" "$docs_dir"; do
    case $d in *[[:space:]\;\{\}\$\'\"\#]*)
        echo "render.sh: $d has a character nginx cannot carry in a path" >&2; exit 1 ;;
    esac
done
include_dir=${INCLUDE_DIR:-$out}
prefix=${PREFIX:-$out}
log_dir=${LOG_DIR:-$prefix/logs}
[ "${SITE_ONLY:-0}" = 1 ] || mkdir -p "$prefix/tmp" "$log_dir"

if [ -n "${ENRICHD_SETTINGS:-}" ]; then
    vars=$ENRICHD_SETTINGS
else
    vars=$("$enrichd" -p -c "$conf") || { echo "render.sh: cannot read the settings of $conf (see above)" >&2; exit 1; }
fi
eval "$vars"

: "${CERT:?CERT is required}" "${CERT_KEY:?CERT_KEY is required}"
case "${WORKER_CONNECTIONS:-8192}" in
    ''|*[!0-9]*) echo "render.sh: WORKER_CONNECTIONS must be a whole number" >&2; exit 1 ;;
esac
case "${LISTEN_BACKLOG:-4096}" in
    ''|*[!0-9]*|0) echo "render.sh: LISTEN_BACKLOG must be a whole number above 0" >&2; exit 1 ;;
esac

cors_map=""
for origin in $ENRICHD_CORS_ORIGINS; do
    cors_map+="    \"$origin\" \$http_origin;"$'\n'
done

socket=$ENRICHD_LISTEN
cgi_params=""
if [ -n "${CGI_WRAPPER_SOCKET:-}" ]; then
    socket=$CGI_WRAPPER_SOCKET
    conf_abs=$(cd "$(dirname "$conf")" && pwd)/$(basename "$conf")
    cgi_params="fastcgi_param SCRIPT_FILENAME ${CGI_SCRIPT:?CGI_SCRIPT is required with CGI_WRAPPER_SOCKET};"$'\n'
    cgi_params+="fastcgi_param ENRICHD_CONF $conf_abs;"$'\n'
fi

user_line=""
if [ -n "${NGINX_USER:-}" ]; then
    user_line="user ${NGINX_USER};"
elif [ "$(id -u)" = 0 ]; then
    user_line="user $(id -un);"
fi

render() {
    local src=$1 dst=$2
    awk -v cors="$cors_map" -v cgi_params="$cgi_params" \
        -v server_name="$ENRICHD_SERVER_NAME" \
        -v listen_addr="${LISTEN_ADDR:-127.0.0.1}" \
        -v http_port="${HTTP_PORT:-8080}" \
        -v https_port="${HTTPS_PORT:-8443}" \
        -v cert="$CERT" -v cert_key="$CERT_KEY" \
        -v socket="$socket" \
        -v body_max="$ENRICHD_BODY_MAX_BYTES" \
        -v log_dir="$log_dir" -v prefix="$prefix" -v include_dir="$include_dir" \
        -v console_dir="$console_dir" -v docs_dir="$docs_dir" \
        -v workers="${WORKERS:-auto}" -v daemon="${DAEMON:-on}" \
        -v worker_connections="${WORKER_CONNECTIONS:-8192}" \
        -v listen_backlog="${LISTEN_BACKLOG:-4096}" \
        -v user_line="$user_line" '
    # gsub treats & and \ in the replacement specially; values are literal.
    function lit(s) { gsub(/\\/, "\\\\", s); gsub(/&/, "\\\\&", s); return s }
    BEGIN {
        server_name = lit(server_name); listen_addr = lit(listen_addr); cert = lit(cert)
        cert_key = lit(cert_key); socket = lit(socket); log_dir = lit(log_dir)
        prefix = lit(prefix); include_dir = lit(include_dir)
        console_dir = lit(console_dir); docs_dir = lit(docs_dir)
    }
    {
        if ($0 ~ /^@CORS_MAP@$/) { printf "%s", cors; next }
        if ($0 ~ /^@CGI_PARAMS@$/) { printf "%s", cgi_params; next }
        gsub(/@SERVER_NAME@/, server_name); gsub(/@LISTEN_ADDR@/, listen_addr)
        gsub(/@HTTP_PORT@/, http_port); gsub(/@HTTPS_PORT@/, https_port)
        gsub(/@CERT_KEY@/, cert_key); gsub(/@CERT@/, cert)
        gsub(/@SOCKET@/, socket); gsub(/@BODY_MAX@/, body_max)
        gsub(/@LOG_DIR@/, log_dir); gsub(/@PREFIX@/, prefix)
        gsub(/@INCLUDE_DIR@/, include_dir); gsub(/@WORKERS@/, workers)
        gsub(/@WORKER_CONNECTIONS@/, worker_connections)
        gsub(/@LISTEN_BACKLOG@/, listen_backlog)
        gsub(/@CONSOLE_DIR@/, console_dir); gsub(/@DOCS_DIR@/, docs_dir)
        gsub(/@DAEMON@/, daemon); gsub(/@USER_LINE@/, user_line)
        print
    }' "$src" > "$dst.tmp"
    mv "$dst.tmp" "$dst"
}

render "$templates/enrichd-errors.conf.in" "$out/enrichd-errors.conf"
render "$templates/enrichd-fastcgi.conf.in" "$out/enrichd-fastcgi.conf"
render "$templates/enrichd-site.conf.in" "$out/enrichd-site.conf"
[ "${SITE_ONLY:-0}" = 1 ] || render "$templates/nginx.conf.in" "$out/nginx.conf"

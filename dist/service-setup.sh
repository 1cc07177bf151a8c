#!/bin/sh
# Make an installed enrichd ready to run on this machine (as root): the enrichd
# system user and group, the state directory, the configuration readable by the
# service, and the nginx site rendered from /etc/enrichd/enrichd.conf.  Run by
# `deploy.sh install` and by the Debian package's postinst; safe to run again.
# With DPKG_ROOT set (dpkg --root with --force-script-chrootless) every change is
# made below that directory instead of /.
#
#   service-setup.sh [PREFIX]        (default /usr/local)
set -eu

prefix=${1:-/usr/local}
r=${DPKG_ROOT:-}

in_file() { grep -q "^$1:" "$r/etc/$2" 2>/dev/null; }
id_of() { awk -F: -v n="$1" '$1 == n { print $3 }' "$r/etc/$2"; }

if [ -n "$r" ]; then at="--prefix $r"; else at=""; fi
# shellcheck disable=SC2086
in_file enrichd group || groupadd $at --system enrichd
# shellcheck disable=SC2086
in_file enrichd passwd || useradd $at --system --gid enrichd --home-dir /var/lib/enrichd \
    --no-create-home --shell /usr/sbin/nologin --comment "enrichd service" enrichd
uid=$(id_of enrichd passwd)
gid=$(id_of enrichd group)

install -d -o "$uid" -g "$gid" -m 0750 "$r/var/lib/enrichd"
chown "0:$gid" "$r/etc/enrichd" "$r/etc/enrichd/enrichd.conf"
chmod 0750 "$r/etc/enrichd"
chmod 0640 "$r/etc/enrichd/enrichd.conf"
# systemd reads EnvironmentFile= as root: the secrets need no group.
if [ -f "$r/etc/enrichd/secrets.env" ]; then
    chown 0:0 "$r/etc/enrichd/secrets.env"
    chmod 0600 "$r/etc/enrichd/secrets.env"
fi

# The site uses the snakeoil certificate (package ssl-cert) until a real one is
# configured; ssl-cert makes it at install, unless openssl was missing then.
if [ -z "$r" ] && [ ! -f /etc/ssl/certs/ssl-cert-snakeoil.pem ]; then
    make-ssl-cert generate-default-snakeoil
fi

# Render the site again from the file on this machine (its server_name, body cap
# and CORS origins may differ from the defaults).
install -d -m 0755 "$r/etc/nginx/enrichd" "$r/etc/nginx/sites-available" "$r/etc/nginx/sites-enabled"
ENRICHD="$r$prefix/sbin/enrichd" ENRICHD_CONF="$r/etc/enrichd/enrichd.conf" SITE_ONLY=1 \
INCLUDE_DIR=/etc/nginx/enrichd LOG_DIR=/var/log/nginx LISTEN_ADDR=0.0.0.0 \
HTTP_PORT=80 HTTPS_PORT=443 \
CONSOLE_DIR="$prefix/share/enrichd/console" DOCS_DIR="$prefix/share/enrichd/docs" \
CERT=/etc/ssl/certs/ssl-cert-snakeoil.pem CERT_KEY=/etc/ssl/private/ssl-cert-snakeoil.key \
    "$r$prefix/share/enrichd/nginx/render.sh" "$r/etc/nginx/enrichd"
ln -sfn /etc/nginx/enrichd/enrichd-site.conf "$r/etc/nginx/sites-available/enrichd"
ln -sfn ../sites-available/enrichd "$r/etc/nginx/sites-enabled/enrichd"

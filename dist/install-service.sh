#!/usr/bin/env bash
# Install enrichd as a system service into DESTDIR (make install-service; deploy.sh
# install; the Debian package).  Writes nothing outside DESTDIR: no user, no group,
# no state directory (service-setup.sh does those on the target machine; systemd's
# StateDirectory= creates /var/lib/enrichd too).
#
#   dist/install-service.sh DESTDIR PREFIX BUILD [UNIT_DIR]
#
# UNIT_DIR is where the systemd units go (default /etc/systemd/system; the package
# uses /lib/systemd/system).  The nginx site is rendered with the enrichd just built,
# from the configuration installed here, with include lines and symlinks that name
# the final paths (never DESTDIR).
set -euo pipefail

destdir=${1?usage: install-service.sh DESTDIR PREFIX BUILD [UNIT_DIR]}
prefix=${2:?PREFIX}
build=${3:?BUILD}
unit_dir=${4:-/etc/systemd/system}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
case $build in /*) ;; *) build=$src/$build ;; esac

etc=$destdir/etc
install -d -m 0755 "$etc/enrichd" "$destdir$unit_dir" "$etc/nginx/enrichd" \
    "$etc/nginx/sites-available" "$etc/nginx/sites-enabled" "$destdir$prefix/share/enrichd"

# The configuration, with the paths of a system service.  An existing file is kept.
conf=$etc/enrichd/enrichd.conf
if [ ! -f "$conf" ]; then
    sed -e 's|^listen = .*|listen = "/run/enrichd/enrichd.sock";|' \
        -e 's|^listen_group = .*|listen_group = "www-data";|' \
        -e 's|^store = .*|store = "sqlite:/var/lib/enrichd/enrichd.db";|' \
        -e 's|^state_dir = .*|state_dir = "/var/lib/enrichd";|' \
        -e "s|^data_dir = .*|data_dir = \"$prefix/share/enrichd/data\";|" \
        -e 's|^  server_name = .*|  server_name = "_";|' \
        "$src/conf/enrichd.conf" >"$conf.tmp"
    chmod 0640 "$conf.tmp"
    mv "$conf.tmp" "$conf"
fi

for unit in enrichd enrich-worker; do
    sed "s|@PREFIX@|$prefix|g" "$src/dist/systemd/$unit.service.in" >"$destdir$unit_dir/$unit.service"
    chmod 0644 "$destdir$unit_dir/$unit.service"
done

# The nginx site for the system nginx (it includes sites-enabled/*).
ENRICHD="$build/enrichd" ENRICHD_CONF="$conf" SITE_ONLY=1 INCLUDE_DIR=/etc/nginx/enrichd \
CONSOLE_DIR="$prefix/share/enrichd/console" DOCS_DIR="$prefix/share/enrichd/docs" \
LOG_DIR=/var/log/nginx LISTEN_ADDR=0.0.0.0 HTTP_PORT=80 HTTPS_PORT=443 \
CERT=/etc/ssl/certs/ssl-cert-snakeoil.pem CERT_KEY=/etc/ssl/private/ssl-cert-snakeoil.key \
    "$src/nginx/render.sh" "$etc/nginx/enrichd"
ln -sfn /etc/nginx/enrichd/enrichd-site.conf "$etc/nginx/sites-available/enrichd"
ln -sfn ../sites-available/enrichd "$etc/nginx/sites-enabled/enrichd"

install -m 0755 "$src/dist/service-setup.sh" "$destdir$prefix/share/enrichd/service-setup.sh"

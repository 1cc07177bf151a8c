#!/usr/bin/env bash
# Build the Debian package with dpkg-deb (make deb):  dist/mkdeb.sh BUILD
# Output: BUILD/deb/enrichd_VERSION_ARCH.deb.  Files are owned by root in the
# package; the maintainer scripts (dist/debian/) create the enrichd user and
# group, the state directory and the nginx site, then enable and start the
# services where systemd runs.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$src/$build ;; esac
version=$(cat "$src/VERSION")
arch=$(dpkg --print-architecture)
out=$build/deb
root=$out/root
rm -rf "$root"
mkdir -p "$root/DEBIAN"

make -C "$src" --no-print-directory install BUILD="$build" PREFIX=/usr DESTDIR="$root" >/dev/null
"$src/dist/install-service.sh" "$root" /usr "$build" /lib/systemd/system
# The site is rendered on the target from its configuration (postinst).
rm -rf "$root/etc/nginx"

# The shared libraries the programs link directly (NEEDED), by the packages that
# ship them.
depends=$(for b in "$root"/usr/sbin/* "$root"/usr/bin/*; do objdump -p "$b" | awk '$1 == "NEEDED" { print $2 }'; done |
    sort -u | while read -r so; do
        lib=$(ldconfig -p | awk -v so="$so" '$1 == so && $NF ~ /^\// { print $NF; exit }')
        [ -n "$lib" ] && { dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null || true; }
    done | cut -d: -f1 | sort -u | grep -v '^libc6$' |
    while read -r p; do printf '%s (>= %s), ' "$p" "$(dpkg-query -W -f='${Version}' "$p" | sed 's/-[^-]*$//')"; done)
libc=$(dpkg-query -W -f='${Version}' libc6 | sed 's/-[^-]*$//')
size=$(du -sk "$root" | cut -f1)

cat >"$root/DEBIAN/control" <<CONTROL
Package: enrichd
Version: $version
Architecture: $arch
Maintainer: enrichd <dev@enrichd.local>
Installed-Size: $size
Depends: libc6 (>= $libc), ${depends}nginx-light | nginx, ssl-cert, passwd
Recommends: systemd
Section: net
Priority: optional
Description: enrichment API gateway (FastCGI responder, batch worker, CLIs)
 enrichd sits between applications and paid data providers: one HTTPS API
 with client keys, rate limits and metering, a cache, a waterfall of
 providers with smart key rotation, and batch jobs run by enrich-worker.
 This package installs the programs, systemd units, /etc/enrichd/enrichd.conf
 and an nginx site, and starts the services.
CONTROL
echo /etc/enrichd/enrichd.conf >"$root/DEBIAN/conffiles"
install -m 0755 "$src/dist/debian/postinst" "$src/dist/debian/prerm" "$src/dist/debian/postrm" "$root/DEBIAN/"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles"

deb=$out/enrichd_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zgzip --build "$root" "$deb" >/dev/null
echo "$deb"

#!/bin/bash
# Builds the .deb from the app-image (plain dpkg-deb layout): /opt/vhost-appliance (app-image, README,
# example configs), /usr/bin/vhost-user-{blk,input,gpu} and vhost-appliance links, the backend descriptors in
# /usr/share/qemu/vhost-user/, the template unit vhost-appliance@.service, /etc/vhost-appliance/application.yaml
# (a conffile: dpkg -r keeps it, dpkg -P removes it).
#   deb.sh APP_IMAGE_DIR OUT_DIR VERSION
set -euo pipefail
app=${1:?app-image dir} out=${2:?output dir} version=${3:?version}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -d "$stage/opt" "$stage/usr/bin" "$stage/usr/share/qemu/vhost-user" "$stage/lib/systemd/system" \
  "$stage/etc/vhost-appliance" "$stage/DEBIAN"
cp -a "$app" "$stage/opt/vhost-appliance"
install -d "$stage/opt/vhost-appliance/config"
cp -a "$top/config/examples" "$stage/opt/vhost-appliance/config/"
cp "$top/README.md" "$stage/opt/vhost-appliance/"
for b in vhost-appliance vhost-user-blk vhost-user-input vhost-user-gpu; do
  ln -s "/opt/vhost-appliance/bin/$b" "$stage/usr/bin/$b"
done
install -m 0644 "$top"/config/vhost-user/60-vhost-appliance-*.json "$stage/usr/share/qemu/vhost-user/"
install -m 0644 "$here/deb/vhost-appliance@.service" "$stage/lib/systemd/system/"
install -m 0644 "$here/deb/application.yaml" "$stage/etc/vhost-appliance/application.yaml"
echo /etc/vhost-appliance/application.yaml > "$stage/DEBIAN/conffiles"
size=$(du -sk "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: vhost-appliance
Version: ${version}
Architecture: amd64
Maintainer: vhost-appliance developers <dev@vhost-appliance.invalid>
Installed-Size: ${size}
Depends: libc6 (>= 2.34)
Section: admin
Priority: optional
Homepage: https://vhost-appliance.invalid
Description: vhost-user device backends on the JVM (block, input, gpu)
 A Java 25 / Quarkus appliance serving vhost-user-blk, vhost-user-input and vhost-user-gpu devices to QEMU
 over Unix sockets, with a qemu-storage-daemon compatible command line, a QMP monitor and config-file
 setups serving many devices in one process. Ships its own Java runtime.
CONTROL
mkdir -p "$out"
deb="$out/vhost-appliance_${version}_amd64.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"

#!/bin/bash
# Builds the OCI image without a Docker daemon: a root file system with the app-image under
# /opt/vhost-appliance plus the glibc pieces the launcher and libjvm need (taken from this machine, whose
# glibc the app-image was linked against), an unprivileged user, then "podman build" on it (FROM scratch).
#   build-image.sh APP_IMAGE_DIR TAG
set -euo pipefail
app=${1:?app-image dir} tag=${2:?image tag}
here=$(cd "$(dirname "$0")" && pwd)
root=$(mktemp -d)
containerfile=$(mktemp)
trap 'rm -rf "$root" "$containerfile"' EXIT
mkdir -p "$root/opt" "$root/etc" "$root/tmp" "$root/run/vhost-appliance" "$root/etc/vhost-appliance"
cp -a "$app" "$root/opt/vhost-appliance"
# The entry point can use one AOT cache only (no shell to pick one per device): the others would be dead weight.
find "$root/opt/vhost-appliance/lib/aot" -name '*.aot' ! -name qsd.aot -delete
# The shared libraries the launcher and the JVM's own libraries need, except the X11/ALSA ones only AWT uses.
libs=$( { ldd "$app/lib/runtime/bin/java"; find "$app/lib" -name '*.so' -exec ldd {} \; ; } 2>/dev/null |
  awk '$3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | grep -v "^$app" | grep -Ev 'lib(X|xcb|asound|bsd|md)' | sort -u)
for l in $libs; do
  mkdir -p "$root$(dirname "$l")"
  cp -L "$l" "$root$l"
done
printf 'root:x:0:0:root:/:/sbin/nologin\nvhost:x:10001:10001:vhost-appliance:/tmp:/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\nvhost:x:10001:\n' > "$root/etc/group"
chmod 1777 "$root/tmp"
chown 10001:10001 "$root/run/vhost-appliance"
# The image has no shell for bin/vhost-appliance (a script): the entry point runs the Java runtime itself, with
# the launcher's JVM options and the AOT cache of the qemu-storage-daemon start-up.
entry='"/opt/vhost-appliance/lib/runtime/bin/java"'
for o in $(cat "$app/lib/jvm.options"); do entry="$entry, \"$o\""; done
if [ -f "$app/lib/aot/qsd.aot" ]; then entry="$entry, \"-XX:AOTCache=/opt/vhost-appliance/lib/aot/qsd.aot\""; fi
entry="$entry, \"-Dvhost.invoked-as=vhost-appliance\", \"-jar\", \"/opt/vhost-appliance/lib/app/quarkus-run.jar\""
{ cat "$here/Containerfile"; echo "ENTRYPOINT [$entry]"; } >"$containerfile"
podman build --runtime runc -q -t "$tag" -f "$containerfile" "$root" >/dev/null
podman image inspect "$tag" --format '{{.Id}} {{.Size}}'

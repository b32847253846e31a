#!/bin/sh
# The app-image's launcher: bin/vhost-appliance, and bin/vhost-user-{blk,input,gpu} as links to it (QEMU's
# backend program names; a link to a link, e.g. /usr/bin/vhost-user-gpu, stays that device). It replaces
# itself (exec) with the bundled Java runtime, so signals and inherited file descriptors reach the JVM.
# A script rather than jpackage's native launcher: that one runs `dpkg -S` and `rpm -qf` on itself at every
# start (about 0.5 s here; README "Footprint").
self=$(readlink -f "$0")
here=${self%/bin/*}
name=${0##*/}
# Each start-up's own AOT cache (src/packaging/aot-train.sh), when the build could make one.
. "$here/lib/aot-start-up.sh"
aot_start_up "$name" "${1-}"
aot=
[ -f "$here/lib/aot/$start_up.aot" ] && aot="-XX:AOTCache=$here/lib/aot/$start_up.aot"
read -r opts <"$here/lib/jvm.options"
# shellcheck disable=SC2086
exec "$here/lib/runtime/bin/java" $opts $aot -Dvhost.invoked-as="$name" \
  -jar "$here/lib/app/quarkus-run.jar" "$@"

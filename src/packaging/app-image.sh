#!/bin/bash
# Builds the tested distribution: a jlink'd Java runtime, the application and its launchers, runnable with no
# JDK installed. Called by the app module in the package phase:
#   app-image.sh QUARKUS_APP_DIR OUTPUT_DIR
# Output: OUTPUT_DIR/bin/vhost-appliance (launcher.sh) and the device links vhost-user-{blk,input,gpu};
# lib/runtime (the Java runtime), lib/app (the application), lib/jvm.options, lib/aot (AOT caches) and
# lib/aot-start-up.sh (which cache a launcher uses).
set -euo pipefail
app=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
: "${JAVA_HOME:?JAVA_HOME must point at a JDK 25}"
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib/aot"

# jdeps cannot resolve Quarkus' jars (it stops at optional dependencies): this list is kept by hand and
# checked by the app-image integration tests, which run every launcher.
modules=java.base,java.logging,java.management,java.naming,java.xml,java.desktop,java.sql,jdk.unsupported,jdk.zipfs,jdk.jfr
"$JAVA_HOME/bin/jlink" --add-modules "$modules" --strip-debug --no-header-files --no-man-pages \
  --compress=zip-6 --output "$out/lib/runtime"
cp -a "$app" "$out/lib/app"
grep -v '^#' "$here/jvm.options" | grep -v '^$' | tr '\n' ' ' >"$out/lib/jvm.options"
install -m 0755 "$here/launcher.sh" "$out/bin/vhost-appliance"
install -m 0644 "$here/aot-start-up.sh" "$out/lib/aot-start-up.sh"
for prog in vhost-user-blk vhost-user-input vhost-user-gpu; do
  ln -s vhost-appliance "$out/bin/$prog"
done

# JDK AOT caches (JEP 483/514/515), one per start-up, each trained on that launcher's own start-up
# (aot-train.sh): a device maps only the classes its start-up needs. Measured: README "Footprint". A launcher
# whose training fails still works, only without a cache.
"$here/aot-train.sh" "$out/lib/aot/qsd.aot" qsd "$out/bin/vhost-appliance" || true
"$here/aot-train.sh" "$out/lib/aot/blk.aot" blk "$out/bin/vhost-user-blk" || true
"$here/aot-train.sh" "$out/lib/aot/input.aot" input "$out/bin/vhost-user-input" || true
"$here/aot-train.sh" "$out/lib/aot/gpu.aot" gpu "$out/bin/vhost-user-gpu" || true
"$here/aot-train.sh" "$out/lib/aot/run.aot" run "$out/bin/vhost-appliance" || true
echo "app-image: $out ($(du -sh "$out" | cut -f1))"

#!/bin/bash
# Builds the tested distribution: a jlink'd Java runtime plus jpackage native launchers (app-image),
# runnable with no JDK installed. Called by the app module in the package phase:
#   app-image.sh QUARKUS_APP_DIR OUTPUT_DIR
# Output: OUTPUT_DIR/bin/{vhost-appliance,vhost-user-blk,vhost-user-input,vhost-user-gpu}, lib/...
# The device launchers differ only in -Dvhost.invoked-as, which selects the device (QEMU's program names).
set -euo pipefail
app=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
: "${JAVA_HOME:?JAVA_HOME must point at a JDK 25}"
work=$(dirname "$out")/app-image-work
rm -rf "$out" "$work"
mkdir -p "$work/launchers"

# jdeps cannot resolve Quarkus' jars (it stops at optional dependencies): this list is kept by hand and
# checked by the app-image integration tests, which run every launcher.
modules=java.base,java.logging,java.management,java.naming,java.xml,java.desktop,java.sql,jdk.unsupported,jdk.zipfs,jdk.jfr
"$JAVA_HOME/bin/jlink" --add-modules "$modules" --strip-debug --no-header-files --no-man-pages \
  --compress=zip-6 --output "$work/runtime"

opts=$(grep -v '^#' "$here/jvm.options" | grep -v '^$' | tr '\n' ' ')
for prog in vhost-user-blk vhost-user-input vhost-user-gpu; do
  printf 'java-options=%s -Dvhost.invoked-as=%s\n' "$opts" "$prog" > "$work/launchers/$prog.properties"
done
args=()
for o in $opts; do args+=(--java-options "$o"); done
"$JAVA_HOME/bin/jpackage" --type app-image --name vhost-appliance --dest "$work/out" \
  --input "$app" --main-jar quarkus-run.jar --runtime-image "$work/runtime" \
  "${args[@]}" --java-options -Dvhost.invoked-as=vhost-appliance \
  --add-launcher vhost-user-blk="$work/launchers/vhost-user-blk.properties" \
  --add-launcher vhost-user-input="$work/launchers/vhost-user-input.properties" \
  --add-launcher vhost-user-gpu="$work/launchers/vhost-user-gpu.properties"
mv "$work/out/vhost-appliance" "$out"

# JDK 25 AOT cache (JEP 514/515): one training run of the real start-up path (parse the command line,
# open an image, listen, SIGTERM), then every launcher loads the cache. Measured: see README "Packaging".
# If training fails the image still works, only without the cache.
train="$work/train"
mkdir -p "$train"
truncate -s 1M "$train/img"
aot="$out/lib/app/vhost-appliance.aot"
JAVA_TOOL_OPTIONS="-XX:AOTCacheOutput=$aot" "$out/bin/vhost-user-blk" --socket-path="$train/s.sock" \
  --blk-file="$train/img" >"$train/log" 2>&1 &
pid=$!
for _ in $(seq 300); do [ -S "$train/s.sock" ] && break; sleep 0.1; done
kill -TERM "$pid" 2>/dev/null || true
wait "$pid" || true
if [ -f "$aot" ]; then
  for cfg in "$out"/lib/app/*.cfg; do
    printf 'java-options=-XX:AOTCache=$APPDIR/vhost-appliance.aot\n' >>"$cfg"
  done
else
  echo "app-image: AOT cache training failed, continuing without it:" >&2
  tail -n 5 "$train/log" >&2
fi
rm -rf "$work"
echo "app-image: $out ($(du -sh "$out" | cut -f1))"

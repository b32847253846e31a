#!/bin/bash
# AOT caches for the repository-root script ./vhost-appliance (the fast path for developers and the tests'
# launchers): one per device start-up, trained with the JDK that built the project (aot-train.sh). Called by
# the app module in the package phase:
#   aot-root.sh QUARKUS_APP_DIR OUTPUT_DIR
# Output: OUTPUT_DIR/{qsd,blk,input,gpu,run}.aot and OUTPUT_DIR/java-home (the JDK they belong to: the root
# script uses them only with that JDK).
set -uo pipefail
app=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
: "${JAVA_HOME:?JAVA_HOME must point at a JDK 25}"
rm -rf "$out"
mkdir -p "$out"
read -r -a opts <<<"$(grep -v '^#' "$here/jvm.options" | grep -v '^$' | tr '\n' ' ')"
java=("$JAVA_HOME/bin/java" "${opts[@]}" -jar "$app/quarkus-run.jar")
"$here/aot-train.sh" "$out/qsd.aot" qsd "${java[@]}"
"$here/aot-train.sh" "$out/blk.aot" blk "${java[@]}" block
"$here/aot-train.sh" "$out/input.aot" input "${java[@]}" input
"$here/aot-train.sh" "$out/gpu.aot" gpu "${java[@]}" gpu
"$here/aot-train.sh" "$out/run.aot" run "${java[@]}"
echo "$JAVA_HOME" >"$out/java-home"
exit 0

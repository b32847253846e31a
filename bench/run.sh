#!/bin/bash
# Runs the A/B benchmark against qemu-storage-daemon (see README "Benchmark"). Fetches libblkio 1.5.0 from
# Debian 13 into a private cache directory the first time (apt-get download through a temporary source list
# that reuses this machine's Debian archive URI; nothing is installed system-wide), builds the appliance,
# then runs bench/src/main/java/dev/vhostappliance/bench/BlkBench.java. Extra arguments are passed on
# (--seconds N, --rounds N, --only null-co/1).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${VHOST_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vhost-appliance-bench}
lib=$cache/root/usr/lib/x86_64-linux-gnu/libblkio.so.1
if [ ! -f "$lib" ]; then
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uri" ] || { echo "bench: no Debian archive URI in /etc/apt/sources.list.d/debian.sources" >&2; exit 1; }
  mkdir -p "$cache/apt/lists/partial" "$cache/apt/cache/archives/partial" "$cache/debs"
  printf 'Types: deb\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$uri" > "$cache/apt/trixie.sources"
  opts=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$cache/apt" -o Dir::State::Lists="$cache/apt/lists"
        -o Dir::Cache="$cache/apt/cache")
  apt-get "${opts[@]}" update -qq
  (cd "$cache/debs" && apt-get "${opts[@]}" download libblkio1)
  dpkg-deb -x "$cache"/debs/libblkio1_*.deb "$cache/root"
fi
command -v qemu-storage-daemon >/dev/null || { echo "bench: needs qemu-storage-daemon (Debian package qemu-system-common)" >&2; exit 1; }
"$root/mvnw" -q -B install -DskipTests
. "$root/.mvn/jdk.sh"
vhost_select_jdk
exec "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -cp "$root/bench/target/classes" \
  dev.vhostappliance.bench.BlkBench --libblkio "$lib" --appliance "$root/app/target/app-image/bin/vhost-appliance" "$@"

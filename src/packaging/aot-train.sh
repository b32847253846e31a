#!/bin/bash
# Trains a JDK AOT cache (JEP 483/514/515) on one device's real start-up path: start, listen, SIGTERM. The cache
# holds the classes that start-up loaded, already parsed and linked, and their method profiles; a process
# started with -XX:AOTCache=CACHE maps them instead of loading them from the jars.
#   aot-train.sh CACHE DEVICE COMMAND...
# DEVICE is the start-up to train: blk (vhost-user-blk's conventional options), qsd (qemu-storage-daemon
# options), input (a virtual keyboard), gpu, run (a configuration file serving one device of each type).
# COMMAND is the launcher, e.g. app-image/bin/vhost-user-blk or "java OPTIONS -jar quarkus-run.jar block"; the
# device's options are appended. A training that fails leaves no cache behind and says why on stderr (the
# launchers then start without one: slower, nothing else).
set -uo pipefail
cache=${1:?cache} device=${2:?device}
shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sock="$work/s.sock"
truncate -s 1M "$work/img"
case $device in
  blk) args=(--socket-path="$sock" --blk-file="$work/img") ;;
  qsd) args=(--blockdev "driver=file,node-name=d,filename=$work/img"
    --export "type=vhost-user-blk,id=e,node-name=d,addr.type=unix,addr.path=$sock,writable=on") ;;
  input) args=(--socket-path="$sock" --event-socket="$work/ev.sock" --preset=keyboard) ;;
  gpu) args=(--socket-path="$sock") ;;
  run)
    cat >"$work/appliance.yaml" <<YAML
appliance:
  devices:
    disk:
      type: block
      socket-path: $work/disk.sock
      blk-file: $work/img
    kbd:
      type: input
      socket-path: $work/kbd.sock
      event-socket: $work/ev.sock
      preset: keyboard
    screen:
      type: gpu
      socket-path: $sock
YAML
    args=(run --config "$work/appliance.yaml") ;;
  *) echo "aot-train.sh: unknown device $device" >&2; exit 2 ;;
esac
rm -f "$cache"
JAVA_TOOL_OPTIONS="-XX:AOTCacheOutput=$cache" "$@" "${args[@]}" >"$work/log" 2>&1 &
pid=$!
listening() { # every socket the start-up makes
  [ -S "$sock" ] || return 1
  [ "$device" != run ] || { [ -S "$work/disk.sock" ] && [ -S "$work/kbd.sock" ]; }
}
for _ in $(seq 600); do listening && break; sleep 0.05; done
kill -TERM "$pid" 2>/dev/null
# The cache is written as the JVM exits (a second JVM assembles it); a training that does not end fails.
for _ in $(seq 1200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
if kill -KILL "$pid" 2>/dev/null; then
  echo "aot-train.sh: $device did not end within 60 s of SIGTERM" >>"$work/log"
  rm -f "$cache"
fi
wait "$pid"
if [ ! -s "$cache" ]; then
  echo "aot-train.sh: no AOT cache for $device (the launcher starts without one):" >&2
  tail -n 5 "$work/log" >&2
  exit 1
fi

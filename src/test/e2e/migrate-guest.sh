#!/bin/bash
# Live migration of the end-to-end guest between two QEMU processes on this machine (TCG), each with a
# vhost-user-blk device on its own socket (two exports of one image, as qemu-storage-daemon setups do).
# The source runs SCRIPT; once it prints MIGRATE, the source migrates to the destination (QMP migrate over a
# unix socket); the guest finishes on the destination.
#   migrate-guest.sh SRC_SOCKET DST_SOCKET SCRIPT TIMEOUT_SECONDS
# Prints the guest's output (both halves) and "MIGRATION status=... total_ms=... downtime_ms=..."; exit 0 when
# the script ended on the destination, 3 otherwise.
set -euo pipefail
src_sock=$1 dst_sock=$2 script=$3 limit=$4
. "$(cd "$(dirname "$0")" && pwd)/guest-lib.sh"
guest_setup "$script"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$run"' EXIT
qemu() { # NAME SOCKET EXTRA...
  local name=$1 sock=$2; shift 2
  "${QEMU:-qemu-system-x86_64}" "${guest_machine[@]}" -smp 1 \
    -chardev socket,id=vblk0,path="$sock" -device vhost-user-blk-pci,chardev=vblk0,id=vblk \
    -qmp unix:"$run/$name.qmp",server=on,wait=off \
    -serial file:"$run/$name.console" -serial file:"$run/$name.results" \
    -kernel "$KERNEL" -initrd "$run/initrd" -append "console=ttyS0 quiet panic=-1 rdinit=/init" "$@" \
    > "$run/$name.log" 2>&1
}
qmp() { # NAME JSON...: runs the commands after qmp_capabilities, prints the replies
  local name=$1; shift
  { echo '{"execute":"qmp_capabilities"}'; for c in "$@"; do echo "$c"; done; sleep 0.5; } |
    socat -t 2 - UNIX-CONNECT:"$run/$name.qmp" | tr -d '\r' | grep -v '"QMP"' | grep -v '^{"return": {}}$' || true
}
: > "$run/src.results"; : > "$run/dst.results"
qemu dst "$dst_sock" -incoming unix:"$run/migrate.sock" &
qemu src "$src_sock" &
deadline=$((SECONDS + limit))
until grep -q MIGRATE "$run/src.results" 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || { echo "migrate-guest: the guest never asked to migrate" >&2; tail "$run"/*.log >&2; cat "$run/src.results"; exit 3; }
  sleep 0.5
done
# bounded bandwidth: the migration takes seconds, with the guest's I/O going on meanwhile
qmp src '{"execute":"migrate-set-parameters","arguments":{"max-bandwidth":'"${MIGRATE_BANDWIDTH:-41943040}"'}}' \
  '{"execute":"migrate","arguments":{"uri":"unix:'"$run/migrate.sock"'"}}' > /dev/null
status=
until [ "$status" = completed ] || [ "$status" = failed ]; do
  [ $SECONDS -lt $deadline ] || break
  sleep 1
  info=$(qmp src '{"execute":"query-migrate"}')
  status=$(echo "$info" | sed -n 's/.*"status": "\([a-z-]*\)".*/\1/p' | head -n 1)
done
total=$(echo "$info" | sed -n 's/.*"total-time": \([0-9]*\).*/\1/p' | head -n 1)
downtime=$(echo "$info" | sed -n 's/.*"downtime": \([0-9]*\).*/\1/p' | head -n 1)
echo "MIGRATION status=$status total_ms=${total:-?} downtime_ms=${downtime:-?}"
[ "$status" = completed ] && qmp src '{"execute":"quit"}' > /dev/null
until grep -q "===E2E-END" "$run/dst.results" 2>/dev/null; do
  if [ $SECONDS -ge $deadline ]; then
    echo "migrate-guest: no result on the destination" >&2; tail -n 20 "$run"/*.log >&2 || true
    # the guest kernel's blocked tasks (fio waiting in the block layer: a request it never saw completed)
    # (alt-sysrq-8 first: the list is printed at KERN_INFO, below the console level of a quiet boot)
    qmp dst '{"execute":"human-monitor-command","arguments":{"command-line":"sendkey alt-sysrq-8"}}' \
      '{"execute":"human-monitor-command","arguments":{"command-line":"sendkey alt-sysrq-w"}}' > /dev/null
    sleep 3; echo "==> $run/dst.console <==" >&2; tail -n 60 "$run/dst.console" >&2 || true
    # where the destination's ring stands in guest memory: avail (flags, idx) and used (flags, idx); requests
    # the backend never answered show as a used idx behind the avail idx
    vq=$(qmp dst '{"execute":"x-query-virtio-vhost-queue-status","arguments":{"path":"/machine/peripheral/vblk/virtio-backend","queue":0}}')
    for ring in avail used; do
      addr=$(echo "$vq" | sed -n 's/.*"'$ring'-phys": \([0-9]*\).*/\1/p')
      [ -n "$addr" ] && qmp dst '{"execute":"human-monitor-command","arguments":{"command-line":"xp /2hx '"$addr"'"}}' |
        sed "s/^/$ring ring: /" >&2
    done
    tr -d '\r' < "$run/src.results"; echo "---- destination (unfinished) ----"; tr -d '\r' < "$run/dst.results"; exit 3
  fi
  sleep 1
done
tr -d '\r' < "$run/src.results"
echo "---- destination ----"
tr -d '\r' < "$run/dst.results"

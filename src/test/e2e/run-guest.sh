#!/bin/bash
# Boots the end-to-end guest in QEMU (always TCG: /dev/kvm may exist without working) with a
# vhost-user-blk-pci device on SOCKET, runs SCRIPT inside it and prints what the script printed.
#   run-guest.sh SOCKET NUM_QUEUES SMP SCRIPT [TIMEOUT_SECONDS]
# Exit status: 0 the guest script ran (its own rc is in the last line "===E2E-END rc=N==="); 3 no output.
set -euo pipefail
sock=$1 queues=$2 smp=$3 script=$4 limit=${5:-300}
here=$(cd "$(dirname "$0")" && pwd)
cache=${VHOST_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vhost-appliance-e2e}
eval "$("$here/guest-image.sh" "$cache")"
run=$(mktemp -d)
trap 'rm -rf "$run"' EXIT
mkdir -p "$run/job/job"
cp "$script" "$run/job/job/run.sh"
(cd "$run/job" && find job | cpio -o -H newc --quiet) > "$run/job.cpio"
cat "$run/job.cpio" "$INITRD" > "$run/initrd" # uncompressed first: the kernel unpacks both
set +e
timeout -k 5 "$limit" "${QEMU:-qemu-system-x86_64}" -accel tcg -cpu max -machine q35,memory-backend=mem -m 512M \
  -object memory-backend-memfd,id=mem,size=512M,share=on -smp "$smp" -nodefaults -display none -no-reboot \
  -chardev socket,id=vblk0,path="$sock" -device vhost-user-blk-pci,chardev=vblk0,num-queues="$queues" \
  -serial file:"$run/console.log" -serial file:"$run/results.log" \
  -kernel "$KERNEL" -initrd "$run/initrd" -append "console=ttyS0 quiet panic=-1 rdinit=/init" >"$run/qemu.log" 2>&1
qrc=$?
set -e
if ! grep -q "===E2E-END" "$run/results.log" 2>/dev/null; then
  echo "run-guest: no result (qemu rc=$qrc)" >&2
  tail -n 20 "$run/qemu.log" "$run/console.log" >&2 2>/dev/null || true
  cat "$run/results.log" 2>/dev/null || true
  exit 3
fi
tr -d '\r' < "$run/results.log"

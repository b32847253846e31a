#!/bin/bash
# Boots the end-to-end guest in QEMU (always TCG: /dev/kvm may exist without working) with the given
# vhost-user devices, runs SCRIPT inside it and prints what the script printed.
#   run-guest.sh [--smp N] [--results FILE] [--qmp SOCKET] [--append KERNEL_ARGS] SCRIPT TIMEOUT_SECONDS -- QEMU_DEVICE_ARGS...
# --results: the guest's output goes to FILE while it runs (a test can watch for a line and act);
# --qmp: a QMP monitor socket (server) for the test. Memory is a shared memfd, as vhost-user needs.
# Exit status: 0 the guest script ran (its own rc is in the last line "===E2E-END rc=N==="); 3 no output.
set -euo pipefail
smp=1 results= qmp=() append=
while [ $# -gt 0 ]; do
  case $1 in
    --smp) smp=$2; shift 2 ;;
    --results) results=$2; shift 2 ;;
    --qmp) qmp=(-qmp "unix:$2,server=on,wait=off"); shift 2 ;;
    --append) append=" $2"; shift 2 ;;
    *) break ;;
  esac
done
script=$1 limit=$2
shift 2
[ "${1:-}" = "--" ] && shift
. "$(cd "$(dirname "$0")" && pwd)/guest-lib.sh"
guest_setup "$script"
trap 'rm -rf "$run"' EXIT
results=${results:-$run/results.log}
# QEMU 10.0 under TCG with several vCPUs has aborted a few times during guest boot, before the script
# started, on an assertion in msix_table_mmio_write (the guest programming MSI-X, no backend involved):
# such a boot is retried once, and said so on stderr.
for attempt in 1 2; do
  : > "$results"
  set +e
  timeout -k 5 "$limit" "${QEMU:-qemu-system-x86_64}" "${guest_machine[@]}" -smp "$smp" "$@" "${qmp[@]}" \
    -serial file:"$run/console.log" -serial file:"$results" \
    -kernel "$KERNEL" -initrd "$run/initrd" -append "console=ttyS0 quiet panic=-1 rdinit=/init$append" >"$run/qemu.log" 2>&1
  qrc=$?
  set -e
  if [ "$qrc" -eq 134 ] && [ "$attempt" -eq 1 ] && ! grep -q "===E2E-BEGIN" "$results" &&
     grep -q "msix_table_mmio_write: Assertion" "$run/qemu.log"; then
    echo "run-guest: QEMU aborted during boot ($(grep -o 'msix_table_mmio_write: Assertion.*' "$run/qemu.log")); retrying once" >&2
    continue
  fi
  break
done
if ! grep -q "===E2E-END" "$results" 2>/dev/null; then
  echo "run-guest: no result (qemu rc=$qrc)" >&2
  tail -n 80 "$run/qemu.log" "$run/console.log" >&2 2>/dev/null || true
  cat "$results" 2>/dev/null || true
  exit 3
fi
tr -d '\r' < "$results"

# Sourced by run-guest.sh and migrate-guest.sh: what every end-to-end guest has in common.

# guest_setup SCRIPT: sets KERNEL and run (a new temporary directory) and builds $run/initrd, the cached
# initramfs with SCRIPT as /job/run.sh (its own cpio archive, uncompressed, first: the kernel unpacks both).
guest_setup() {
  local here cache
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  cache=${VHOST_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vhost-appliance-e2e}
  eval "$("$here/guest-image.sh" "$cache")"
  run=$(mktemp -d)
  mkdir -p "$run/job/job"
  cp "$1" "$run/job/job/run.sh"
  (cd "$run/job" && find job | cpio -o -H newc --quiet) > "$run/job.cpio"
  cat "$run/job.cpio" "$INITRD" > "$run/initrd"
}

# The guest machine: always TCG (/dev/kvm may exist without working), q35 with 512 MiB of shared memfd
# memory (vhost-user backends map it), no default devices, no display.
guest_machine=(-accel tcg -cpu max -machine q35,memory-backend=mem -m 512M
  -object memory-backend-memfd,id=mem,size=512M,share=on -nodefaults -display none -no-reboot)

#!/bin/bash
# The end-to-end guest started by libvirt, its vhost-user gpu backend found through a VhostUserBackend
# descriptor and started by libvirt itself (--fd, and --virgl for <acceleration accel3d='yes'/>), as a libvirt
# user of ours has it. libvirt runs in session mode as an unprivileged user (nobody) with its descriptors,
# state and logs in a temporary directory: the host's own libvirt setup is neither needed nor touched.
#   libvirt-guest.sh DESCRIPTOR BINARY SCRIPT TIMEOUT_SECONDS SCREENSHOT
# DESCRIPTOR is installed as the user's (its "binary" replaced by BINARY). When the guest prints SHOT, the
# domain's screen is saved to SCREENSHOT (virsh screenshot: PNG from libvirt 11, PPM from older ones).
# Prints "BACKEND <args>", the gpu backend's command line as libvirt started it, then the guest's output.
# Exit 0 when the guest script ended, 3 otherwise.
set -euo pipefail
descriptor=$1 binary=$2 script=$3 limit=$4 shot=$5
. "$(cd "$(dirname "$0")" && pwd)/guest-lib.sh"
guest_setup "$script"
user=${LIBVIRT_TEST_USER:-nobody}
name=vhost-appliance-e2e-$$
runuser -u "$user" -- test -x "$binary" ||
  { echo "libvirt-guest: $user cannot run $binary (the checkout in a private directory?)" >&2; exit 3; }
lv=$(mktemp -d /tmp/vhost-libvirt.XXXXXX)
chmod 755 "$lv"
as_user() { # runs virsh (and so the session daemon it starts) as $user, with the session in $lv
  runuser -u "$user" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$lv/home" XDG_CONFIG_HOME="$lv/config" \
    XDG_CACHE_HOME="$lv/cache" XDG_RUNTIME_DIR="$lv/runtime" "$@"
}
cleanup() {
  as_user virsh -q -c qemu:///session destroy "$name" > /dev/null 2>&1 || true
  for pidfile in "$lv"/runtime/libvirt/*.pid; do [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null; done
  sleep 0.5
  rm -rf "$run" "$lv"
}
trap cleanup EXIT
install -m 644 "$KERNEL" "$lv/kernel"
install -m 644 "$run/initrd" "$lv/initrd"
mkdir -p "$lv/home" "$lv/config/qemu/vhost-user" "$lv/cache" "$lv/runtime" "$lv/out"
sed 's#"binary": *"[^"]*"#"binary": "'"$binary"'"#' "$descriptor" > "$lv/config/qemu/vhost-user/10-$(basename "$descriptor")"
chown -R "$user" "$lv/home" "$lv/config" "$lv/cache" "$lv/runtime" "$lv/out"
chmod 700 "$lv/runtime"
cat > "$lv/domain.xml" <<EOF
<domain type='qemu'>
  <name>$name</name>
  <memory unit='MiB'>512</memory>
  <vcpu>1</vcpu>
  <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>$lv/kernel</kernel>
    <initrd>$lv/initrd</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 rdinit=/init</cmdline>
  </os>
  <features><acpi/></features>
  <cpu mode='maximum'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>${QEMU:-/usr/bin/qemu-system-x86_64}</emulator>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
    <serial type='file'><source path='$lv/out/console.log'/><target port='0'/></serial>
    <serial type='file'><source path='$lv/out/results.log'/><target port='1'/></serial>
    <filesystem type='mount' accessmode='squash' multidevs='remap'>
      <source dir='/'/><target dir='host'/><readonly/>
    </filesystem>
    <video>
      <driver name='vhostuser'/>
      <model type='virtio' heads='1'><acceleration accel3d='yes'/></model>
    </video>
  </devices>
</domain>
EOF
logs() { # what libvirt, QEMU and the backend said
  tail -n 40 "$lv"/cache/libvirt/qemu/log/*.log "$lv/out/console.log" >&2 2>/dev/null || true
}
if ! as_user virsh -q -c qemu:///session create "$lv/domain.xml" >&2; then
  echo "libvirt-guest: libvirt did not start the domain" >&2; logs; exit 3
fi
backend=
deadline=$((SECONDS + limit))
until grep -q SHOT "$lv/out/results.log" 2>/dev/null; do
  if [ -z "$backend" ]; then
    for p in $(pgrep -u "$user" java || true); do
      args=$(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null || true)
      case $args in *vhost-user-gpu*) backend=$args ;; esac
    done
  fi
  if [ $SECONDS -ge $deadline ] || grep -q "===E2E-END" "$lv/out/results.log" 2>/dev/null; then
    echo "libvirt-guest: the guest never printed SHOT" >&2; logs; echo "BACKEND $backend"
    tr -d '\r' < "$lv/out/results.log"; exit 3
  fi
  sleep 0.2
done
as_user virsh -q -c qemu:///session screenshot "$name" "$lv/out/screen" --screen 0 > /dev/null
cp "$lv/out/screen" "$shot"
until grep -q "===E2E-END" "$lv/out/results.log" 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || { echo "libvirt-guest: no result" >&2; logs; echo "BACKEND $backend"; tr -d '\r' < "$lv/out/results.log"; exit 3; }
  sleep 0.5
done
echo "BACKEND $backend"
tr -d '\r' < "$lv/out/results.log"

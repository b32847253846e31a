#!/bin/bash
# Builds, once and cached, the guest used by the end-to-end tests: a Debian kernel (unpacked into the
# cache with apt-get download + dpkg-deb; the host is not modified), its uncompressed vmlinux for a faster
# PVH boot under TCG, and an initramfs with busybox, fio and util-linux's blkdiscard (each with its shared
# library closure), the guest tools built static from *.c here (gcc), plus the virtio modules (blk, input
# with evdev, gpu with DRM and its fbdev, 9p: the 3D test runs the host's Mesa from a read-only share). Prints KERNEL=... INITRD=... on stdout.
#   guest-image.sh CACHE_DIR
set -euo pipefail
cache=${1:?cache dir}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$cache"
log() { echo "[guest-image] $*" >&2; }
exec 9>"$cache/.lock"
flock 9

kpkg=${VHOST_E2E_KERNEL_PKG:-$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')}
[ -n "$kpkg" ] || { log "cannot resolve the linux-image-amd64 package (run apt-get update)"; exit 1; }
kver=${kpkg#linux-image-}
kdir=$cache/$kpkg
if [ ! -f "$kdir/.done" ]; then
  log "fetching $kpkg"
  rm -rf "$kdir"
  mkdir -p "$kdir/deb"
  (cd "$kdir/deb" && apt-get download "$kpkg" >&2)
  dpkg-deb -x "$kdir"/deb/*.deb "$kdir/root"
  rm -rf "$kdir/deb"
  depmod -b "$kdir/root" "$kver"
  touch "$kdir/.done"
fi
kroot=$kdir/root
kernel=$kroot/boot/vmlinuz-$kver
# The bzImage's payload is xz: unpacked once, the ELF boots through PVH without the in-guest decompressor.
vmlinux=$kdir/vmlinux
if [ ! -f "$vmlinux" ]; then
  off=$(grep -abo $'\xfd7zXZ\x00' "$kernel" | head -n 1 | cut -d: -f1 || true)
  if [ -n "$off" ] && tail -c +$((off + 1)) "$kernel" | xz -dc > "$vmlinux.tmp" 2>/dev/null ||
     [ "$(head -c 4 "$vmlinux.tmp" 2>/dev/null | od -An -c | tr -d ' ')" = "177ELF" ]; then
    mv "$vmlinux.tmp" "$vmlinux"
  else
    rm -f "$vmlinux.tmp"
  fi
fi
[ -f "$vmlinux" ] && kernel=$vmlinux

key=$({ echo "$kpkg"; dpkg-query -W -f='${Version}\n' busybox-static fio util-linux; sha256sum "$here/init.sh" "$0" "$here"/*.c | cut -d' ' -f1; } | sha256sum | cut -c1-16)
initrd=$cache/initramfs-$key.cpio.gz
if [ ! -f "$initrd" ]; then
  log "building $initrd"
  t=$(mktemp -d "$cache/root.XXXXXX")
  trap 'rm -rf "$t"' EXIT
  mkdir -p "$t"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,job,etc,lib/modules}
  cp /bin/busybox "$t/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$t/bin/$a"; done
  copy_with_libs() { # binary, destination inside the image
    cp "$1" "$t$2"
    ldd "$1" | awk '$3 ~ /^\// {print $3} $1 ~ /^\/lib64\// {print $1}' | sort -u | while read -r lib; do
      mkdir -p "$t$(dirname "$lib")"
      cp "$(readlink -f "$lib")" "$t$(dirname "$lib")/$(basename "$lib")"
    done
  }
  copy_with_libs "$(command -v fio)" /usr/bin/fio
  copy_with_libs /usr/sbin/blkdiscard /usr/sbin/blkdiscard.util-linux
  for c in "$here"/*.c; do
    gcc -static -O2 -Wall -o "$t/usr/bin/$(basename "$c" .c)" "$c" >&2
  done
  : > "$t/lib/modules/load-order"
  for m in virtio_pci virtio_blk virtio_input evdev virtio-gpu 9p 9pnet_virtio; do
    modprobe -d "$kroot" -S "$kver" --show-depends "$m" | awk '$1=="insmod"{print $2}'
  done | awk '!seen[$0]++' | while read -r ko; do
    b=$(basename "$ko")
    cp "$ko" "$t/lib/modules/$b"
    echo "$b" >> "$t/lib/modules/load-order"
  done
  cp "$here/init.sh" "$t/init"
  chmod +x "$t/init"
  echo 'root:x:0:0:root:/:/bin/sh' > "$t/etc/passwd"
  (cd "$t" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 > "$initrd.tmp"
  mv "$initrd.tmp" "$initrd"
  for old in "$cache"/initramfs-*.cpio.gz; do [ "$old" = "$initrd" ] || rm -f "$old"; done
  log "initramfs $(du -h "$initrd" | cut -f1)"
fi
echo "KERNEL=$kernel INITRD=$initrd"

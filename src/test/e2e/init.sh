#!/bin/sh
# /init of the end-to-end guest (busybox sh): loads the virtio modules, runs /job/run.sh (appended by the
# host as a second cpio archive) with its output on the second serial port, and powers off.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu/ceph
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
echo 1 > /proc/sys/kernel/sysrq # the host may ask for the blocked tasks (alt-sysrq-w) when a guest hangs
( sleep "${GUEST_TIMEOUT:-600}"; echo "===E2E-WATCHDOG===" > /dev/ttyS1; poweroff -f ) &
for m in $(cat /lib/modules/load-order); do insmod "/lib/modules/$m" 2>/dev/null; done
stty -F /dev/ttyS1 raw -echo 2>/dev/null
echo "===E2E-BEGIN===" > /dev/ttyS1
sh /job/run.sh > /dev/ttyS1 2>&1
echo "===E2E-END rc=$?===" > /dev/ttyS1
sync
poweroff -f

#!/bin/bash
# A single-node Ceph cluster for the RBD tests and benchmarks, without systemd: one ceph-mon on a free
# loopback port (msgr2, cephx) and one ceph-osd (bluestore on a sparse 4 GiB file in DIR, which must not be
# on tmpfs: data survives the OSD being killed; STORE=memstore keeps it in RAM instead, lost when the OSD
# stops), pool size 1, no mgr. Needs Debian's ceph-mon, ceph-osd and ceph-common (and uuidgen, python3).
#
#   ceph-cluster.sh up DIR [IMAGE SIZE]...   bring it up in DIR (made empty), pool "rbd", create images
#   ceph-cluster.sh down DIR                 stop the daemons (osd, then mon)
#   ceph-cluster.sh kill-osd DIR             SIGKILL the OSD (a crash: I/O stalls)
#   ceph-cluster.sh start-osd DIR            start it again (and wait until the monitor has it up)
#
# "up" prints nothing but errors; clients use DIR/ceph.conf (its keyring is DIR/ceph.client.admin.keyring).
set -euo pipefail

die() { echo "ceph-cluster.sh: $*" >&2; exit 1; }
[ $# -ge 2 ] || die "usage: ceph-cluster.sh up|down|kill-osd|start-osd DIR [IMAGE SIZE]..."
cmd=$1
dir=$2
shift 2

ceph_() { timeout 30 ceph -c "$dir/ceph.conf" "$@"; }

start_osd() {
  ceph-osd -c "$dir/ceph.conf" -i 0 -f > "$dir/log/osd.out" 2>&1 &
  echo $! > "$dir/run/osd.0.pid"
}

stop_daemon() { # name: SIGTERM, wait up to 10 s, then SIGKILL
  local pidfile="$dir/run/$1.pid" pid i
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

wait_for() { # seconds, command...: retries the command until it succeeds
  local until=$((SECONDS + $1))
  shift
  until "$@" > /dev/null 2>&1; do
    [ $SECONDS -lt $until ] || return 1
    sleep 0.2
  done
}

case "$cmd" in
up)
  for p in ceph-mon ceph-osd ceph rbd ceph-authtool monmaptool uuidgen python3; do
    command -v $p > /dev/null || die "$p is missing (apt-get install ceph-mon ceph-osd ceph-common uuid-runtime python3)"
  done
  rm -rf "$dir"
  mkdir -p "$dir"/{mon,osd,run,log}
  dir=$(cd "$dir" && pwd)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  fsid=$(uuidgen)
  store=${STORE:-bluestore}
  cat > "$dir/ceph.conf" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$port
mon initial members = a
public network = 127.0.0.0/8
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $dir/ceph.client.admin.keyring
run dir = $dir/run
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
log to stderr = false
err to stderr = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
[mon]
mon data = $dir/mon
keyring = $dir/mon/keyring
[osd]
osd data = $dir/osd
keyring = $dir/osd/keyring
osd objectstore = $store
memstore device bytes = 4294967296
bluestore block path = $dir/osd/block.file
bluestore block size = 4294967296
bluestore block create = true
osd memory target = 939524096
CONF
  ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. --cap mon 'allow *' > /dev/null
  ceph-authtool --create-keyring "$dir/ceph.client.admin.keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' > /dev/null
  ceph-authtool "$dir/mon.keyring" --import-keyring "$dir/ceph.client.admin.keyring" > /dev/null
  monmaptool --create --add a "v2:127.0.0.1:$port" --fsid "$fsid" "$dir/monmap" > /dev/null
  ceph-mon -c "$dir/ceph.conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/mon.keyring" > "$dir/log/mkfs.out" 2>&1 \
    || die "ceph-mon --mkfs failed: $(tail -n 1 "$dir/log/mkfs.out")"
  ceph-mon -c "$dir/ceph.conf" -i a -f > "$dir/log/mon.out" 2>&1 &
  echo $! > "$dir/run/mon.a.pid"
  wait_for 20 ceph_ mon stat || die "ceph-mon did not answer in 20 s (see $dir/log)"
  osd_uuid=$(uuidgen)
  id=$(ceph_ osd new "$osd_uuid")
  [ "$id" = 0 ] || die "unexpected osd id $id"
  ceph-osd -c "$dir/ceph.conf" -i 0 --mkfs --mkkey --no-mon-config --osd-uuid "$osd_uuid" > "$dir/log/osd-mkfs.out" 2>&1 \
    || die "ceph-osd --mkfs failed: $(tail -n 1 "$dir/log/osd-mkfs.out")"
  ceph_ auth add osd.0 osd 'allow *' mon 'allow profile osd' -i "$dir/osd/keyring" > /dev/null 2>&1
  start_osd
  wait_for 30 sh -c "ceph -c '$dir/ceph.conf' osd stat | grep -q '1 up'" || die "ceph-osd did not come up in 30 s (see $dir/log)"
  ceph_ osd pool create rbd 8 > /dev/null 2>&1
  timeout 30 rbd -c "$dir/ceph.conf" pool init rbd || die "rbd pool init failed"
  while [ $# -ge 2 ]; do
    timeout 30 rbd -c "$dir/ceph.conf" create "rbd/$1" --size "$2" || die "rbd create $1 failed"
    shift 2
  done
  ;;
down)
  [ -d "$dir" ] || exit 0
  stop_daemon osd.0
  stop_daemon mon.a
  ;;
kill-osd)
  if [ -f "$dir/run/osd.0.pid" ]; then
    kill -KILL "$(cat "$dir/run/osd.0.pid")" 2>/dev/null || true
    rm -f "$dir/run/osd.0.pid"
  fi
  ;;
start-osd)
  start_osd
  wait_for 30 sh -c "ceph -c '$dir/ceph.conf' osd stat | grep -q '1 up'" || die "ceph-osd did not come back in 30 s"
  ;;
*)
  die "unknown command $cmd"
  ;;
esac

#!/usr/bin/env python3
"""A/B benchmark of the appliance's NBD export against qemu-storage-daemon's, measured by fio's nbd engine.

Both backends get the same qemu-storage-daemon command line (--blockdev, --nbd-server on a Unix socket,
--export type=nbd), are started one after the other for every cell (who goes first alternates), and fio's
nbd engine (libnbd; Debian's fio has it) drives the export. Ratios are measured in the same run: these
2-core machines are noisy.

  bench/nbd_bench.py [--fio fio] [--seconds 5] [--targets tmpfs,disk] [--workloads all] [--out FILE.md]

Not a test: nothing here asserts. Writes a Markdown table (stdout and --out).
"""
import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

from fio_bench import IMAGE_BYTES, ROOT, blockdev, compare, cpu_seconds, fio_run, image, log, rss_mb, start, stop, summary

WORKLOADS = {
    "4k randread QD32": ["--rw=randread", "--bs=4k", "--iodepth=32"],
    "4k randwrite QD32": ["--rw=randwrite", "--bs=4k", "--iodepth=32"],
    "128k read QD8": ["--rw=read", "--bs=128k", "--iodepth=8"],
    "4k randread QD1": ["--rw=randread", "--bs=4k", "--iodepth=1"],
}


def backend_run(cmd, sock, fio, job, seconds):
    p = start(cmd, sock)
    try:
        extra = ["--ioengine=nbd", f"--uri=nbd+unix:///disk?socket={sock}", f"--size={IMAGE_BYTES}"]
        c0 = cpu_seconds(p.pid)
        t0 = time.time()
        r = fio_run(fio, job, seconds, extra)
        r["cpu"] = 100 * (cpu_seconds(p.pid) - c0) / (time.time() - t0)
        r["rss"] = rss_mb(p.pid)
        return r
    finally:
        stop(p)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fio", default=shutil.which("fio"), help="a fio with the nbd engine (Debian's)")
    ap.add_argument("--appliance", default=os.path.join(ROOT, "app/target/app-image/bin/vhost-appliance"))
    ap.add_argument("--qsd", default=shutil.which("qemu-storage-daemon"))
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--targets", default="tmpfs,disk")
    ap.add_argument("--workloads", default="all")
    ap.add_argument("--aio", default="io_uring")
    ap.add_argument("--disk-dir", default="/var/tmp/vhost-appliance-bench")
    ap.add_argument("--tmpfs-dir", default="/dev/shm")
    ap.add_argument("--out")
    a = ap.parse_args()
    engines = subprocess.run([a.fio, "--enghelp"], capture_output=True, text=True).stdout if a.fio else ""
    if "nbd" not in engines.split():
        sys.exit(f"nbd_bench: {a.fio} has no nbd engine")
    if not a.qsd or not os.access(a.appliance, os.X_OK):
        sys.exit("nbd_bench: needs qemu-storage-daemon and the app-image (./mvnw package -DskipTests)")
    workloads = list(WORKLOADS) if a.workloads == "all" else [w.strip() for w in a.workloads.split(";")]
    targets = a.targets.split(",")
    os.makedirs(a.disk_dir, exist_ok=True)
    imgs = {"disk": os.path.join(a.disk_dir, "disk.img"), "tmpfs": os.path.join(a.tmpfs_dir, "vhost-appliance-bench.img")}
    for t in targets:
        image(imgs[t], True)
    sockdir = tempfile.mkdtemp(prefix="nbd-bench-")
    qsd_version = subprocess.run([a.qsd, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    rev = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
    fio_version = subprocess.run([a.fio, "--version"], capture_output=True, text=True).stdout.strip()
    lines = [f"# nbd_bench.py — {datetime.date.today()}, {os.cpu_count()} CPUs, {platform.release()}",
             "",
             f"Reference: {qsd_version}. Appliance: git {rev}. Client: {fio_version}, nbd engine (libnbd) over a "
             f"Unix socket, {a.seconds} s per cell after 1 s ramp, one connection. Both backends: `aio={a.aio}`, "
             "the disk target with `cache.direct=on`.",
             "",
             "| target | workload | qsd | appliance | appliance / qsd | qsd p50 / p99 µs | appliance p50 / p99 µs "
             "| qsd / appliance CPU % | qsd / appliance RSS MB |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    print("\n".join(lines), flush=True)
    ratios = []
    for target in targets:
        for w in workloads:
            sock = os.path.join(sockdir, "nbd.sock")
            line = ["--blockdev", blockdev(target, imgs[target], a.aio),
                    "--nbd-server", f"addr.type=unix,addr.path={sock}",
                    "--export", "type=nbd,id=exp,node-name=disk,name=disk,writable=on"]
            res = {}
            order = [("qsd", a.qsd), ("appliance", a.appliance)]
            if len(ratios) % 2 == 1:
                order.reverse()
            for name, prog in order:
                log(f"{target} {w}: {name}")
                try:
                    res[name] = backend_run([prog] + line, sock, a.fio, WORKLOADS[w], a.seconds)
                except Exception as e:  # a failed cell is reported, the run goes on
                    log(f"  failed: {e}")
                    res[name] = None
            ratio, cells = compare(res.get("qsd"), res.get("appliance"), w)
            ratios.append(ratio)
            row = f"| {target} | {w} | {cells} |"
            print(row, flush=True)
            lines.append(row)
    if any(r > 0 for r in ratios):
        lines += ["", summary(ratios)]
        print(lines[-1])
    if a.out:
        with open(a.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

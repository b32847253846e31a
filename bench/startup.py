#!/usr/bin/env python3
"""Start-up time and memory of every device and launcher, next to qemu-storage-daemon and QEMU's own
vhost-user-gpu, in one run.

  bench/startup.py [-n RUNS] [--fio PATH] [--idle SECONDS] [--rows all|LABEL,...] [--out FILE.md]

Each run of a row: fork+exec, poll /proc/net/unix every 0.5 ms until its socket listens (exec -> listening), then after
--idle seconds read /proc/PID/status VmRSS and /proc/PID/smaps_rollup (Private = Private_Clean +
Private_Dirty: no guest memory is mapped while idle; file pages that other processes share, such as a
second device's libjvm.so, are not counted), then SIGTERM. Rows alternate run by run (these 2-core machines
are noisy). With --fio (fio built with its libblkio engine) each block row also serves the benchmark's
heaviest row (null-co, 4k randread QD32, 2 queues, 5 s) once and its memory is read after it; guest memory
(fio's shared memfd) is mapped then, so for that column Private is the figure that excludes it.

Not a test: nothing here asserts. The footprint test is app/src/test/**/FootprintIT.java.
"""
import argparse
import datetime
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from procmem import memory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = "{IMG}"
QSD_ARGS = ["--blockdev", "driver=null-co,node-name=d,size=1073741824",
            "--export", "type=vhost-user-blk,id=e,node-name=d,addr.type=unix,addr.path={SOCK},writable=on,num-queues=2"]


def rows(app_image):
    root = os.path.join(ROOT, "vhost-appliance")
    bin_ = lambda name: os.path.join(app_image, "bin", name)
    blk = ["--socket-path={SOCK}", "--blk-file={IMG}", "--num-queues=2"]
    inp = ["--socket-path={SOCK}", "--event-socket={EV}", "--preset=keyboard"]
    gpu = ["--socket-path={SOCK}"]
    r = [("qemu-storage-daemon (null-co export)", "block", [shutil.which("qemu-storage-daemon") or "qemu-storage-daemon"] + QSD_ARGS),
         ("app-image bin/vhost-appliance (qsd options, null-co)", "block", [bin_("vhost-appliance")] + QSD_ARGS),
         ("./vhost-appliance (qsd options, null-co)", "block", [root] + QSD_ARGS),
         ("app-image bin/vhost-user-blk", "block", [bin_("vhost-user-blk")] + blk),
         ("./vhost-appliance block", "block", [root, "block"] + blk),
         ("app-image bin/vhost-user-input", "input", [bin_("vhost-user-input")] + inp),
         ("./vhost-appliance input", "input", [root, "input"] + inp),
         ("QEMU's vhost-user-gpu (C)", "gpu", ["/usr/lib/qemu/vhost-user-gpu"] + gpu),
         ("app-image bin/vhost-user-gpu", "gpu", [bin_("vhost-user-gpu")] + gpu),
         ("./vhost-appliance gpu", "gpu", [root, "gpu"] + gpu)]
    return [x for x in r if os.access(x[2][0], os.X_OK)]


def listening(path):
    """Whether a socket listens at path (/proc/net/unix: flag __SO_ACCEPTCON). Not by connecting: QEMU's
    vhost-user-gpu serves one connection and exits when it closes."""
    if not os.path.exists(path):
        return False
    # The appliance binds a temporary name, listens, then renames it to path: the kernel keeps the first name.
    binding = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".binding-")
    with open("/proc/net/unix") as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 8 and fields[3] == "00010000" and (fields[7] == path or fields[7].startswith(binding)):
                return True
    return False


def fio_load(fio, sock):
    cmd = [fio, "--name=load", "--ioengine=libblkio", "--libblkio_driver=virtio-blk-vhost-user",
           f"--libblkio_path={sock}", "--rw=randread", "--bs=4k", "--iodepth=32", "--direct=1", "--time_based",
           "--runtime=5", "--thread", "--numjobs=2", "--group_reporting", "--output-format=terse"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError("fio failed: " + out.stderr.strip()[-300:])
    return float(out.stdout.split(";")[7])  # terse v3: read IOPS


def once(cmd, tmp, idle, fio=None):
    sock = os.path.join(tmp, "s.sock")
    for f in (sock, os.path.join(tmp, "ev.sock")):
        if os.path.exists(f):
            os.unlink(f)
    args = [a.replace("{SOCK}", sock).replace("{IMG}", os.path.join(tmp, "img")).replace("{EV}", os.path.join(tmp, "ev.sock"))
            for a in cmd]
    t0 = time.perf_counter()
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while not listening(sock):
            if p.poll() is not None:
                raise SystemExit("backend exited early: %s: %s" % (" ".join(args), p.stderr.read().decode()[-300:]))
            time.sleep(0.0005)
        dt = (time.perf_counter() - t0) * 1000
        time.sleep(idle)
        mem = memory(p.pid)
        loaded = None
        if fio:
            iops = fio_load(fio, sock)
            loaded = memory(p.pid) + (iops,)
        return dt, mem, loaded
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=5, help="runs per row")
    ap.add_argument("--idle", type=float, default=3.0, help="seconds after listening before memory is read")
    ap.add_argument("--fio", help="fio with its libblkio engine: block rows also serve one benchmark row")
    ap.add_argument("--app-image", default=os.path.join(ROOT, "app/target/app-image"))
    ap.add_argument("--rows", default="all", help="comma-separated label prefixes")
    ap.add_argument("--out")
    a = ap.parse_args()
    table = rows(a.app_image)
    if a.rows != "all":
        table = [r for r in table if any(r[0].startswith(p) for p in a.rows.split(","))]
    tmp = tempfile.mkdtemp()
    with open(os.path.join(tmp, "img"), "wb") as f:
        f.truncate(64 << 20)
    res = {label: [] for label, _, _ in table}
    loaded = {}
    for i in range(a.n):
        for label, kind, cmd in table:
            use_fio = a.fio if (kind == "block" and i == 0) else None
            dt, mem, load = once(cmd, tmp, a.idle, use_fio)
            res[label].append((dt, mem))
            if load:
                loaded[label] = load
            print(f"run {i + 1}: {label}: {dt:.0f} ms, VmRSS {mem[0]:.1f} MiB, Private {mem[1]:.1f} MiB", file=sys.stderr)
    lines = [f"Measured {datetime.date.today()} on {platform.node()} ({os.cpu_count()} CPUs, kernel {platform.release()}), "
             f"{a.n} runs per row, memory {a.idle:.0f} s after listening"
             + (", then after fio's 4k randread QD32 x 2 queues on null-co (5 s)" if a.fio else "") + ".", "",
             "| device / launcher | exec -> listening, median (min-max) ms | idle VmRSS MiB | idle Private MiB |"
             + (" under load: VmRSS / Private MiB (IOPS) |" if a.fio else ""),
             "|---|---:|---:|---:|" + ("---:|" if a.fio else "")]
    for label, kind, _ in table:
        v = res[label]
        t = [x[0] for x in v]
        rss = statistics.median(x[1][0] for x in v)
        priv = statistics.median(x[1][1] for x in v)
        row = f"| {label} | {statistics.median(t):.0f} ({min(t):.0f}-{max(t):.0f}) | {rss:.1f} | {priv:.1f} |"
        if a.fio:
            l = loaded.get(label)
            row += f" {l[0]:.1f} / {l[1]:.1f} ({l[2]:,.0f}) |" if l else " |"
        lines.append(row)
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


main()

#!/usr/bin/env python3
"""A/B benchmark of the appliance against qemu-storage-daemon, measured by fio's libblkio engine.

Both backends get the same qemu-storage-daemon command line (--blockdev/--object iothread/--export), are
started one after the other for every cell, and fio (built with its libblkio engine; pass its path) drives
the vhost-user-blk socket of each. Results are ratios measured in the same run: these 2-core machines are
noisy. Every cell runs --rounds times (3 by default), the two backends alternating which goes first, and
compares the median run of each: the storage under a virtual machine changes speed from minute to minute
(fio alone on the disk image: 64k to 98k IOPS for the same 16k randrw job within an hour), so one run of each
can put a cell near parity on either side of 1.0. The per-round ratios are shown beside the median's. For the
disk rows fio's own io_uring engine on the image file gives the physical limit; for the rbd
rows (an image in a single-node Ceph cluster, src/test/ceph/ceph-cluster.sh, brought up in --ceph-dir unless
it runs there) fio's rbd engine (Debian's fio has it) is the client-side limit.

  bench/fio_bench.py --fio PATH [--seconds 5] [--rounds 3] [--queues 1,2] [--targets null-co,tmpfs,disk,qcow2-prealloc,qcow2-thin,rbd]
                     [--workloads 'all' or 'NAME;NAME...'] [--out bench/results/FILE.md] [--aio io_uring] [--ceph-dir DIR]

Not a test: nothing here asserts. Writes a Markdown table (stdout and --out).
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE_BYTES = 1 << 30

# name -> fio job options (bs, rw, iodepth, extra)
WORKLOADS = {
    "4k randread QD1": ["--rw=randread", "--bs=4k", "--iodepth=1"],
    "4k randread QD32": ["--rw=randread", "--bs=4k", "--iodepth=32"],
    "4k randwrite QD32": ["--rw=randwrite", "--bs=4k", "--iodepth=32"],
    "16k randrw 70/30 QD16": ["--rw=randrw", "--rwmixread=70", "--bs=16k", "--iodepth=16"],
    "128k seqread QD8": ["--rw=read", "--bs=128k", "--iodepth=8"],
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def image(path, fill):
    """A 1 GiB image, filled with data (holes are answered without I/O), made once and kept."""
    if os.path.exists(path) and os.path.getsize(path) == IMAGE_BYTES:
        return path
    log(f"making {path}")
    with open(path, "wb") as f:
        chunk = os.urandom(1 << 20) if fill else bytes(1 << 20)
        for _ in range(IMAGE_BYTES >> 20):
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    return path


def qcow2_image(path, raw, thin):
    """qcow2 on the disk: thin (empty, made anew for every backend run) or the raw image converted with
    preallocated metadata (every cluster allocated, in order; made once and kept)."""
    if thin:
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path, str(IMAGE_BYTES)], check=True)
    elif not os.path.exists(path):
        log(f"making {path}")
        subprocess.run(["qemu-img", "convert", "-O", "qcow2", "-o", "preallocation=metadata", raw, path], check=True)
    return path


def ceph_cluster(ceph_dir):
    """The cluster in ceph_dir (brought up there if it is not running) with image rbd/bench, 1 GiB, written
    through once (unwritten objects are answered without reading anything); returns (conf, key)."""
    conf = os.path.join(ceph_dir, "ceph.conf")
    script = os.path.join(ROOT, "src/test/ceph/ceph-cluster.sh")
    up = os.path.exists(conf) and subprocess.run(["timeout", "10", "ceph", "-c", conf, "mon", "stat"],
                                                 capture_output=True).returncode == 0
    if not up:
        log(f"bringing a Ceph cluster up in {ceph_dir}")
        subprocess.run(["bash", script, "up", ceph_dir], check=True)
    if subprocess.run(["rbd", "-c", conf, "info", "rbd/bench"], capture_output=True).returncode != 0:
        log("filling rbd/bench (1 GiB)")
        subprocess.run(["rbd", "-c", conf, "create", "rbd/bench", "--size", "1G"], check=True)
        subprocess.run(["rbd", "-c", conf, "bench", "--io-type", "write", "--io-size", "4M", "--io-threads", "4",
                        "--io-total", "1G", "--io-pattern", "seq", "rbd/bench"], check=True, capture_output=True)
    key = subprocess.run(["ceph-authtool", "-p", "-n", "client.admin", os.path.join(ceph_dir, "ceph.client.admin.keyring")],
                         check=True, capture_output=True, text=True).stdout.strip()
    return conf, key


def blockdev(target, img, aio, ceph=None):
    if target == "rbd":
        return f"driver=rbd,node-name=disk,pool=rbd,image=bench,conf={ceph[0]},user=admin,key-secret=key0"
    if target == "null-co":
        return f"driver=null-co,node-name=disk,size={IMAGE_BYTES}"
    if target.startswith("qcow2"):
        return f"driver=qcow2,node-name=disk,file.driver=file,file.filename={img},file.cache.direct=on,file.aio={aio}"
    direct = ",cache.direct=on" if target == "disk" else ""
    return f"driver=file,node-name=disk,filename={img}{direct},aio={aio}"


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def start(cmd, sock, env=None):
    if os.path.exists(sock):
        os.unlink(sock)
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 20
    while not os.path.exists(sock):
        if p.poll() is not None or time.time() > deadline:
            err = p.stderr.read().decode(errors="replace") if p.poll() is not None else "timeout"
            p.kill()
            raise RuntimeError(f"{cmd[0]} did not start: {err.strip()}")
        time.sleep(0.02)
    return p


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def fio_run(fio, job, seconds, extra, env=None):
    cmd = [fio, "--name=bench", "--output-format=json", "--time_based", f"--runtime={seconds}",
           "--ramp_time=1", "--direct=1", "--randrepeat=0", "--norandommap"] + job + extra
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 4 + 60, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"fio failed: {out.stderr.strip()[-400:]}")
    text = out.stdout[out.stdout.index("{"):]
    jobs = json.loads(text)["jobs"]
    iops = 0.0
    bw = 0.0
    p50 = p99 = 0.0
    for j in jobs:
        for d in ("read", "write"):
            s = j[d]
            if s["io_bytes"] == 0:
                continue
            iops += s["iops"]
            bw += s["bw_bytes"]
            pct = s["clat_ns"].get("percentile", {})
            p50 = max(p50, pct.get("50.000000", 0) / 1000)
            p99 = max(p99, pct.get("99.000000", 0) / 1000)
    return {"iops": iops, "mbs": bw / 1e6, "p50": p50, "p99": p99}


def unit_of(workload):
    """128k workloads compare MB/s, the others IOPS."""
    return "mbs" if "128k" in workload else "iops"


def median_run(runs, workload):
    """The run with the median result (of an even number, the lower middle one: always a run that happened,
    so its latencies, CPU and RSS belong to it); None if no run succeeded."""
    ok = [r for r in runs if r]
    if not ok:
        return None
    unit = unit_of(workload)
    return sorted(ok, key=lambda r: r[unit])[(len(ok) - 1) // 2]


def round_ratios(qs_runs, ap_runs, workload):
    """appliance / qsd of each round in which both ran: their spread shows how noisy the cell was."""
    unit = unit_of(workload)
    return [a[unit] / q[unit] for q, a in zip(qs_runs, ap_runs) if q and a and q[unit]]


def compare(qs, ap_, workload, rounds=()):
    """The ratio (0 if a side failed) and the middle cells of a table row: both results, the ratio (with the
    per-round ratios' range), latencies, CPU and RSS of both."""
    unit = unit_of(workload)
    fmt = (lambda r: f"{r['mbs']:.0f} MB/s") if unit == "mbs" else (lambda r: f"{r['iops']:.0f} IOPS")
    if not (qs and ap_):
        return 0, f"{fmt(qs) if qs else 'failed'} | {fmt(ap_) if ap_ else 'failed'} | | | | | |"
    ratio = ap_[unit] / qs[unit] if qs[unit] else 0
    spread = f"{min(rounds):.2f}–{max(rounds):.2f}" if len(rounds) > 1 else ""
    return ratio, (f"{fmt(qs)} | {fmt(ap_)} | {ratio:.2f} | {spread} | {qs['p50']:.1f} / {qs['p99']:.1f} "
                   f"| {ap_['p50']:.1f} / {ap_['p99']:.1f} | {qs['cpu']:.0f} / {ap_['cpu']:.0f} "
                   f"| {qs['rss']:.0f} / {ap_['rss']:.0f}")


def summary(ratios):
    """One line over all cells: min, geometric mean and max of appliance / qsd, and how many are below 1."""
    import math
    ok = [r for r in ratios if r > 0]
    return (f"Cells: {len(ratios)}; appliance / qsd: min {min(ok):.2f}, "
            f"geometric mean {math.exp(sum(math.log(r) for r in ok) / len(ok)):.2f}, "
            f"max {max(ok):.2f}; cells below 1.0: {sum(1 for r in ok if r < 1.0)}")


def backend_run(name, cmd, sock, fio, job, seconds, queues):
    p = start(cmd, sock)
    try:
        extra = ["--ioengine=libblkio", "--libblkio_driver=virtio-blk-vhost-user", f"--libblkio_path={sock}"]
        if queues > 1:
            extra += ["--thread", f"--numjobs={queues}", "--group_reporting"]
        c0 = cpu_seconds(p.pid)
        t0 = time.time()
        r = fio_run(fio, job, seconds, extra)
        r["cpu"] = 100 * (cpu_seconds(p.pid) - c0) / (time.time() - t0)
        r["rss"] = rss_mb(p.pid)
        return r
    finally:
        stop(p)


def direct_limit(a, target, imgs, ceph, job, q):
    """The limit without a vhost-user backend, one run: fio's io_uring engine on the disk image, fio's rbd
    engine on the rbd image; None for other targets or if fio failed."""
    many = ["--thread", f"--numjobs={q}", "--group_reporting"] if q > 1 else []
    try:
        if target == "disk":
            return fio_run(a.fio, job, a.seconds, ["--ioengine=io_uring", f"--filename={imgs['disk']}",
                                                   f"--size={IMAGE_BYTES}"] + many)
        if target == "rbd":
            return fio_run(a.rbd_fio, job, a.seconds, ["--ioengine=rbd", "--clientname=admin", "--pool=rbd",
                                                       "--rbdname=bench", f"--size={IMAGE_BYTES}"] + many,
                           env=dict(os.environ, CEPH_CONF=ceph[0]))
    except Exception as e:
        log(f"  fio alone failed: {e}")
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fio", default=os.environ.get("FIO"), help="fio built with the libblkio engine")
    ap.add_argument("--appliance", default=os.path.join(ROOT, "app/target/app-image/bin/vhost-appliance"))
    ap.add_argument("--qsd", default=shutil.which("qemu-storage-daemon"))
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3, help="runs of each backend per cell; the median run is compared")
    ap.add_argument("--queues", default="1,2")
    ap.add_argument("--targets", default="null-co,tmpfs,disk")
    ap.add_argument("--workloads", default="all", help="all, or names separated by ';'")
    ap.add_argument("--aio", default="io_uring", help="aio= of the file nodes, both backends")
    ap.add_argument("--poll-max-ns", type=int, default=32768, help="the iothread's poll-max-ns, both backends")
    ap.add_argument("--disk-dir", default="/var/tmp/vhost-appliance-bench", help="a directory on the machine's disk")
    ap.add_argument("--tmpfs-dir", default="/dev/shm")
    ap.add_argument("--ceph-dir", default="/var/tmp/vhost-appliance-bench/ceph", help="the rbd rows' cluster (not on tmpfs)")
    ap.add_argument("--rbd-fio", default="/usr/bin/fio", help="a fio with the rbd engine (the rbd rows' client-side limit)")
    ap.add_argument("--out")
    a = ap.parse_args()
    # the arguments first, before any tool is looked at
    if a.rounds < 1:
        sys.exit("fio_bench: --rounds must be at least 1")
    workloads = list(WORKLOADS) if a.workloads == "all" else [w.strip() for w in a.workloads.split(";")]
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown:
        sys.exit(f"fio_bench: unknown workload {unknown[0]!r} (known: {'; '.join(WORKLOADS)})")
    if not a.fio or not os.access(a.fio, os.X_OK):
        sys.exit("fio_bench: give --fio PATH (a fio built with its libblkio engine)")
    if not a.qsd:
        sys.exit("fio_bench: needs qemu-storage-daemon (Debian package qemu-system-common)")
    if not os.access(a.appliance, os.X_OK):
        sys.exit(f"fio_bench: no appliance at {a.appliance} (./mvnw package -DskipTests)")
    engines = subprocess.run([a.fio, "--enghelp"], capture_output=True, text=True).stdout
    if "libblkio" not in engines:
        sys.exit(f"fio_bench: {a.fio} has no libblkio engine")
    queues = [int(q) for q in a.queues.split(",")]
    targets = a.targets.split(",")
    os.makedirs(a.disk_dir, exist_ok=True)
    imgs = {}
    if "disk" in targets:
        imgs["disk"] = image(os.path.join(a.disk_dir, "disk.img"), True)
        # One O_DIRECT pass over the image first: on a virtual machine the storage under it is slow until
        # touched once (a cold run measured 2,904 IOPS at QD1 where the warm one has 11,795), and whichever
        # backend ran first would pay for it.
        log("reading the disk image once (O_DIRECT)")
        subprocess.run(["dd", f"if={imgs['disk']}", "of=/dev/null", "bs=1M", "iflag=direct", "status=none"], check=True)
    if "tmpfs" in targets:
        imgs["tmpfs"] = image(os.path.join(a.tmpfs_dir, "vhost-appliance-bench.img"), True)
    if "qcow2-prealloc" in targets:
        raw = image(os.path.join(a.disk_dir, "disk.img"), True)
        imgs["qcow2-prealloc"] = qcow2_image(os.path.join(a.disk_dir, "prealloc.qcow2"), raw, False)
    if "qcow2-thin" in targets:
        imgs["qcow2-thin"] = os.path.join(a.disk_dir, "thin.qcow2")
    ceph = ceph_cluster(a.ceph_dir) if "rbd" in targets else None
    sockdir = tempfile.mkdtemp(prefix="fio-bench-")
    qsd_version = subprocess.run([a.qsd, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    rev = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
    fio_version = subprocess.run([a.fio, "--version"], capture_output=True, text=True).stdout.strip()
    lines = [f"# fio_bench.py — {datetime.date.today()}, {os.cpu_count()} CPUs, {platform.release()}",
             "",
             f"Reference: {qsd_version}. Appliance: git {rev}. Client: {fio_version}, libblkio engine "
             f"(virtio-blk-vhost-user), {a.seconds} s per run after 1 s ramp, {a.rounds} round(s) per cell, the two "
             f"backends alternating which goes first; each side's median run is compared (per-round ratios: their "
             f"range). Both backends: "
             f"`--object iothread,id=io0,poll-max-ns={a.poll_max_ns}`, `aio={a.aio}`, the export on io0.",
             "CPU: the backend's CPU time over the run (100 = one core). RSS after the run.",
             "",
             "| target | queues | workload | qsd | appliance | appliance / qsd | per-round ratios | qsd p50 / p99 µs "
             "| appliance p50 / p99 µs | qsd / appliance CPU % | qsd / appliance RSS MB "
             "| fio io_uring on the file / fio rbd on the image |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    print("\n".join(lines), flush=True)
    ratios = []
    for target in targets:
        for q in queues:
            for w in workloads:
                job = WORKLOADS[w]
                sock = os.path.join(sockdir, "vhost.sock")
                secret = ["--object", f"secret,id=key0,data={ceph[1]},format=base64"] if target == "rbd" else []
                line = secret + ["--blockdev", blockdev(target, imgs.get(target), a.aio, ceph),
                        "--object", f"iothread,id=io0,poll-max-ns={a.poll_max_ns}",
                        "--export", f"type=vhost-user-blk,id=exp,node-name=disk,addr.type=unix,addr.path={sock},"
                                    f"writable=on,num-queues={q},iothread=io0"]
                runs = {"qsd": [], "appliance": []}
                directs = []
                for rnd in range(a.rounds):
                    order = [("qsd", a.qsd), ("appliance", a.appliance)]
                    if (len(ratios) + rnd) % 2 == 1:
                        order.reverse()  # alternate who goes first, so drift does not favour one side
                    for name, prog in order:
                        log(f"{target} q{q} {w} round {rnd + 1}/{a.rounds}: {name}")
                        if target == "qcow2-thin":
                            qcow2_image(imgs[target], None, True)  # both start from an empty image
                        try:
                            runs[name].append(backend_run(name, [prog] + line, sock, a.fio, job, a.seconds, q))
                        except Exception as e:  # a failed run is reported, the run goes on
                            log(f"  failed: {e}")
                            runs[name].append(None)
                    directs.append(direct_limit(a, target, imgs, ceph, job, q))
                direct = ""
                if target in ("disk", "rbd"):
                    d = median_run(directs, w)
                    suffix = " (fio rbd)" if target == "rbd" else ""
                    direct = (f"{d['iops']:.0f} IOPS" if "128k" not in w else f"{d['mbs']:.0f} MB/s") + suffix if d else "failed"
                ratio, cells = compare(median_run(runs["qsd"], w), median_run(runs["appliance"], w), w,
                                       round_ratios(runs["qsd"], runs["appliance"], w))
                ratios.append(ratio)
                row = f"| {target} | {q} | {w} | {cells} | {direct} |"
                print(row, flush=True)
                lines.append(row)
    if any(r > 0 for r in ratios):
        lines += ["", summary(ratios)]
        print(lines[-1])
    shutil.rmtree(sockdir, ignore_errors=True)
    if a.out:
        with open(a.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

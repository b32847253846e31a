#!/usr/bin/env python3
"""What each further device costs in one process: `vhost-appliance run --config` with 1, 3 and 10 devices
of each type, idle.

  bench/run_footprint.py [--launcher app/target/app-image/bin/vhost-appliance] [--out FILE.md]

For each configuration: start, wait until every device's socket exists, then sample VmRSS and Private
(Private_Clean + Private_Dirty of /proc/PID/smaps_rollup) every 250 ms from 4 to 12 s and keep the smallest
(the JIT's start-up scratch memory goes back to the system every 2 s). The cost of a further device is the
difference to the one-device row divided by the number of devices added. Not a test: nothing here asserts.
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

from procmem import memory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def config(tmp, n, kinds):
    lines = ["appliance:", "  devices:"]
    socks = []
    for i in range(n):
        for k in kinds:
            name = f"{k}{i}"
            sock = os.path.join(tmp, name + ".sock")
            socks.append(sock)
            lines += [f"    {name}:", f"      type: {k}", f"      socket-path: {sock}"]
            if k == "block":
                img = os.path.join(tmp, f"img{i}")
                with open(img, "wb") as f:
                    f.truncate(64 << 20)
                lines.append(f"      blk-file: {img}")
            if k == "input":
                lines += [f"      event-socket: {os.path.join(tmp, name + '-ev.sock')}", "      preset: keyboard"]
    path = os.path.join(tmp, "appliance.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path, socks


def measure(launcher, n, kinds):
    with tempfile.TemporaryDirectory() as tmp:
        path, socks = config(tmp, n, kinds)
        p = subprocess.Popen([launcher, "run", "--config", path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.time() + 60
            while not all(os.path.exists(s) for s in socks):
                if p.poll() is not None or time.time() > deadline:
                    raise SystemExit("run did not start: " + (p.stderr.read().decode()[-300:] if p.poll() is not None else "timeout"))
                time.sleep(0.01)
            time.sleep(4)
            best = (1e9, 1e9)
            for _ in range(32):
                m = memory(p.pid)
                best = (min(best[0], m[0]), min(best[1], m[1]))
                time.sleep(0.25)
            return best
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=15)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--launcher", default=os.path.join(ROOT, "app/target/app-image/bin/vhost-appliance"))
    ap.add_argument("--out")
    a = ap.parse_args()
    rows = []
    for kinds in (["block"], ["input"], ["gpu"], ["block", "input", "gpu"]):
        base = None
        for n in (1, 3, 10):
            rss, priv = measure(a.launcher, n, kinds)
            devices = n * len(kinds)
            if base is None:
                base = (devices, rss, priv)
                extra = ""
            else:
                extra = f"{(rss - base[1]) / (devices - base[0]):.2f} / {(priv - base[2]) / (devices - base[0]):.2f}"
            rows.append(f"| {n} x {'+'.join(kinds)} | {devices} | {rss:.1f} | {priv:.1f} | {extra} |")
            print(rows[-1], file=sys.stderr)
    text = "\n".join(["| configuration | devices | idle VmRSS MiB | idle Private MiB | per further device: VmRSS / Private MiB |",
                      "|---|---:|---:|---:|---:|"] + rows)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


main()

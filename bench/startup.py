#!/usr/bin/env python3
"""Start-up time of vhost-user-blk backends: from exec to the socket accepting connections.

  bench/startup.py [-n RUNS] LABEL=COMMAND ...   (COMMAND contains {SOCK} and {IMG})

Runs each command RUNS times, alternating between commands, and prints min / median / max in ms and the
ratio of medians to the first command. Each run: fork+exec, poll connect() every 0.5 ms, then SIGTERM.
"""
import os, signal, socket, statistics, subprocess, sys, tempfile, time

def once(cmd, tmp):
    sock = os.path.join(tmp, "s.sock")
    if os.path.exists(sock):
        os.unlink(sock)
    args = [a.replace("{SOCK}", sock).replace("{IMG}", os.path.join(tmp, "img")) for a in cmd.split()]
    t0 = time.perf_counter()
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        if p.poll() is not None:
            raise SystemExit("backend exited early: " + cmd)
        try:
            c = socket.socket(socket.AF_UNIX)
            c.connect(sock)
            c.close()
            break
        except OSError:
            time.sleep(0.0005)
    dt = (time.perf_counter() - t0) * 1000
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=10)
    return dt

def main():
    args = sys.argv[1:]
    runs = 10
    if args[:1] == ["-n"]:
        runs = int(args[1]); args = args[2:]
    cmds = [a.split("=", 1) for a in args]
    tmp = tempfile.mkdtemp()
    with open(os.path.join(tmp, "img"), "wb") as f:
        f.truncate(64 << 20)
    res = {label: [] for label, _ in cmds}
    for _ in range(runs):
        for label, cmd in cmds:
            res[label].append(once(cmd, tmp))
    base = statistics.median(res[cmds[0][0]])
    print("| backend | min ms | median ms | max ms | median / %s |" % cmds[0][0])
    print("|---|---:|---:|---:|---:|")
    for label, _ in cmds:
        v = res[label]
        print("| %s | %.1f | %.1f | %.1f | %.2f |" % (label, min(v), statistics.median(v), max(v), statistics.median(v) / base))

main()

"""Memory of a process as the footprint benchmarks report it."""


def memory(pid):
    """(VmRSS, Private) in MiB. Private = Private_Clean + Private_Dirty of /proc/PID/smaps_rollup: pages no
    other process maps (a client's shared guest memory and a second JVM's libjvm.so are not in it)."""
    rss = priv = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                priv += int(line.split()[1])
    return rss / 1024, priv / 1024

#!/usr/bin/env python3
"""Connection churn against a running NBD export: ROUNDS x 1000 connections, each dropped at another stage
(before the greeting, while haggling, with 32 writes in flight, halfway through a write's payload); after
each thousand the server's RSS and open fds. Not a test: it prints, nothing asserts.

  bench/nbd_churn.py SOCKET PID ROUNDS     (the export must be named "disk" and writable)
"""
import socket, struct, sys, os, time
sock = sys.argv[1]; pid = int(sys.argv[2]); rounds = int(sys.argv[3])
def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS"): return int(l.split()[1])
def fds(): return len(os.listdir(f"/proc/{pid}/fd"))
def opt(c, o, data):
    c.sendall(struct.pack(">QII", 0x49484156454F5054, o, len(data)) + data)
def replies(c):
    while True:
        h = recvn(c, 20); _, o, t, n = struct.unpack(">QIII", h); recvn(c, n)
        if t == 1 or t & 0x80000000: return
def recvn(c, n):
    b = b""
    while len(b) < n:
        x = c.recv(n - len(b))
        if not x: raise EOFError
        b += x
    return b
def one(i):
    c = socket.socket(socket.AF_UNIX); c.connect(sock)
    try:
        k = i % 4
        if k == 0: return
        recvn(c, 18); c.sendall(struct.pack(">I", 3))
        if k == 1: return
        opt(c, 8, b""); replies(c)
        name = b"disk"; opt(c, 7, struct.pack(">I", 4) + name + struct.pack(">H", 0)); replies(c)
        if k == 2:
            for j in range(32):
                c.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 1, j, j * 65536, 65536) + b"\0" * 65536)
        else:
            c.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 1, 1, 0, 1 << 20) + b"\0" * 1000)
    finally:
        c.close()
for r in range(rounds):
    for i in range(1000): one(i)
    time.sleep(2)
    print(f"after {(r+1)*1000} connections: RSS {rss()} KiB, fds {fds()}", flush=True)

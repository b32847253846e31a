package dev.vhostappliance.block.qcow2;

import dev.vhostappliance.block.io.IoContinuation;
import dev.vhostappliance.block.io.IoEngine;
import dev.vhostappliance.block.io.IoRequest;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * Allocating writes in flight, many at once: a write whose every cluster needs a new host cluster gets a
 * contiguous run of them under the image's lock, and its data, with the copy-on-write head and tail of
 * partial clusters around the guest's own buffers, goes to the file on the queue thread's engine like any
 * other write. When it completes, the run is linked into the L2 table: data before the entries that point at
 * it, as on the slow path. A write, discard or write-zeroes that touches a cluster being allocated is held (no
 * thread waits) and started again on its own queue's engine once the cluster is linked, so writes to the same
 * cluster keep their order and writes to others run in parallel. Everything here runs under the image's lock;
 * the slots' buffers are allocated on a slot's first use and reused.
 */
final class AllocatingWrites {
    /** Memory the slots' copy-on-write buffers may take per image (two clusters a slot). */
    private static final long BUFFER_BUDGET = 8L << 20;
    private static final int MAX_SLOTS = 32;
    /** Guest iovecs an allocating write can carry (a virtqueue's longest chain), plus the head and the tail. */
    static final int MAX_IOVECS = 1024;

    private final Qcow2Image image;
    private final Slot[] slots;
    private final Arena arena;
    /**
     * Clusters one allocating write may take: a contiguous run must fit between two refcount blocks (a new
     * block sits at the first cluster it covers), which with small clusters and wide refcounts is only 64.
     */
    private final int maxRun;
    private IoRequest[] held = new IoRequest[16];
    private IoEngine[] heldOn = new IoEngine[16];
    private int heldCount;
    // counters (monitoring and tests)
    private long heldTotal;
    private long startedTotal;
    private int inFlight;
    private int mostInFlight;

    AllocatingWrites(Qcow2Image image, Arena arena) {
        this.image = image;
        this.arena = arena;
        int n = (int) Math.max(1, Math.min(MAX_SLOTS, BUFFER_BUDGET / (2L * image.clusterSize)));
        this.maxRun = Math.min(MAX_IOVECS, image.refcountBlockEntries() - 1);
        this.slots = new Slot[n];
        for (int i = 0; i < n; i++) {
            slots[i] = new Slot();
        }
    }

    /** True if [offset, offset+length) touches a cluster an allocating write in flight is filling. */
    boolean conflicts(long offset, long length) {
        long first = offset >>> image.clusterBits;
        long last = (offset + length - 1) >>> image.clusterBits;
        for (Slot s : slots) {
            if (s.busy && s.firstGc <= last && first < s.firstGc + s.count) {
                return true;
            }
        }
        return false;
    }

    /** Keeps r (to do kind on the range) until the clusters it touches are linked; then it goes back to io. */
    void hold(IoEngine io, IoRequest r, int kind, MemorySegment iov, int iovCount, long offset, long length, IoContinuation retry) {
        r.hold(kind, iov, iovCount, offset, length);
        r.then(retry);
        if (heldCount == held.length) {
            held = Arrays.copyOf(held, heldCount * 2);
            heldOn = Arrays.copyOf(heldOn, heldCount * 2);
        }
        held[heldCount] = r;
        heldOn[heldCount] = io;
        heldCount++;
        heldTotal++;
    }

    /**
     * Starts r as an allocating write if it is one and a slot is free: every cluster it touches needs a new
     * host cluster, and its copy-on-write head and tail can be transferred as they are (any length on a
     * buffered file, O_DIRECT's alignment otherwise). Returns false for the caller's slow path. Throws on a
     * metadata error (nothing started then).
     */
    boolean start(IoEngine io, IoRequest r, MemorySegment iov, int iovCount, long offset, long length) {
        int bits = image.clusterBits;
        long first = offset >>> bits;
        long last = (offset + length - 1) >>> bits;
        long end = offset + length;
        int head = (int) (offset & (image.clusterSize - 1));
        int tail = (int) (((last + 1) << bits) - end);
        long count = last - first + 1;
        int align = image.file().memoryAlignment();
        if (iovCount > MAX_IOVECS || count > maxRun || head % align != 0 || tail % align != 0) {
            return false; // O_DIRECT and a head or tail it cannot transfer: the slow path aligns them
        }
        Slot slot = null;
        for (Slot s : slots) {
            if (!s.busy) {
                slot = s;
                break;
            }
        }
        if (slot == null) {
            return false;
        }
        for (long gc = first; gc <= last; gc++) {
            if (!image.allocatesOnWrite(gc)) {
                return false;
            }
        }
        slot.ensureBuffers();
        if (head != 0) {
            image.readGuest(first << bits, slot.headSlice(head));
        }
        if (tail != 0) {
            image.readGuest(end, slot.tailSlice(tail));
        }
        long host = image.allocateRun((int) count);
        int n = 0;
        if (head != 0) {
            n = slot.iovec(n, slot.head.address(), head);
        }
        long left = length;
        for (int i = 0; i < iovCount && left > 0; i++) {
            long base = iov.get(ValueLayout.JAVA_LONG, 16L * i);
            long len = Math.min(iov.get(ValueLayout.JAVA_LONG, 16L * i + 8), left);
            n = slot.iovec(n, base, len);
            left -= len;
        }
        if (tail != 0) {
            n = slot.iovec(n, slot.tail.address(), tail);
        }
        slot.busy = true;
        mostInFlight = Math.max(mostInFlight, ++inFlight);
        startedTotal++;
        slot.firstGc = first;
        slot.count = (int) count;
        slot.host = host;
        image.file().write(io, r, slot.iovs, n, host, count << bits);
        r.then(slot);
        return true;
    }

    /** r's data is in the file (or failed): link or drop the run, free the slot, give back what waited. */
    private boolean finished(Slot slot, IoRequest r) {
        image.lock.lock();
        try {
            if (r.result() == 0) {
                try {
                    image.linkRun(slot.firstGc, slot.count, slot.host);
                } catch (Qcow2IoException e) {
                    r.setResult(image.failed(e));
                }
            }
            if (r.result() != 0) {
                image.dropRun(slot.host, slot.count);
            }
            slot.busy = false;
            inFlight--;
            release();
        } finally {
            image.lock.unlock();
        }
        return true;
    }

    /** Every held request no longer touching a cluster in flight goes back to its engine, in order. */
    private void release() {
        int kept = 0;
        for (int i = 0; i < heldCount; i++) {
            IoRequest r = held[i];
            IoEngine io = heldOn[i];
            held[i] = null;
            heldOn[i] = null;
            if (conflicts(r.offset(), r.length())) {
                held[kept] = r;
                heldOn[kept] = io;
                kept++;
            } else {
                io.resumeFromAnyThread(r); // its own queue thread runs it again (the retry continuation)
            }
        }
        heldCount = kept;
    }

    /** Counters so far: allocating writes started, requests held behind one, the most in flight at once. */
    long[] counters() {
        image.lock.lock();
        try {
            return new long[] {startedTotal, heldTotal, mostInFlight};
        } finally {
            image.lock.unlock();
        }
    }

    /** One allocating write in flight: its run, its copy-on-write buffers and its iovec array. */
    private final class Slot implements IoContinuation {
        boolean busy;
        long firstGc;
        int count;
        long host;
        MemorySegment head;
        MemorySegment tail;
        MemorySegment iovs;
        /** Slices of head and tail by length in sectors, made on first use: the next request of that length allocates nothing. */
        MemorySegment[] headSlices;
        MemorySegment[] tailSlices;

        void ensureBuffers() {
            if (iovs == null) {
                head = arena.allocate(image.clusterSize, 4096);
                tail = arena.allocate(image.clusterSize, 4096);
                iovs = arena.allocate(16L * (MAX_IOVECS + 2), 8);
                headSlices = new MemorySegment[image.clusterSize / 512];
                tailSlices = new MemorySegment[image.clusterSize / 512];
            }
        }

        MemorySegment headSlice(int length) {
            return slice(head, headSlices, length);
        }

        MemorySegment tailSlice(int length) {
            return slice(tail, tailSlices, length);
        }

        private static MemorySegment slice(MemorySegment buffer, MemorySegment[] cache, int length) {
            if (length % 512 != 0) {
                return buffer.asSlice(0, length); // byte-granular requests (not from virtio-blk): rare
            }
            int i = length / 512 - 1;
            MemorySegment s = cache[i];
            if (s == null) {
                s = buffer.asSlice(0, length);
                cache[i] = s;
            }
            return s;
        }

        int iovec(int n, long base, long len) {
            iovs.set(ValueLayout.JAVA_LONG, 16L * n, base);
            iovs.set(ValueLayout.JAVA_LONG, 16L * n + 8, len);
            return n + 1;
        }

        @Override
        public boolean resume(IoEngine io, IoRequest r) {
            return finished(this, r);
        }
    }
}

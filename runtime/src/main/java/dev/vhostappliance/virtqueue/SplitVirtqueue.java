package dev.vhostappliance.virtqueue;

import static dev.vhostappliance.virtqueue.VirtioRing.DESC_F_INDIRECT;
import static dev.vhostappliance.virtqueue.VirtioRing.DESC_F_NEXT;
import static dev.vhostappliance.virtqueue.VirtioRing.DESC_F_WRITE;

import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.memory.GuestMemory;
import dev.vhostappliance.memory.MemoryRegion;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import org.jboss.logging.Logger;

/**
 * A split virtqueue living in guest memory: descriptor table, avail ring, used ring. The device side of
 * virtio 1.x section 2.7, hardened: every guest value is read once, every index and address is checked,
 * chains are bounded (direct part by the queue size, an indirect table by its own length and
 * {@link VirtioRing#MAX_INDIRECT}), and a malformed ring breaks this queue only.
 *
 * <p>Memory ordering follows libvhost-user: avail->idx is read with acquire before the ring and
 * descriptors; used entries are written before used->idx is published with release; and a full fence
 * separates publishing used->idx (or avail_event) from reading used_event / avail->flags (or re-reading
 * avail->idx), without which notifications are lost and guests hang.
 *
 * <p>Threads: pop runs on the queue's worker thread only; push and notifyDriver may be called from any
 * thread (devices complete requests where their I/O finishes) and are serialised by a lock. Each popped
 * request holds a reference on the guest memory table it was popped under, released when it is pushed, so
 * a memory table change never unmaps a buffer that is still being read or written.
 */
public final class SplitVirtqueue implements Virtqueue {
    private static final Logger LOG = Logger.getLogger(SplitVirtqueue.class);

    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Aligned 16-bit index fields, for acquire/release access (ring alignment is checked at set-up). */
    private static final VarHandle IDX = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();

    /** Chain buffers beyond what a queue needs; region splits of one descriptor count here. */
    private static final int SPLIT_SLACK = 64;
    /** The used ring's len field is 32 bits: a chain may not describe more than that. */
    private static final long MAX_CHAIN_BYTES = 0xFFFF_FFFFL;
    /** Largest single buffer entry; longer descriptors are split into several entries. */
    private static final long MAX_ENTRY = 1L << 30;

    private final int index;
    private final int size;
    private final int mask;
    private MemorySegment desc;
    private MemorySegment avail;
    private MemorySegment used;
    private GuestMemory memory;
    private final boolean eventIdx;
    private final boolean indirectAllowed;
    private final boolean notifyOnEmpty;
    private int callFd;
    private int errFd;
    private final MemorySegment one = Arena.ofAuto().allocate(8, 8);
    private final InflightRegion inflight;

    private int lastAvail;
    private int usedIdx;
    private int signalledUsed;
    private boolean signalledUsedValid;
    /** Requests popped and not yet pushed. */
    private final java.util.concurrent.atomic.AtomicInteger inUse = new java.util.concurrent.atomic.AtomicInteger();
    /** Serialises push and notify (used ring, inflight log, signalled-used state). */
    private final Object completionLock = new Object();
    /** The memory table each in-flight head was popped under (retained until pushed). */
    private final GuestMemory[] heldMemory;
    /** Set once the ring is stopped: late completions are dropped (their memory still released). */
    private volatile boolean stopped;
    private volatile boolean broken;
    private volatile boolean yieldRequested;
    /** Whether the driver is asked to kick (off while the worker polls the ring: kicks cost the driver a syscall). */
    private boolean notificationsOn = true;
    private String brokenReason;
    /** Heads to resubmit first after a reconnect (from the inflight log), in submission order. */
    private int[] resubmit = new int[0];
    private int resubmitPos;

    /**
     * @param rings the translated rings: desc, avail, used (bounds and alignment already checked)
     * @param lastAvail SET_VRING_BASE
     */
    public SplitVirtqueue(int index, int size, MemorySegment descTable, MemorySegment availRing, MemorySegment usedRing,
            GuestMemory memory, int lastAvail, boolean eventIdx, boolean indirectAllowed, boolean notifyOnEmpty,
            int callFd, int errFd, InflightRegion inflight) {
        this.index = index;
        this.size = size;
        this.mask = size - 1;
        this.desc = descTable;
        this.avail = availRing;
        this.used = usedRing;
        this.memory = memory;
        this.lastAvail = lastAvail & 0xffff;
        this.eventIdx = eventIdx;
        this.indirectAllowed = indirectAllowed;
        this.notifyOnEmpty = notifyOnEmpty;
        this.callFd = callFd;
        this.errFd = errFd;
        this.inflight = inflight;
        this.usedIdx = readUsedIdx();
        this.heldMemory = new GuestMemory[size];
        one.set(ValueLayout.JAVA_LONG, 0, 1L);
        int[] recovered = inflight != null ? inflight.recover(this.usedIdx) : null;
        if (recovered != null) {
            // A restart: what was popped but not completed is resubmitted from the log first, and the avail
            // ring resumes after it (used->idx + in flight), whatever base the frontend guessed.
            resubmit = recovered;
            this.lastAvail = (this.usedIdx + recovered.length) & 0xffff;
            if (recovered.length > 0) {
                LOG.infof("virtqueue %d: resubmitting %d request(s) that were in flight before the reconnect", index,
                        recovered.length);
            }
        }
    }

    /**
     * A new memory table: the same rings at their new mappings. Called by the protocol thread while the
     * worker is paused (the worker's lock orders these writes before its next pop).
     */
    public void remap(GuestMemory newMemory, MemorySegment descTable, MemorySegment availRing, MemorySegment usedRing) {
        this.memory = newMemory;
        this.desc = descTable;
        this.avail = availRing;
        this.used = usedRing;
    }

    /** A new call fd (SET_VRING_CALL while running); -1 for none. Under pause, as {@link #remap}. */
    public void setCallFd(int fd) {
        this.callFd = fd;
    }

    /** A new error fd (SET_VRING_ERR while running). Under pause, as {@link #remap}. */
    public void setErrFd(int fd) {
        this.errFd = fd;
    }

    /** Breaks the queue from outside (its ring vanished from guest memory). */
    public void markBroken(String reason) {
        failed(reason);
    }

    public int index() {
        return index;
    }

    @Override
    public int size() {
        return size;
    }

    /** True if the driver published requests not popped yet (worker thread only; cheap: one acquire load). */
    public boolean hasAvailable() {
        return !broken && !yieldRequested && (resubmitPos < resubmit.length || readAvailIdx() != lastAvail);
    }

    /** Makes {@link #pop} report EMPTY so the device ends its batch (set by the protocol thread). */
    public void requestYield(boolean on) {
        yieldRequested = on;
    }

    @Override
    public GuestMemory memory() {
        return memory;
    }

    public boolean isBroken() {
        return broken;
    }

    public String brokenReason() {
        return brokenReason;
    }

    /** SET_VRING_BASE / GET_VRING_BASE value: the next avail index this backend will read. */
    public int lastAvailIndex() {
        return lastAvail;
    }

    public int inFlight() {
        return inUse.get();
    }

    // counters, written under completionLock
    private long completed;
    private long notifications;
    private long suppressed;
    private long bytesToGuest;

    /** A snapshot of this queue's counters (for monitoring: QMP query-vhost-stats). */
    public QueueStats stats() {
        synchronized (completionLock) {
            return new QueueStats(index, completed, inUse.get(), notifications, suppressed, bytesToGuest, broken);
        }
    }

    /**
     * The ring is stopping (GET_VRING_BASE, reset, disconnect): waits up to timeoutMillis for requests still
     * in flight on other threads, then drops any later completion. Returns whether everything completed.
     */
    public boolean stop(long timeoutMillis) {
        long deadline = System.nanoTime() + timeoutMillis * 1_000_000;
        while (inUse.get() > 0 && System.nanoTime() < deadline) {
            try {
                Thread.sleep(1);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        boolean idle = inUse.get() == 0;
        stopped = true;
        if (!idle) {
            LOG.warnf("virtqueue %d stopped with %d requests still in flight", index, inUse.get());
        }
        return idle;
    }

    @Override
    public int newChainCapacity() {
        return size + VirtioRing.MAX_INDIRECT + SPLIT_SLACK;
    }

    private int readUsedIdx() {
        return ((short) IDX.getAcquire(used, 2L)) & 0xffff;
    }

    /**
     * How many requests the driver has made available and {@link #pop} has not taken yet. With EVENT_IDX it
     * also asks the driver to kick when it adds the next one: a device that waits until enough buffers are
     * there (virtio-input delivers whole event batches) would otherwise never hear of more buffers.
     */
    @Override
    public int availableCount() {
        if (broken) {
            return 0;
        }
        int queued = resubmit.length - resubmitPos;
        int availIdx = readAvailIdx();
        if (eventIdx) {
            used.set(U16, 4L + 8L * size, (short) availIdx);
            logUsed(4L + 8L * size, 2);
            VarHandle.fullFence();
            availIdx = readAvailIdx();
        }
        return queued + Math.min((availIdx - lastAvail) & 0xffff, size);
    }

    /**
     * Turns the driver's kicks off while the worker polls the ring, and on again before it sleeps (QEMU's
     * virtio_queue_set_notification). Off: with EVENT_IDX avail_event is no longer advanced, so the driver
     * stops kicking once it passes it; without, VRING_USED_F_NO_NOTIFY. On: avail_event (or the flag) is set
     * again and a full fence orders it before the caller's next look at avail->idx, which it must take
     * (buffers added meanwhile were not kicked). Worker thread only, under the worker's lock.
     */
    public void setNotification(boolean on) {
        if (broken || on == notificationsOn) {
            return;
        }
        notificationsOn = on;
        if (eventIdx) {
            if (on) {
                used.set(U16, 4L + 8L * size, (short) lastAvail);
                logUsed(4L + 8L * size, 2);
            }
        } else {
            used.set(U16, 0L, (short) (on ? 0 : VirtioRing.USED_F_NO_NOTIFY));
            logUsed(0, 2);
        }
        VarHandle.fullFence();
    }

    private int readAvailIdx() {
        return ((short) IDX.getAcquire(avail, 2L)) & 0xffff;
    }

    @Override
    public int pop(DescriptorChain chain) {
        if (broken) {
            return BROKEN;
        }
        if (yieldRequested) {
            return EMPTY; // the protocol thread is waiting to pause this queue; the worker comes back
        }
        if (resubmitPos < resubmit.length) {
            int head = resubmit[resubmitPos++];
            if (!walk(head, chain) || !hold(head)) {
                return BROKEN;
            }
            return POPPED;
        }
        int availIdx = readAvailIdx();
        int pending = (availIdx - lastAvail) & 0xffff;
        if (pending == 0) {
            if (!eventIdx || !notificationsOn) {
                return EMPTY;
            }
            // Tell the driver where we stopped, then look once more: a buffer added between our read and
            // its read of avail_event would otherwise never be kicked.
            used.set(U16, 4L + 8L * size, (short) lastAvail);
            logUsed(4L + 8L * size, 2);
            VarHandle.fullFence();
            availIdx = readAvailIdx();
            pending = (availIdx - lastAvail) & 0xffff;
            if (pending == 0) {
                return EMPTY;
            }
        }
        if (pending > size) {
            return fail("avail index " + availIdx + " is " + pending + " ahead of " + lastAvail + " (queue size " + size + ")");
        }
        int head = avail.get(U16, 4L + 2L * (lastAvail & mask)) & 0xffff;
        if (head >= size) {
            return fail("avail ring head " + head + " out of range (queue size " + size + ")");
        }
        lastAvail = (lastAvail + 1) & 0xffff;
        if (eventIdx && notificationsOn) {
            used.set(U16, 4L + 8L * size, (short) lastAvail);
            logUsed(4L + 8L * size, 2);
        }
        if (!walk(head, chain)) {
            return BROKEN;
        }
        if (!hold(head)) {
            return BROKEN;
        }
        if (inflight != null) {
            inflight.markInflight(head);
        }
        if (dirtyLog != null) {
            recordWritable(head, chain);
        }
        return POPPED;
    }

    // ---------------------------------------------------------------- dirty logging (live migration)

    /** Set (worker paused) while the frontend logs: VHOST_F_LOG_ALL acked and a log base given. */
    private DirtyLog dirtyLog;
    /** Guest address of the used ring for logging its writes (VHOST_VRING_F_LOG), or -1. */
    private long usedLogAddress = -1;
    /** Per head in flight, the guest ranges of its device-writable buffers: marked when it completes. */
    private long[][] writableRanges;

    /**
     * Starts or stops logging this queue's writes to guest memory: log null stops. Called by the protocol
     * thread with the worker paused. Buffers are marked when their request completes (after the device wrote
     * them), used ring writes when they happen.
     */
    public void setDirtyLogging(DirtyLog log, long usedRingLogAddress) {
        synchronized (completionLock) {
            if (log != null && dirtyLog == null && inUse.get() > 0) {
                // Requests popped before logging began will write where we did not record: call everything dirty.
                for (MemoryRegion r : memory.regions()) {
                    log.mark(r.guestAddress(), r.size());
                }
            }
            this.dirtyLog = log;
            this.usedLogAddress = log != null ? usedRingLogAddress : -1;
            if (log != null && writableRanges == null) {
                writableRanges = new long[size][];
            }
        }
    }

    private void recordWritable(int head, DescriptorChain chain) {
        int n = chain.count() - chain.readableCount();
        long[] r = new long[2 * n]; // only while migrating
        for (int i = 0; i < n; i++) {
            int b = chain.readableCount() + i;
            r[2 * i] = chain.guestAddress(b);
            r[2 * i + 1] = chain.length(b);
        }
        synchronized (completionLock) {
            if (writableRanges != null) {
                writableRanges[head] = r;
            }
        }
    }

    /** Marks a write to the used ring at byte offset off (if the ring is logged). */
    private void logUsed(long off, int len) {
        DirtyLog log = dirtyLog;
        long base = usedLogAddress;
        if (log != null && base >= 0) {
            log.mark(base + off, len);
        }
    }

    /**
     * The request at head is in flight: count it and keep its memory mapped until it is pushed. A head the
     * driver makes available again while it is still in flight breaks the queue (virtio 2.7.13: a driver may
     * not reuse a buffer the device has not returned): two requests writing the same buffers, one of them no
     * longer holding the memory it writes, are not allowed to happen.
     */
    private boolean hold(int head) {
        synchronized (completionLock) {
            if (heldMemory[head] != null) {
                return failed("head " + head + " made available again while still in flight");
            }
            GuestMemory m = memory;
            m.retain();
            heldMemory[head] = m;
            inUse.incrementAndGet();
            return true;
        }
    }

    /** Walks the chain at head into chain; false (queue broken) if it is malformed. */
    private boolean walk(int head, DescriptorChain chain) {
        chain.reset(head);
        // The table being walked: the ring's descriptor table, or an indirect table addressed inside its
        // region segment at tableBase (no slice: the hot path allocates nothing).
        MemorySegment table = desc;
        long tableBase = 0;
        int tableLen = size;
        int budget = size;
        boolean indirect = false;
        int i = head;
        long total = 0;
        while (true) {
            if (budget-- == 0) {
                return failed(indirect ? "indirect descriptor chain loops or exceeds its table"
                        : "descriptor chain loops or is longer than the queue");
            }
            long off = tableBase + (long) i * VirtioRing.DESC_SIZE;
            long addr = table.get(U64, off);
            long len = Integer.toUnsignedLong(table.get(U32, off + 8));
            int flags = table.get(U16, off + 12) & 0xffff;
            int next = table.get(U16, off + 14) & 0xffff;
            if ((flags & DESC_F_INDIRECT) != 0) {
                if (indirect) {
                    return failed("indirect descriptor inside an indirect table");
                }
                if (!indirectAllowed) {
                    return failed("indirect descriptor without VIRTIO_F_RING_INDIRECT_DESC");
                }
                if (i != head || chain.count() != 0) {
                    return failed("indirect descriptor not at the head of the chain");
                }
                if ((flags & DESC_F_NEXT) != 0) {
                    return failed("descriptor has both INDIRECT and NEXT");
                }
                if (len == 0 || len % VirtioRing.DESC_SIZE != 0) {
                    return failed("indirect table length " + len + " is not a non-zero multiple of 16");
                }
                long n = len / VirtioRing.DESC_SIZE;
                if (n > VirtioRing.MAX_INDIRECT) {
                    return failed("indirect table of " + n + " descriptors exceeds " + VirtioRing.MAX_INDIRECT);
                }
                int r = memory.findGuestRange(addr, len);
                if (r < 0) {
                    return failed(String.format("indirect table 0x%x+%d outside guest memory", addr, len));
                }
                MemoryRegion region = memory.region(r);
                table = region.segment();
                tableBase = addr - region.guestAddress();
                tableLen = (int) n;
                budget = tableLen;
                indirect = true;
                i = 0;
                continue;
            }
            boolean writable = (flags & DESC_F_WRITE) != 0;
            if (!writable && chain.count() > chain.readableCount()) {
                return failed("device-readable descriptor after a device-writable one");
            }
            total += len;
            if (total > MAX_CHAIN_BYTES) {
                return failed("descriptor chain describes more than 4 GiB");
            }
            if (len > 0 && !map(chain, addr, len, writable)) {
                return false;
            }
            if ((flags & DESC_F_NEXT) == 0) {
                return true;
            }
            if (next >= tableLen) {
                return failed("next descriptor " + next + " out of range " + tableLen);
            }
            i = next;
        }
    }

    /** Adds guest buffer [addr, addr+len) to the chain, split at region boundaries; false if not all in memory. */
    private boolean map(DescriptorChain chain, long addr, long len, boolean writable) {
        while (len > 0) {
            int r = memory.findGuest(addr);
            if (r < 0) {
                return failed(String.format("buffer at guest address 0x%x is outside guest memory", addr));
            }
            MemoryRegion region = memory.region(r);
            long off = addr - region.guestAddress();
            long chunk = Math.min(Math.min(len, region.size() - off), MAX_ENTRY);
            if (!chain.add(region.segment(), off, (int) chunk, writable, addr)) {
                return failed("request has more buffers than " + chain.capacity());
            }
            addr += chunk;
            len -= chunk;
        }
        return true;
    }

    @Override
    public void push(int head, int writtenBytes) {
        synchronized (completionLock) {
            GuestMemory held = head >= 0 && head < size ? heldMemory[head] : null;
            if (held == null) {
                LOG.warnf("virtqueue %d: completion of head %d that is not in flight ignored", index, head);
                return;
            }
            heldMemory[head] = null;
            try {
                if (broken || stopped) {
                    return;
                }
                int slot = usedIdx & mask;
                long off = 4L + 8L * slot;
                used.set(U32, off, head);
                used.set(U32, off + 4, writtenBytes);
                if (inflight != null) {
                    inflight.beginComplete(head);
                }
                if (dirtyLog != null) {
                    long[] r = writableRanges[head];
                    writableRanges[head] = null;
                    for (int i = 0; r != null && i < r.length; i += 2) {
                        dirtyLog.mark(r[i], r[i + 1]); // the whole buffer: marking more than was written is safe
                    }
                    logUsed(off, 8);
                    logUsed(2, 2);
                }
                usedIdx = (usedIdx + 1) & 0xffff;
                IDX.setRelease(used, 2L, (short) usedIdx);
                completed++;
                bytesToGuest += writtenBytes;
                if (inflight != null) {
                    inflight.endComplete(head, usedIdx);
                }
            } finally {
                inUse.decrementAndGet();
                held.release();
            }
        }
    }

    @Override
    public void notifyDriver() {
        synchronized (completionLock) {
            if (broken || stopped || callFd < 0) {
                return;
            }
            if (needsNotification()) {
                LibC.writeWord(callFd, one);
                notifications++;
            } else {
                suppressed++;
            }
        }
    }

    /**
     * The ring (re)starts with used entries from before (the destination of a live migration, a reconnect):
     * one interrupt, whatever EVENT_IDX says. A completion whose interrupt was lost while the previous owner
     * of the ring stopped would otherwise leave the driver waiting for ever; a spurious interrupt only makes it
     * look at a used ring with nothing new (SPDK's vhost signals on start for the same reason).
     */
    public void notifyDriverOnStart() {
        synchronized (completionLock) {
            if (broken || stopped || callFd < 0 || usedIdx == 0) {
                return;
            }
            LibC.writeWord(callFd, one);
            notifications++;
        }
    }

    private boolean needsNotification() {
        // Publish the used entries before reading used_event / avail->flags (libvhost-user's smp_mb).
        VarHandle.fullFence();
        if (notifyOnEmpty && inUse.get() == 0 && readAvailIdx() == lastAvail) {
            return true;
        }
        if (!eventIdx) {
            return (avail.get(U16, 0L) & VirtioRing.AVAIL_F_NO_INTERRUPT) == 0;
        }
        boolean valid = signalledUsedValid;
        int old = signalledUsed;
        int now = usedIdx;
        signalledUsedValid = true;
        signalledUsed = now;
        int usedEvent = avail.get(U16, 4L + 2L * size) & 0xffff;
        return !valid || ((now - usedEvent - 1) & 0xffff) < ((now - old) & 0xffff);
    }

    private int fail(String reason) {
        failed(reason);
        return BROKEN;
    }

    private boolean failed(String reason) {
        if (!broken) {
            brokenReason = reason;
            broken = true;
            LOG.warnf("virtqueue %d broken: %s", index, reason);
            if (errFd >= 0) {
                LibC.rawWrite(errFd, one, 8);
            }
        }
        return false;
    }
}

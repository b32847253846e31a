package dev.vhostappliance.testing;

import static dev.vhostappliance.testing.GuestRam.U16;
import static dev.vhostappliance.testing.GuestRam.U32;
import static dev.vhostappliance.testing.GuestRam.U64;

import dev.vhostappliance.libc.LibC;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * The driver's side of a split virtqueue in {@link GuestRam}: builds descriptor chains (direct or
 * indirect), publishes them on the avail ring, kicks, and collects used entries. Also lets a test write
 * anything it likes into the rings (that is what hostile-input tests are for).
 */
public final class DriverQueue {
    private static final VarHandle IDX = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();

    public final int size;
    public final long descGpa;
    public final long availGpa;
    public final long usedGpa;
    private final GuestRam ram;
    private final MemorySegment desc;
    private final MemorySegment avail;
    private final MemorySegment used;
    private final Deque<Integer> free = new ArrayDeque<>();
    public final int kickFd;
    public final int callFd;
    private final MemorySegment scratch = Arena.ofAuto().allocate(8, 8);
    private int availIdx;
    private int lastUsed;

    /** A buffer of a request: guest address, length, device-writable or not. */
    public record Buf(long gpa, int len, boolean writable) {
    }

    /** A used-ring entry. */
    public record Used(int head, int len) {
    }

    public DriverQueue(GuestRam ram, int size) throws Exception {
        this.ram = ram;
        this.size = size;
        descGpa = ram.alloc(16L * size, 16);
        availGpa = ram.alloc(6L + 2L * size, 2);
        usedGpa = ram.alloc(6L + 8L * size, 4);
        desc = ram.at(descGpa, 16L * size);
        avail = ram.at(availGpa, 6L + 2L * size);
        used = ram.at(usedGpa, 6L + 8L * size);
        for (int i = 0; i < size; i++) {
            free.add(i);
        }
        kickFd = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
        callFd = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
    }

    public MemorySegment descTable() {
        return desc;
    }

    public MemorySegment availRing() {
        return avail;
    }

    public MemorySegment usedRing() {
        return used;
    }

    public void writeDesc(MemorySegment table, int i, long addr, int len, int flags, int next) {
        long off = 16L * i;
        table.set(U64, off, addr);
        table.set(U32, off + 8, len);
        table.set(U16, off + 12, (short) flags);
        table.set(U16, off + 14, (short) next);
    }

    public int freeCount() {
        return free.size();
    }

    /** Adds a direct chain; returns its head. */
    public int addDirect(Buf... bufs) {
        int[] ids = new int[bufs.length];
        for (int i = 0; i < bufs.length; i++) {
            ids[i] = free.removeFirst();
        }
        for (int i = 0; i < bufs.length; i++) {
            int flags = (bufs[i].writable() ? 2 : 0) | (i + 1 < bufs.length ? 1 : 0);
            writeDesc(desc, ids[i], bufs[i].gpa(), bufs[i].len(), flags, i + 1 < bufs.length ? ids[i + 1] : 0);
        }
        publish(ids[0]);
        return ids[0];
    }

    /** Adds a chain through one indirect table; returns its head. */
    public int addIndirect(Buf... bufs) {
        long table = ram.alloc(16L * bufs.length, 16);
        MemorySegment t = ram.at(table, 16L * bufs.length);
        for (int i = 0; i < bufs.length; i++) {
            int flags = (bufs[i].writable() ? 2 : 0) | (i + 1 < bufs.length ? 1 : 0);
            writeDesc(t, i, bufs[i].gpa(), bufs[i].len(), flags, i + 1);
        }
        int head = free.removeFirst();
        writeDesc(desc, head, table, 16 * bufs.length, 4, 0);
        publish(head);
        return head;
    }

    /** Puts head on the avail ring and publishes avail->idx (release). */
    public void publish(int head) {
        avail.set(U16, 4L + 2L * (availIdx % size), (short) head);
        availIdx = (availIdx + 1) & 0xffff;
        IDX.setRelease(avail, 2L, (short) availIdx);
    }

    /** Raw avail->idx write, for hostile tests. */
    public void setAvailIdx(int idx) {
        availIdx = idx & 0xffff;
        IDX.setRelease(avail, 2L, (short) availIdx);
    }

    public int availIdx() {
        return availIdx;
    }

    public void setAvailFlags(int flags) {
        avail.set(U16, 0, (short) flags);
    }

    /** used_event (EVENT_IDX): interrupt me when used->idx passes this. */
    public void setUsedEvent(int idx) {
        avail.set(U16, 4L + 2L * size, (short) idx);
    }

    public int usedIdx() {
        return ((short) IDX.getAcquire(used, 2L)) & 0xffff;
    }

    public int availEvent() {
        return used.get(U16, 4L + 8L * size) & 0xffff;
    }

    public void kick() {
        scratch.set(ValueLayout.JAVA_LONG, 0, 1L);
        LibC.rawWrite(kickFd, scratch, 8);
    }

    /**
     * Kicks the way Linux's virtio driver does after publishing from oldAvail to avail->idx: with EVENT_IDX
     * only if the device's avail_event asks for it, otherwise unless the device set USED_F_NO_NOTIFY.
     * Returns whether it kicked.
     */
    public boolean kickIfNeeded(int oldAvail, boolean eventIdx) {
        VarHandle.fullFence();
        boolean need;
        if (eventIdx) {
            int event = availEvent();
            need = ((availIdx - event - 1) & 0xffff) < ((availIdx - oldAvail) & 0xffff);
        } else {
            need = (used.get(U16, 0) & 1) == 0;
        }
        if (need) {
            kick();
        }
        return need;
    }

    /** Blocks on the call eventfd for up to timeoutMillis; true if a call arrived (and consumes it). */
    public boolean awaitCall(int timeoutMillis) throws Exception {
        dev.vhostappliance.server.Poll poll = new dev.vhostappliance.server.Poll(1);
        poll.add(callFd);
        if (poll.await(timeoutMillis) == 0) {
            return false;
        }
        return takeCall();
    }

    /** Consumes a pending call; true if there was one. */
    public boolean takeCall() {
        return LibC.rawRead(callFd, scratch, 8) == 8;
    }

    /** Takes the next used entry if any, returning its descriptors to the free list. */
    public Used pollUsed() {
        if (usedIdx() == lastUsed) {
            return null;
        }
        long off = 4L + 8L * (lastUsed % size);
        int head = used.get(U32, off);
        int len = used.get(U32, off + 4);
        lastUsed = (lastUsed + 1) & 0xffff;
        recycle(head);
        return new Used(head, len);
    }

    private void recycle(int head) {
        int i = head;
        for (int n = 0; n < size; n++) {
            free.addLast(i);
            int flags = desc.get(U16, 16L * i + 12);
            if ((flags & 1) == 0) {
                return;
            }
            i = desc.get(U16, 16L * i + 14) & 0xffff;
        }
    }

    /** Waits up to timeoutMillis for a used entry, sleeping on the call eventfd. */
    public Used awaitUsed(long timeoutMillis) throws InterruptedException {
        long deadline = System.nanoTime() + timeoutMillis * 1_000_000;
        while (true) {
            Used u = pollUsed();
            if (u != null) {
                return u;
            }
            if (System.nanoTime() > deadline) {
                return null;
            }
            if (!takeCall()) {
                Thread.sleep(0, 200_000);
            }
        }
    }

    public void close() {
        LibC.close(kickFd);
        LibC.close(callFd);
    }
}

package dev.vhostappliance.virtqueue;

import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.memory.GuestMemory;
import dev.vhostappliance.memory.MemoryRegionSpec;
import dev.vhostappliance.testing.GuestRam;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * The request hot path without the protocol: a split queue in shared guest memory, chains written once,
 * and a loop in which the "driver" republishes heads and the device side pops, pushes and notifies. Used by
 * {@link HotPathAllocationTest} (allocation must be zero) and by {@link #main} (a micro-benchmark; run it
 * as the README says under "Micro-benchmark").
 */
public final class HotPathHarness implements AutoCloseable {
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle IDX = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();

    final GuestRam ram;
    final GuestMemory memory;
    final SplitVirtqueue queue;
    final DescriptorChain chain;
    final int size;
    final int callFd;
    private final MemorySegment avail;
    private final MemorySegment usedRing;
    private final MemorySegment drain = java.lang.foreign.Arena.ofAuto().allocate(8, 8);
    private int availIdx;
    private final int[] heads;
    private int next;

    /** @param indirect each request is one indirect descriptor to a 4-entry table; else a 2-descriptor chain */
    HotPathHarness(int size, boolean indirect, boolean eventIdx) throws Exception {
        this.size = size;
        ram = GuestRam.single(8 << 20);
        GuestRam.Region r = ram.regions().get(0);
        memory = GuestMemory.empty().withRegion(new MemoryRegionSpec(r.gpa(), r.size(), r.uva(), 0), r.fd());
        long descGpa = ram.alloc(16L * size, 16);
        long availGpa = ram.alloc(6L + 2L * size, 2);
        long usedGpa = ram.alloc(6L + 8L * size, 4);
        MemorySegment desc = memory.sliceGuest(descGpa, 16L * size);
        avail = memory.sliceGuest(availGpa, 6L + 2L * size);
        MemorySegment used = memory.sliceGuest(usedGpa, 6L + 8L * size);
        usedRing = used;
        int perRequest = indirect ? 1 : 2;
        heads = new int[size / perRequest];
        for (int h = 0; h < heads.length; h++) {
            long data = ram.alloc(4096 + 16, 16);
            if (indirect) {
                long t = ram.alloc(64, 16);
                MemorySegment table = memory.sliceGuest(t, 64);
                write(table, 0, data, 16, 1, 1);
                write(table, 1, data + 16, 2048, 1, 2);
                write(table, 2, data + 2064, 2048, 3, 3);
                write(table, 3, data + 4112, 1, 2, 0);
                write(desc, h, t, 64, 4, 0);
                heads[h] = h;
            } else {
                write(desc, 2 * h, data, 16, 1, 2 * h + 1);
                write(desc, 2 * h + 1, data + 16, 4096, 2, 0);
                heads[h] = 2 * h;
            }
        }
        callFd = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
        queue = new SplitVirtqueue(0, size, desc, avail, used, memory, 0, eventIdx, true, false, callFd, -1, null);
        chain = queue.newChain();
        if (eventIdx) {
            avail.set(U16, 4L + 2L * size, (short) 0xffff); // driver asks for (almost) no interrupts
        }
    }

    private static void write(MemorySegment t, int i, long addr, int len, int flags, int next) {
        t.set(U64, 16L * i, addr);
        t.set(U32, 16L * i + 8, len);
        t.set(U16, 16L * i + 12, (short) flags);
        t.set(U16, 16L * i + 14, (short) next);
    }

    /** The i-th request's head (a chain the harness prepared). */
    int head(int i) {
        return heads[i];
    }

    /** Makes head available to the device, as a driver does (no kick). */
    void publish(int head) {
        avail.set(U16, 4L + 2L * (availIdx & (size - 1)), (short) head);
        availIdx = (availIdx + 1) & 0xffff;
        IDX.setRelease(avail, 2L, (short) availIdx);
    }

    /** The device's avail_event (EVENT_IDX) and used->flags, as the driver reads them. */
    int availEvent() {
        return usedRing.get(U16, 4L + 8L * size) & 0xffff;
    }

    int usedFlags() {
        return usedRing.get(U16, 0L) & 0xffff;
    }

    /** Publishes a batch of requests, then serves them as a device would; returns requests served. */
    int round(int batch) {
        for (int i = 0; i < batch; i++) {
            avail.set(U16, 4L + 2L * (availIdx & (size - 1)), (short) heads[next]);
            next = next + 1 == heads.length ? 0 : next + 1;
            availIdx = (availIdx + 1) & 0xffff;
        }
        IDX.setRelease(avail, 2L, (short) availIdx);
        int served = 0;
        while (queue.pop(chain) == Virtqueue.POPPED) {
            queue.push(chain.head(), (int) chain.writableBytes());
            served++;
        }
        queue.notifyDriver();
        LibC.readWord(callFd, drain);
        return served;
    }

    @Override
    public void close() {
        LibC.close(callFd);
        memory.close();
        ram.close();
    }

    /** Micro-benchmark: ns per request for chain walking + used publication (+ notification). */
    public static void main(String[] args) throws Exception {
        for (boolean indirect : new boolean[] {false, true}) {
            for (boolean eventIdx : new boolean[] {false, true}) {
                try (HotPathHarness h = new HotPathHarness(256, indirect, eventIdx)) {
                    int batch = 32;
                    for (int i = 0; i < 200_000; i++) {
                        h.round(batch);
                    }
                    long n = 0;
                    long t0 = System.nanoTime();
                    for (int i = 0; i < 300_000; i++) {
                        n += h.round(batch);
                    }
                    long dt = System.nanoTime() - t0;
                    System.out.printf("%-8s %-13s batch %d: %6.1f ns/request (%d requests)%n",
                            indirect ? "indirect" : "direct", eventIdx ? "event-idx" : "notify-always", batch,
                            (double) dt / n, n);
                }
            }
        }
    }
}

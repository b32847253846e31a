package dev.vhostappliance.virtqueue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * One queue's part of the inflight log (VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD, split ring), living in the
 * memfd the backend hands out with GET_INFLIGHT_FD and gets back with SET_INFLIGHT_FD after a restart.
 * Layout as vhost-user.rst and libvhost-user: a 16-byte header {u64 features; u16 version; u16 desc_num;
 * u16 last_batch_head; u16 used_idx} then desc_num entries of {u8 inflight; u8 pad[5]; u16 next; u64 counter}.
 */
public final class InflightRegion {
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final long HEADER = 16;
    private static final long ENTRY = 16;
    private static final int ALIGN = 64;

    private final MemorySegment region;
    private final int size;
    private long counter;

    public InflightRegion(MemorySegment region, int size) {
        this.region = region;
        this.size = size;
    }

    /** Bytes one queue of {@code queueSize} needs. */
    public static long queueRegionBytes(int queueSize) {
        long raw = HEADER + ENTRY * queueSize;
        return (raw + ALIGN - 1) / ALIGN * ALIGN;
    }

    private long entry(int head) {
        return HEADER + ENTRY * head;
    }

    void markInflight(int head) {
        long e = entry(head);
        region.set(U64, e + 8, ++counter);
        region.set(ValueLayout.JAVA_BYTE, e, (byte) 1);
    }

    void beginComplete(int head) {
        long e = entry(head);
        region.set(U16, e + 6, region.get(U16, 12));
        region.set(U16, 12, (short) head);
    }

    void endComplete(int head, int usedIdx) {
        region.set(ValueLayout.JAVA_BYTE, entry(head), (byte) 0);
        region.set(U16, 14, (short) usedIdx);
    }

    /**
     * Brings the log in line with the ring after a (re)start and returns the heads still in flight, oldest
     * first; null for a fresh (version 0) region, which is initialised and leaves SET_VRING_BASE in charge.
     */
    int[] recover(int ringUsedIdx) {
        int version = region.get(U16, 8) & 0xffff;
        int descNum = region.get(U16, 10) & 0xffff;
        if (version == 0 || descNum != size) {
            region.fill((byte) 0);
            region.set(U16, 8, (short) 1);
            region.set(U16, 10, (short) size);
            region.set(U16, 14, (short) ringUsedIdx);
            counter = 0;
            return null;
        }
        int logUsed = region.get(U16, 14) & 0xffff;
        if (logUsed != ringUsedIdx) {
            // The last batch reached the used ring but its inflight flags were not cleared before the crash.
            int batch = (ringUsedIdx - logUsed) & 0xffff;
            int head = region.get(U16, 12) & 0xffff;
            for (int n = 0; n < batch && n < size && head < size; n++) {
                region.set(ValueLayout.JAVA_BYTE, entry(head), (byte) 0);
                head = region.get(U16, entry(head) + 6) & 0xffff;
            }
            region.set(U16, 14, (short) ringUsedIdx);
        }
        List<long[]> inflight = new ArrayList<>();
        long max = 0;
        for (int h = 0; h < size; h++) {
            long e = entry(h);
            long c = region.get(U64, e + 8);
            max = Math.max(max, c);
            if (region.get(ValueLayout.JAVA_BYTE, e) == 1) {
                inflight.add(new long[] {c, h});
            }
        }
        counter = max;
        inflight.sort((a, b) -> Long.compare(a[0], b[0]));
        int[] heads = new int[inflight.size()];
        for (int k = 0; k < heads.length; k++) {
            heads[k] = (int) inflight.get(k)[1];
        }
        return heads;
    }
}

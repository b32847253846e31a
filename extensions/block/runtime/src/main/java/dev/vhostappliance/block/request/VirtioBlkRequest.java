package dev.vhostappliance.block.request;

import static dev.vhostappliance.block.request.VirtioBlk.HEADER_BYTES;

import dev.vhostappliance.block.io.IoRequest;
import dev.vhostappliance.block.io.NativeMemory;
import dev.vhostappliance.virtqueue.DescriptorChain;
import dev.vhostappliance.virtqueue.Virtqueue;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * One virtio-blk request, parsed once from its descriptor chain: the header ({@code type}, {@code sector}),
 * the data buffers as native iovecs (device-readable after the header, or device-writable before the status
 * byte, in any buffer layout), and where the status byte goes. It is also the {@link IoRequest} the I/O
 * engine carries, so a request in flight needs nothing else. Allocated once per slot of a queue and reused;
 * only a request with more buffers than any before it grows its iovec array.
 */
public final class VirtioBlkRequest extends IoRequest {
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Enough iovecs for the seg_max we advertise plus a split header; more grows the array. */
    private static final int INITIAL_IOVS = 128;

    private int head;
    private Virtqueue queue;
    private int type;
    private long sector;
    private long statusAddress;
    private MemorySegment dataIov;
    private int dataCount;
    private long dataBytes;

    /** The export's progress on this request (its steps: I/O, then a flush in writethrough mode). */
    public int stage;
    /** For a request through a bounce buffer: the buffer, its one iovec, and the data bytes done. */
    public MemorySegment bounce;
    public final MemorySegment bounceIov = Arena.ofAuto().allocate(16, 8);
    public long bounceDone;

    public VirtioBlkRequest() {
        this.dataIov = Arena.ofAuto().allocate(16L * INITIAL_IOVS, 8);
    }

    /**
     * Takes the request in chain (popped from queue), reading the header through scratch (16 bytes).
     * Returns false if it has no header or no status byte: it cannot be answered in band.
     */
    public boolean parse(DescriptorChain chain, Virtqueue queue, MemorySegment scratch) {
        this.head = chain.head();
        this.queue = queue;
        this.stage = 0;
        this.bounce = null;
        this.bounceDone = 0;
        this.dataCount = 0;
        this.dataBytes = 0;
        if (chain.readableBytes() < HEADER_BYTES || chain.writableBytes() < 1) {
            return false;
        }
        chain.gather(scratch, HEADER_BYTES);
        type = scratch.get(U32, 0);
        sector = scratch.get(U64, 8);
        int last = chain.count() - 1;
        statusAddress = chain.address(last) + chain.length(last) - 1;
        if (type == VirtioBlk.T_IN || type == VirtioBlk.T_GET_ID) {
            // every writable byte but the last (the status)
            for (int i = chain.readableCount(); i < chain.count(); i++) {
                addData(chain.address(i), chain.length(i) - (i == last ? 1 : 0));
            }
        } else {
            // every readable byte after the header, which may span buffers
            long skip = HEADER_BYTES;
            for (int i = 0; i < chain.readableCount(); i++) {
                long len = chain.length(i);
                long s = Math.min(skip, len);
                skip -= s;
                addData(chain.address(i) + s, len - s);
            }
        }
        return true;
    }

    private void addData(long address, long length) {
        if (length <= 0) {
            return;
        }
        if (16L * (dataCount + 1) > dataIov.byteSize()) {
            MemorySegment bigger = Arena.ofAuto().allocate(dataIov.byteSize() * 2, 8);
            MemorySegment.copy(dataIov, 0, bigger, 0, 16L * dataCount);
            dataIov = bigger;
        }
        dataIov.set(ValueLayout.JAVA_LONG, 16L * dataCount, address);
        dataIov.set(ValueLayout.JAVA_LONG, 16L * dataCount + 8, length);
        dataCount++;
        dataBytes += length;
    }

    public int head() {
        return head;
    }

    public Virtqueue queue() {
        return queue;
    }

    /** VIRTIO_BLK_T_*. */
    public int type() {
        return type;
    }

    /** The header's sector (512-byte units, whatever the logical block size). */
    public long sector() {
        return sector;
    }

    /** The data buffers as struct iovec entries (the engine may consume them: a direct transfer advances them). */
    public MemorySegment dataIov() {
        return dataIov;
    }

    public int dataCount() {
        return dataCount;
    }

    public long dataBytes() {
        return dataBytes;
    }

    /** True if every data buffer starts and ends on align (a power of two). */
    public boolean dataAligned(int align) {
        for (int i = 0; i < dataCount; i++) {
            long addr = dataIov.get(ValueLayout.JAVA_LONG, 16L * i);
            long len = dataIov.get(ValueLayout.JAVA_LONG, 16L * i + 8);
            if (((addr | len) & (align - 1)) != 0) {
                return false;
            }
        }
        return true;
    }

    public void writeStatus(byte status) {
        NativeMemory.ALL.set(ValueLayout.JAVA_BYTE, statusAddress, status);
    }

    /** Copies data bytes [from, from+n) between the guest buffers and other at otherOffset (toOther: guest to other). */
    public void copyData(long from, long n, MemorySegment other, long otherOffset, boolean toOther) {
        long skip = from;
        long done = 0;
        for (int i = 0; i < dataCount && done < n; i++) {
            long addr = dataIov.get(ValueLayout.JAVA_LONG, 16L * i);
            long len = dataIov.get(ValueLayout.JAVA_LONG, 16L * i + 8);
            if (skip >= len) {
                skip -= len;
                continue;
            }
            long step = Math.min(len - skip, n - done);
            if (toOther) {
                MemorySegment.copy(NativeMemory.ALL, addr + skip, other, otherOffset + done, step);
            } else {
                MemorySegment.copy(other, otherOffset + done, NativeMemory.ALL, addr + skip, step);
            }
            done += step;
            skip = 0;
        }
    }
}

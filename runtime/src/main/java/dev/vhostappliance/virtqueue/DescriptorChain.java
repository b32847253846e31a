package dev.vhostappliance.virtqueue;

import java.lang.foreign.MemorySegment;

/**
 * One request popped from a virtqueue: its head index and its buffers as (region segment, offset, length)
 * entries, device-readable ones first, then device-writable ones. Preallocated per queue worker and reused
 * for every request, so the hot path allocates nothing; devices do I/O straight into guest memory through
 * {@link #address(int)} or {@link #segment(int)}.
 */
public final class DescriptorChain {
    private final MemorySegment[] regions;
    private final long[] offsets;
    private final int[] lengths;
    private final long[] guestAddresses;
    int head;
    int count;
    int readableCount;
    long readableBytes;
    long writableBytes;

    public DescriptorChain(int capacity) {
        regions = new MemorySegment[capacity];
        offsets = new long[capacity];
        lengths = new int[capacity];
        guestAddresses = new long[capacity];
    }

    void reset(int head) {
        this.head = head;
        count = 0;
        readableCount = 0;
        readableBytes = 0;
        writableBytes = 0;
    }

    /** Appends a buffer (at guest address gpa); false if the chain is full. */
    boolean add(MemorySegment region, long offset, int length, boolean writable, long gpa) {
        if (count == regions.length) {
            return false;
        }
        guestAddresses[count] = gpa;
        regions[count] = region;
        offsets[count] = offset;
        lengths[count] = length;
        count++;
        if (writable) {
            writableBytes += length;
        } else {
            readableCount++;
            readableBytes += length;
        }
        return true;
    }

    public int capacity() {
        return regions.length;
    }

    /** The head descriptor index: what goes back on the used ring. */
    public int head() {
        return head;
    }

    /** Number of buffers (after splitting at region boundaries). */
    public int count() {
        return count;
    }

    /** Buffers [0, readableCount) are device-readable, [readableCount, count) device-writable. */
    public int readableCount() {
        return readableCount;
    }

    public long readableBytes() {
        return readableBytes;
    }

    public long writableBytes() {
        return writableBytes;
    }

    public boolean isWritable(int i) {
        return i >= readableCount;
    }

    public int length(int i) {
        return lengths[i];
    }

    /** The native address of buffer i (for preadv/pwritev iovecs). */
    public long address(int i) {
        return regions[i].address() + offsets[i];
    }

    /** Buffer i as a segment (bounds-checked by the segment itself). */
    public MemorySegment segment(int i) {
        return regions[i].asSlice(offsets[i], lengths[i]);
    }

    /** The region segment holding buffer i, and the offset in it: for access without slicing. */
    public MemorySegment region(int i) {
        return regions[i];
    }

    /** The guest-physical address of buffer i (for dirty logging). */
    public long guestAddress(int i) {
        return guestAddresses[i];
    }

    public long offset(int i) {
        return offsets[i];
    }

    /** Copies the first n device-readable bytes (a header may span buffers) into dst; returns how many there were. */
    public int gather(MemorySegment dst, int n) {
        int done = 0;
        for (int i = 0; i < readableCount && done < n; i++) {
            int len = Math.min(lengths[i], n - done);
            MemorySegment.copy(regions[i], offsets[i], dst, done, len);
            done += len;
        }
        return done;
    }

    /** Copies n bytes of src into the device-writable buffers from their start; returns how many fitted. */
    public int scatter(MemorySegment src, int n) {
        int done = 0;
        for (int i = readableCount; i < count && done < n; i++) {
            int len = Math.min(lengths[i], n - done);
            MemorySegment.copy(src, done, regions[i], offsets[i], len);
            done += len;
        }
        return done;
    }
}

package dev.vhostappliance.gpu;

import dev.vhostappliance.memory.GuestMemory;
import dev.vhostappliance.memory.MemoryRegion;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A 2D resource: the host copy of an image (off-heap, width x height x 4 bytes) and the guest pages that back
 * it (a scatter list of guest-physical ranges, re-translated on every transfer because the memory table may
 * change between commands).
 */
final class GpuResource {
    final int id;
    final PixelFormat format;
    final int width;
    final int height;
    final long stride;
    private final Arena arena = Arena.ofShared();
    final MemorySegment pixels;
    private long[] backingAddr;
    private long[] backingStart; // offset of each entry in the backing
    private int[] backingLen;
    private long backingBytes;

    GpuResource(int id, PixelFormat format, int width, int height) {
        this.id = id;
        this.format = format;
        this.width = width;
        this.height = height;
        this.stride = (long) width * PixelFormat.BYTES_PER_PIXEL;
        this.pixels = arena.allocate(stride * height, 64);
    }

    long bytes() {
        return pixels.byteSize();
    }

    boolean hasBacking() {
        return backingAddr != null;
    }

    void attachBacking(long[] addr, int[] len) {
        backingAddr = addr;
        backingLen = len;
        backingStart = new long[addr.length];
        long total = 0;
        for (int i = 0; i < addr.length; i++) {
            backingStart[i] = total;
            total += len[i];
        }
        backingBytes = total;
    }

    void detachBacking() {
        backingAddr = null;
        backingLen = null;
        backingStart = null;
        backingBytes = 0;
    }

    long backingBytes() {
        return backingBytes;
    }

    /**
     * Copies n bytes of the backing from byte offset into pixels at dstOffset. False if the range is outside
     * the backing or a page is no longer in guest memory (nothing is copied out of bounds either way).
     */
    boolean copyFromBacking(GuestMemory memory, long offset, long dstOffset, long n) {
        if (offset < 0 || n < 0 || offset > backingBytes || n > backingBytes - offset
                || dstOffset < 0 || dstOffset > pixels.byteSize() || n > pixels.byteSize() - dstOffset) {
            return false;
        }
        int i = entryAt(offset);
        long skip = offset - backingStart[i];
        long done = 0;
        while (done < n) {
            long len = Math.min(backingLen[i] - skip, n - done);
            if (!copyGuest(memory, backingAddr[i] + skip, dstOffset + done, len)) {
                return false;
            }
            done += len;
            skip = 0;
            i++;
        }
        return true;
    }

    /** Guest [gpa, gpa+len) into pixels, split at memory region boundaries. */
    private boolean copyGuest(GuestMemory memory, long gpa, long dst, long len) {
        while (len > 0) {
            int r = memory.findGuest(gpa);
            if (r < 0) {
                return false;
            }
            MemoryRegion region = memory.region(r);
            long off = gpa - region.guestAddress();
            long step = Math.min(len, region.size() - off);
            MemorySegment.copy(region.segment(), off, pixels, dst, step);
            gpa += step;
            dst += step;
            len -= step;
        }
        return true;
    }

    /** The backing entry holding byte offset (binary search over the entry starts). */
    private int entryAt(long offset) {
        int lo = 0;
        int hi = backingStart.length - 1;
        while (lo < hi) {
            int mid = (lo + hi + 1) >>> 1;
            if (backingStart[mid] <= offset) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        // skip empty entries at this offset
        while (lo < backingLen.length - 1 && backingStart[lo] + backingLen[lo] <= offset) {
            lo++;
        }
        return lo;
    }

    void free() {
        arena.close();
    }
}

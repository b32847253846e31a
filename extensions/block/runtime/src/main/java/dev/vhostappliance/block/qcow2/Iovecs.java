package dev.vhostappliance.block.qcow2;

import dev.vhostappliance.block.io.NativeMemory;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Copies between a request's iovecs (at a byte position of the whole transfer) and a buffer. */
final class Iovecs {
    private Iovecs() {
    }

    /** Copies len bytes of src at srcOffset into the iovecs, starting pos bytes into the transfer. */
    static void copyIn(MemorySegment iov, int count, long pos, MemorySegment src, long srcOffset, long len) {
        copy(iov, count, pos, src, srcOffset, len, true);
    }

    /** Copies len bytes of the transfer at pos out of the iovecs into dst at dstOffset. */
    static void copyOut(MemorySegment iov, int count, long pos, MemorySegment dst, long dstOffset, long len) {
        copy(iov, count, pos, dst, dstOffset, len, false);
    }

    /** Zeroes len bytes of the transfer at pos. */
    static void zero(MemorySegment iov, int count, long pos, long len) {
        copy(iov, count, pos, null, 0, len, true);
    }

    /** buf null: zeroes. */
    private static void copy(MemorySegment iov, int count, long pos, MemorySegment buf, long bufOffset, long len, boolean in) {
        long skip = pos;
        for (int i = 0; i < count && len > 0; i++) {
            long base = iov.get(ValueLayout.JAVA_LONG, 16L * i);
            long size = iov.get(ValueLayout.JAVA_LONG, 16L * i + 8);
            if (skip >= size) {
                skip -= size;
                continue;
            }
            long n = Math.min(size - skip, len);
            if (buf == null) {
                NativeMemory.zero(base + skip, n);
            } else if (in) {
                MemorySegment.copy(buf, bufOffset, NativeMemory.ALL, base + skip, n);
            } else {
                MemorySegment.copy(NativeMemory.ALL, base + skip, buf, bufOffset, n);
            }
            bufOffset += n;
            len -= n;
            skip = 0;
        }
    }
}

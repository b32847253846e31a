package dev.vhostappliance.block.io;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Guest buffers by native address. Requests carry their buffers as iovecs (what the kernel takes); copies
 * and fills go through one segment spanning all memory instead of a slice per buffer, so they allocate
 * nothing. Only addresses the virtqueue checked against guest memory, and that stay mapped while their
 * request is in flight, may be used.
 */
public final class NativeMemory {
    public static final MemorySegment ALL = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);
    private static final MemorySegment ZEROES = Arena.global().allocate(64 * 1024, 4096);

    private NativeMemory() {
    }

    /**
     * Moves past bytes transferred from the struct iovec array iov, entries [first, end): whole entries are
     * skipped, a partial one is shortened in place, empty ones after it skipped too. Returns the new first
     * entry (end when all were transferred). For system calls that transfer part of what they were given.
     */
    public static int consumeIovecs(MemorySegment iov, int first, int end, long bytes) {
        long left = bytes;
        int i = first;
        while (left > 0 && i < end) {
            long at = 16L * i;
            long len = iov.get(ValueLayout.JAVA_LONG, at + 8);
            if (left >= len) {
                left -= len;
                i++;
            } else {
                iov.set(ValueLayout.JAVA_LONG, at, iov.get(ValueLayout.JAVA_LONG, at) + left);
                iov.set(ValueLayout.JAVA_LONG, at + 8, len - left);
                left = 0;
            }
        }
        while (i < end && iov.get(ValueLayout.JAVA_LONG, 16L * i + 8) == 0) {
            i++;
        }
        return i;
    }

    /** Writes len zero bytes at address. */
    public static void zero(long address, long len) {
        long done = 0;
        while (done < len) {
            long n = Math.min(ZEROES.byteSize(), len - done);
            MemorySegment.copy(ZEROES, 0, ALL, address + done, n);
            done += n;
        }
    }
}

package dev.vhostappliance.block.io;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

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

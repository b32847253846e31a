package dev.vhostappliance.block;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** One-iovec reads and writes of a slice of the bounce buffer through the node (no allocation). */
final class LibCBounce {
    private LibCBounce() {
    }

    private static void one(MemorySegment iov, MemorySegment bounce, long at, long len) {
        iov.set(ValueLayout.JAVA_LONG, 0, bounce.address() + at);
        iov.set(ValueLayout.JAVA_LONG, 8, len);
    }

    static long pread(BlockNode node, MemorySegment bounce, long at, long len, long offset, MemorySegment iov) {
        one(iov, bounce, at, len);
        return node.preadv(iov, 1, offset);
    }

    static long pwrite(BlockNode node, MemorySegment bounce, long at, long len, long offset, MemorySegment iov) {
        one(iov, bounce, at, len);
        return node.pwritev(iov, 1, offset);
    }
}

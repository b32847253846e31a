package dev.vhostappliance.block.export.vhostuser;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Aligned buffers for O_DIRECT requests whose guest buffers are not aligned: one per such request in flight,
 * made the first time that many are needed and reused after (guests rarely send them: Linux aligns).
 */
final class BouncePool {
    static final long BYTES = 256 * 1024;
    private static final int ALIGN = 4096;
    private MemorySegment[] free = new MemorySegment[4];
    private int top;

    MemorySegment take() {
        return top > 0 ? free[--top] : Arena.ofAuto().allocate(BYTES, ALIGN);
    }

    void give(MemorySegment buffer) {
        if (top == free.length) {
            free = java.util.Arrays.copyOf(free, top * 2);
        }
        free[top++] = buffer;
    }
}

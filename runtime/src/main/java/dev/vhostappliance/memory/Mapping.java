package dev.vhostappliance.memory;

import dev.vhostappliance.libc.LibC;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One mmap of a region's fd, shared by every {@link GuestMemory} table that contains the region. Unmapped
 * when the last table holding it is released, so a table change never pulls memory from under a request
 * still in flight on another thread.
 */
final class Mapping {
    private final long address;
    private final long length;
    private final AtomicInteger holders = new AtomicInteger(0);

    Mapping(long address, long length) {
        this.address = address;
        this.length = length;
    }

    void retain() {
        holders.incrementAndGet();
    }

    void release() {
        if (holders.decrementAndGet() == 0) {
            LibC.munmap(address, length);
        }
    }
}

package dev.vhostappliance.memory;

import java.lang.foreign.MemorySegment;

/**
 * One guest memory region as the frontend described it (VhostUserMemoryRegion) and as we mapped it:
 * {@code segment} covers exactly [guestAddress, guestAddress + size) of guest-physical space, and the same
 * bytes are at [userAddress, userAddress + size) in the frontend's virtual address space.
 */
public record MemoryRegion(long guestAddress, long size, long userAddress, long mmapOffset, MemorySegment segment) {

    public boolean containsGuest(long gpa) {
        return Long.compareUnsigned(gpa - guestAddress, size) < 0;
    }

    public boolean containsUser(long uva) {
        return Long.compareUnsigned(uva - userAddress, size) < 0;
    }

    /** End of the region in guest-physical space (exclusive); never overflows (checked at creation). */
    public long guestEnd() {
        return guestAddress + size;
    }
}

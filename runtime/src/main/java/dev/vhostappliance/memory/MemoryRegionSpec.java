package dev.vhostappliance.memory;

/**
 * A region as received in SET_MEM_TABLE / ADD_MEM_REG, before it is mapped. {@link #validate()} rejects
 * what cannot be a real region: zero size, ranges that overflow 64 bits, offsets beyond the mappable range.
 */
public record MemoryRegionSpec(long guestAddress, long size, long userAddress, long mmapOffset) {

    /** Returns null if the region is acceptable, else why not. */
    public String validate() {
        if (size == 0) {
            return "region of size 0";
        }
        if (size < 0 || mmapOffset < 0) {
            return "region size or mmap offset above 2^63";
        }
        // size > 0 here, so an end that is not above the start means the range wraps past 2^64.
        if (Long.compareUnsigned(guestAddress + size, guestAddress) <= 0) {
            return "guest address range overflows";
        }
        if (Long.compareUnsigned(userAddress + size, userAddress) <= 0) {
            return "user address range overflows";
        }
        if (mmapOffset + size < 0) {
            return "mmap offset + size overflows";
        }
        return null;
    }

    public boolean overlapsGuest(MemoryRegionSpec o) {
        return Long.compareUnsigned(guestAddress, o.guestAddress + o.size) < 0
                && Long.compareUnsigned(o.guestAddress, guestAddress + size) < 0;
    }

    public boolean overlapsUser(MemoryRegionSpec o) {
        return Long.compareUnsigned(userAddress, o.userAddress + o.size) < 0
                && Long.compareUnsigned(o.userAddress, userAddress + size) < 0;
    }
}

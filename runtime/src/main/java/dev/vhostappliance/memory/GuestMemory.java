package dev.vhostappliance.memory;

import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.NativeCallException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The guest's memory as a set of shared mappings (one per region, from the fds of SET_MEM_TABLE or
 * ADD_MEM_REG). Immutable: a memory table change builds a new GuestMemory. Reference counted: the session
 * holds one reference ({@link #close()} drops it) and every request in flight holds one
 * ({@link #retain()}/{@link #release()}); a region's mapping goes away when no table holding it is alive.
 * Every lookup is bounds-checked; nothing here trusts a guest address.
 */
public final class GuestMemory implements AutoCloseable {
    /** QEMU 7.2 uses up to 32 slots, newer QEMU up to 509 (VHOST_USER_MAX_RAM_SLOTS). */
    public static final int MAX_REGIONS = 509;

    private static final GuestMemory EMPTY = new GuestMemory(List.of(), List.of());

    private final MemoryRegion[] regions;
    /** The mappings of the regions, parallel to {@link #regions}; each retained once by this table. */
    private final List<Mapping> mappings;
    private final java.util.concurrent.atomic.AtomicInteger refs = new java.util.concurrent.atomic.AtomicInteger(1);

    private GuestMemory(List<MemoryRegion> regions, List<Mapping> mappings) {
        this.regions = regions.toArray(new MemoryRegion[0]);
        this.mappings = mappings;
        for (Mapping m : mappings) {
            m.retain();
        }
    }

    public static GuestMemory empty() {
        return EMPTY;
    }

    /**
     * Maps {@code spec} from {@code fd} (shared, read-write) and returns this memory plus that region. The
     * fd is not kept: the mapping holds the memory. Fails on overlap with an existing region.
     */
    public GuestMemory withRegion(MemoryRegionSpec spec, int fd) throws NativeCallException, InvalidMemoryException {
        String why = spec.validate();
        if (why != null) {
            throw new InvalidMemoryException(why);
        }
        if (regions.length >= MAX_REGIONS) {
            throw new InvalidMemoryException("more than " + MAX_REGIONS + " memory regions");
        }
        for (MemoryRegion r : regions) {
            MemoryRegionSpec existing = new MemoryRegionSpec(r.guestAddress(), r.size(), r.userAddress(), r.mmapOffset());
            if (existing.overlapsGuest(spec)) {
                throw new InvalidMemoryException(String.format("region at guest 0x%x+0x%x overlaps 0x%x+0x%x",
                        spec.guestAddress(), spec.size(), r.guestAddress(), r.size()));
            }
            if (existing.overlapsUser(spec)) {
                throw new InvalidMemoryException(String.format("region at user 0x%x+0x%x overlaps 0x%x+0x%x",
                        spec.userAddress(), spec.size(), r.userAddress(), r.size()));
            }
        }
        // mmap from offset 0 to cover mmap_offset (which need not be page aligned), as libvhost-user does.
        long length = spec.mmapOffset() + spec.size();
        MemorySegment base = LibC.mmap(length, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED | LibC.MAP_NORESERVE,
                fd, 0);
        MemorySegment segment = base.reinterpret(length).asSlice(spec.mmapOffset(), spec.size());
        List<MemoryRegion> nr = new ArrayList<>(List.of(regions));
        nr.add(new MemoryRegion(spec.guestAddress(), spec.size(), spec.userAddress(), spec.mmapOffset(), segment));
        List<Mapping> nm = new ArrayList<>(mappings);
        nm.add(new Mapping(base.address(), length));
        return new GuestMemory(nr, nm);
    }

    /**
     * This memory without the region matching {@code spec} (same guest address, size and user address), or
     * null if no region matches. The region stays mapped while this (old) table or a request using it lives.
     */
    public GuestMemory withoutRegion(MemoryRegionSpec spec) {
        for (int i = 0; i < regions.length; i++) {
            MemoryRegion r = regions[i];
            if (r.guestAddress() == spec.guestAddress() && r.size() == spec.size()
                    && r.userAddress() == spec.userAddress()) {
                List<MemoryRegion> nr = new ArrayList<>(List.of(regions));
                nr.remove(i);
                List<Mapping> nm = new ArrayList<>(mappings);
                nm.remove(i);
                return new GuestMemory(nr, nm);
            }
        }
        return null;
    }

    public int regionCount() {
        return regions.length;
    }

    public MemoryRegion region(int index) {
        return regions[index];
    }

    public List<MemoryRegion> regions() {
        return Collections.unmodifiableList(List.of(regions));
    }

    /** Index of the region holding guest-physical address gpa, or -1. */
    public int findGuest(long gpa) {
        MemoryRegion[] rs = regions;
        for (int i = 0; i < rs.length; i++) {
            if (rs[i].containsGuest(gpa)) {
                return i;
            }
        }
        return -1;
    }

    /**
     * Index of the region holding all of [gpa, gpa+len), or -1: for hot-path reads that address the region's
     * segment at {@code gpa - region.guestAddress()} instead of slicing (a slice is an allocation).
     */
    public int findGuestRange(long gpa, long len) {
        int i = findGuest(gpa);
        if (i < 0 || len < 0) {
            return -1;
        }
        MemoryRegion r = regions[i];
        return len <= r.size() - (gpa - r.guestAddress()) ? i : -1;
    }

    /**
     * The segment for [gpa, gpa+len) if it lies within one region, else null. For rings and small structures
     * (ring tables, indirect descriptor tables) that must be contiguous.
     */
    public MemorySegment sliceGuest(long gpa, long len) {
        int i = findGuestRange(gpa, len);
        if (i < 0) {
            return null;
        }
        MemoryRegion r = regions[i];
        return r.segment().asSlice(gpa - r.guestAddress(), len);
    }

    /** The segment for frontend-virtual [uva, uva+len) (SET_VRING_ADDR) if within one region, else null. */
    public MemorySegment sliceUser(long uva, long len) {
        MemoryRegion[] rs = regions;
        for (MemoryRegion r : rs) {
            if (r.containsUser(uva)) {
                long off = uva - r.userAddress();
                if (len < 0 || len > r.size() - off) {
                    return null;
                }
                return r.segment().asSlice(off, len);
            }
        }
        return null;
    }

    /** One more user (a request in flight). No allocation: used on the hot path. */
    public void retain() {
        refs.incrementAndGet();
    }

    /** A user is done; the last one releases this table's mappings. */
    public void release() {
        if (refs.decrementAndGet() == 0) {
            for (Mapping m : mappings) {
                m.release();
            }
        }
    }

    /** The owner's release: mappings go once no request in flight still uses this table. */
    @Override
    public void close() {
        if (this == EMPTY) {
            return;
        }
        release();
    }
}

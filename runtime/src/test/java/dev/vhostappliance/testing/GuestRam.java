package dev.vhostappliance.testing;

import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.NativeCallException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * Guest RAM as QEMU builds it with memory-backend-memfd,share=on: each region a memfd mapped shared in this
 * process (its address is the "user address" the backend sees). Allocation is a bump pointer over guest
 * physical space, region by region.
 */
public final class GuestRam implements AutoCloseable {
    static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** One region: guest-physical start, size, memfd, and our mapping of it. */
    public record Region(long gpa, long size, int fd, MemorySegment mapping, long mmapOffset) {
        public long uva() {
            return mapping.address();
        }
    }

    private final List<Region> regions = new ArrayList<>();
    private long next;
    private int allocRegion;

    /** Regions of the given sizes, placed at the given guest-physical addresses. */
    public GuestRam(long[] gpas, long[] sizes) throws NativeCallException {
        for (int i = 0; i < gpas.length; i++) {
            addRegion(gpas[i], sizes[i]);
        }
        next = regions.get(0).gpa() + 4096; // keep guest address 0 unused: a null address is a bug
    }

    public static GuestRam single(long size) throws NativeCallException {
        return new GuestRam(new long[] {0}, new long[] {size});
    }

    public Region addRegion(long gpa, long size) throws NativeCallException {
        int fd = LibC.memfdCreate("guest-ram", LibC.MFD_CLOEXEC);
        LibC.ftruncate(fd, size);
        MemorySegment m = LibC.mmap(size, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd, 0).reinterpret(size);
        Region r = new Region(gpa, size, fd, m, 0);
        regions.add(r);
        return r;
    }

    /** The backend's view of this RAM, as SET_MEM_TABLE would build it (for tests that drive devices directly). */
    public dev.vhostappliance.memory.GuestMemory guestMemory() throws Exception {
        dev.vhostappliance.memory.GuestMemory m = dev.vhostappliance.memory.GuestMemory.empty();
        for (Region r : regions) {
            m = m.withRegion(new dev.vhostappliance.memory.MemoryRegionSpec(r.gpa(), r.size(), r.uva(), r.mmapOffset()), r.fd());
        }
        return m;
    }

    public List<Region> regions() {
        return regions;
    }

    /** Allocates len bytes aligned to align in guest-physical space (within one region). */
    public long alloc(long len, long align) {
        while (true) {
            Region r = regions.get(allocRegion);
            long start = Math.max(next, r.gpa());
            start = (start + align - 1) / align * align;
            if (start + len <= r.gpa() + r.size()) {
                next = start + len;
                return start;
            }
            allocRegion++;
            if (allocRegion >= regions.size()) {
                throw new IllegalStateException("guest RAM exhausted");
            }
            next = regions.get(allocRegion).gpa();
        }
    }

    /** The segment for guest-physical [gpa, gpa+len). */
    public MemorySegment at(long gpa, long len) {
        for (Region r : regions) {
            if (gpa >= r.gpa() && gpa + len <= r.gpa() + r.size()) {
                return r.mapping().asSlice(gpa - r.gpa(), len);
            }
        }
        throw new IllegalArgumentException(String.format("0x%x+%d not in guest RAM", gpa, len));
    }

    public long uvaOf(long gpa) {
        for (Region r : regions) {
            if (gpa >= r.gpa() && gpa < r.gpa() + r.size()) {
                return r.uva() + (gpa - r.gpa());
            }
        }
        throw new IllegalArgumentException(String.format("0x%x not in guest RAM", gpa));
    }

    public void write(long gpa, byte[] data) {
        MemorySegment.copy(data, 0, at(gpa, data.length), ValueLayout.JAVA_BYTE, 0, data.length);
    }

    public byte[] read(long gpa, int len) {
        byte[] out = new byte[len];
        MemorySegment.copy(at(gpa, len), ValueLayout.JAVA_BYTE, 0, out, 0, len);
        return out;
    }

    @Override
    public void close() {
        for (Region r : regions) {
            LibC.munmap(r.mapping().address(), r.size());
            LibC.close(r.fd());
        }
        regions.clear();
    }
}

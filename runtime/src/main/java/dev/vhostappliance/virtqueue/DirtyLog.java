package dev.vhostappliance.virtqueue;

import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.NativeCallException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;

/**
 * The frontend's dirty page log for live migration (VHOST_USER_SET_LOG_BASE with LOG_SHMFD): one bit per
 * 4 KiB page of guest-physical address, bit page % 8 of byte page / 8, shared with QEMU, which reads and clears
 * it while we set bits, hence atomic ORs (on 32-bit words: bit p of the little-endian word p / 32). Pages
 * beyond the log's size are not ours to mark and are ignored.
 */
public final class DirtyLog implements AutoCloseable {
    public static final long PAGE = 0x1000;
    private static final VarHandle WORD = ValueLayout.JAVA_INT.varHandle();
    private final MemorySegment log;
    private final long mapped;

    private DirtyLog(MemorySegment log, long mapped) {
        this.log = log;
        this.mapped = mapped;
    }

    /** Maps size bytes of fd from offset (page-aligned, size a multiple of 4). */
    public static DirtyLog map(int fd, long size, long offset) throws NativeCallException {
        if (size <= 0 || (size & 3) != 0 || offset < 0 || (offset & (PAGE - 1)) != 0) {
            throw new IllegalArgumentException("dirty log of " + size + " bytes at offset " + offset);
        }
        MemorySegment addr = LibC.mmap(size, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd, offset);
        return new DirtyLog(addr.reinterpret(size), size);
    }

    public long size() {
        return mapped;
    }

    /** Marks every page [gpa, gpa+len) touches. */
    public void mark(long gpa, long len) {
        if (len <= 0 || gpa < 0) {
            return;
        }
        long first = gpa / PAGE;
        long last = (gpa + len - 1) / PAGE;
        for (long page = first; page <= last; page++) {
            long word = (page >>> 5) << 2;
            if (word + 4 > mapped) {
                return;
            }
            WORD.getAndBitwiseOr(log, word, 1 << (int) (page & 31));
        }
    }

    /** Whether page of gpa is marked (tests). */
    public boolean isDirty(long gpa) {
        long page = gpa / PAGE;
        long word = (page >>> 5) << 2;
        return word + 4 <= mapped && (((int) WORD.getVolatile(log, word)) & (1 << (int) (page & 31))) != 0;
    }

    @Override
    public void close() {
        LibC.munmap(log.address(), mapped);
    }
}

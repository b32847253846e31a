package dev.vhostappliance.libc;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Whole-file OFD locks (fcntl F_OFD_SETLK), the kind QEMU takes on images: held by the open file
 * description, released when it is closed, never blocking.
 */
public final class FileLocks {
    /** struct flock: short l_type; short l_whence; off_t l_start; off_t l_len; pid_t l_pid. */
    private static final int FLOCK_SIZE = 32;
    private static final short F_RDLCK = 0;
    private static final short F_WRLCK = 1;

    private FileLocks() {
    }

    /** Takes a shared or exclusive lock on the whole file; false if another holder conflicts. */
    public static boolean tryLock(int fd, boolean exclusive) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment flock = arena.allocate(FLOCK_SIZE, 8); // zeroed: whence SET, start 0, len 0 = all
            flock.set(ValueLayout.JAVA_SHORT, 0, exclusive ? F_WRLCK : F_RDLCK);
            return LibC.rawFcntl(fd, LibC.F_OFD_SETLK, flock) >= 0;
        }
    }
}

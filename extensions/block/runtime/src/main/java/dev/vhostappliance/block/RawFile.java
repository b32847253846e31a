package dev.vhostappliance.block;

import dev.vhostappliance.cli.StartupException;
import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.NativeCallException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

/**
 * A raw image file or block device, opened and locked the way QEMU does: an OFD lock (shared for
 * read-only, exclusive for writable) so two writers can never use the same image at once.
 */
final class RawFile implements AutoCloseable {
    /** struct flock: short l_type; short l_whence; off_t l_start; off_t l_len; pid_t l_pid. */
    private static final int FLOCK_SIZE = 32;
    private static final short F_RDLCK = 0;
    private static final short F_WRLCK = 1;

    final int fd;
    final boolean readOnly;
    final Path path;

    private RawFile(int fd, boolean readOnly, Path path) {
        this.fd = fd;
        this.readOnly = readOnly;
        this.path = path;
    }

    static RawFile open(Path path, boolean readOnly) throws StartupException {
        int fd;
        try {
            fd = LibC.open(path.toString(), (readOnly ? LibC.O_RDONLY : LibC.O_RDWR) | LibC.O_CLOEXEC, 0);
        } catch (NativeCallException e) {
            throw new StartupException("cannot open image " + path + ": " + dev.vhostappliance.libc.Errno.describe(e.errno()));
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment flock = arena.allocate(FLOCK_SIZE, 8);
            flock.set(ValueLayout.JAVA_SHORT, 0, readOnly ? F_RDLCK : F_WRLCK);
            int rc = LibC.rawFcntl(fd, LibC.F_OFD_SETLK, flock);
            if (rc < 0) {
                LibC.close(fd);
                throw new StartupException("image " + path + " is in use by another process (failed to get "
                        + (readOnly ? "shared" : "exclusive") + " \"write\" lock)");
            }
        }
        return new RawFile(fd, readOnly, path);
    }

    long size() throws NativeCallException {
        return LibC.size(fd);
    }

    @Override
    public void close() {
        LibC.close(fd); // releases the OFD lock
    }
}

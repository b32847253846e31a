package dev.vhostappliance.block;

import dev.vhostappliance.cli.StartupException;
import dev.vhostappliance.libc.Errno;
import dev.vhostappliance.libc.FileLocks;
import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.NativeCallException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * The {@code file} protocol driver: a raw image file or host block device, opened and locked the way QEMU
 * does (an OFD lock, shared for read-only, exclusive for writable), so two writers never share an image.
 */
final class FileNode implements BlockNode {
    /** A zeroed buffer for writing zeroes where the file system can neither punch nor zero a range. */
    private static final MemorySegment ZEROES = Arena.global().allocate(1 << 20, 4096);

    private final String name;
    private final int fd;
    private final boolean readOnly;
    private final boolean unmapOnDiscard;
    private final boolean noFlush;
    private volatile long size;

    private final boolean direct;

    private FileNode(String name, int fd, boolean readOnly, boolean unmapOnDiscard, boolean noFlush, long size,
            boolean direct) {
        this.direct = direct;
        this.name = name;
        this.fd = fd;
        this.readOnly = readOnly;
        this.unmapOnDiscard = unmapOnDiscard;
        this.noFlush = noFlush;
        this.size = size;
    }

    /** Options of the file driver we support (BlockdevOptionsFile and the common ones). */
    record Options(boolean readOnly, boolean autoReadOnly, boolean locking, boolean unmapOnDiscard, boolean noFlush,
            boolean direct) {
        static Options defaults(boolean readOnly) {
            return new Options(readOnly, false, true, true, false, false);
        }
    }

    /** O_DIRECT's classic alignment for buffer addresses, offsets and lengths. */
    static final int DIRECT_ALIGNMENT = 512;

    static FileNode open(String name, Path path, Options o) throws StartupException {
        boolean readOnly = o.readOnly();
        int fd;
        try {
            fd = LibC.open(path.toString(), (readOnly ? LibC.O_RDONLY : LibC.O_RDWR) | LibC.O_CLOEXEC
                    | (o.direct() ? LibC.O_DIRECT : 0), 0);
        } catch (NativeCallException e) {
            if (!readOnly && o.autoReadOnly() && (e.errno() == Errno.EACCES || e.errno() == Errno.EPERM || e.errno() == 30)) {
                return open(name, path, new Options(true, false, o.locking(), o.unmapOnDiscard(), o.noFlush(), o.direct()));
            }
            throw new StartupException("Could not open '" + path + "'" + (o.direct() && e.errno() == Errno.EINVAL
                    ? ": the file system does not support O_DIRECT (cache.direct=on)" : ": " + Errno.describe(e.errno())));
        }
        try {
            if (o.locking()) {
                lock(fd, readOnly, path);
            }
            long size = LibC.size(fd);
            return new FileNode(name, fd, readOnly, o.unmapOnDiscard(), o.noFlush(), size, o.direct());
        } catch (StartupException e) {
            LibC.close(fd);
            throw e;
        } catch (NativeCallException e) {
            LibC.close(fd);
            throw new StartupException("Could not size '" + path + "': " + e.getMessage());
        }
    }

    private static void lock(int fd, boolean readOnly, Path path) throws StartupException {
        if (!FileLocks.tryLock(fd, !readOnly)) {
            throw new StartupException("Failed to get " + (readOnly ? "shared" : "exclusive")
                    + " \"write\" lock: image " + path + " is in use by another process");
        }
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public int memoryAlignment() {
        return direct ? DIRECT_ALIGNMENT : 1;
    }

    @Override
    public void resize(long newSize) throws StartupException {
        if (readOnly) {
            throw new StartupException("node '" + name + "' is read-only");
        }
        try {
            LibC.ftruncate(fd, newSize);
        } catch (NativeCallException e) {
            throw new StartupException("cannot resize node '" + name + "': " + e.getMessage());
        }
        refreshSize();
    }

    @Override
    public long refreshSize() {
        try {
            size = LibC.size(fd);
        } catch (NativeCallException e) {
            // keep the old size: the file is still there (we hold it open)
        }
        return size;
    }

    @Override
    public boolean readOnly() {
        return readOnly;
    }

    @Override
    public long preadv(MemorySegment iov, int iovcnt, long offset) {
        return LibC.rawPreadv(fd, iov, iovcnt, offset);
    }

    @Override
    public long pwritev(MemorySegment iov, int iovcnt, long offset) {
        return LibC.rawPwritev(fd, iov, iovcnt, offset);
    }

    @Override
    public boolean flush() {
        return readOnly || noFlush || LibC.rawFdatasync(fd) == 0;
    }

    @Override
    public boolean discard(long offset, long length) {
        if (!unmapOnDiscard) {
            return true; // discard=ignore
        }
        int rc = LibC.rawFallocate(fd, LibC.FALLOC_FL_PUNCH_HOLE | LibC.FALLOC_FL_KEEP_SIZE, offset, length);
        return rc == 0 || rc == -Errno.EOPNOTSUPP;
    }

    /**
     * With unmap a hole is punched (reads as zeroes); otherwise, or where that fails, ZERO_RANGE, and where
     * the file system has neither (tmpfs has no ZERO_RANGE), plain writes of zeroes.
     */
    @Override
    public boolean writeZeroes(long offset, long length, boolean unmap) {
        if (unmap && unmapOnDiscard
                && LibC.rawFallocate(fd, LibC.FALLOC_FL_PUNCH_HOLE | LibC.FALLOC_FL_KEEP_SIZE, offset, length) == 0) {
            return true;
        }
        if (LibC.rawFallocate(fd, LibC.FALLOC_FL_ZERO_RANGE | LibC.FALLOC_FL_KEEP_SIZE, offset, length) == 0) {
            return true;
        }
        long done = 0;
        while (done < length) {
            long n = LibC.rawPwrite(fd, ZEROES, Math.min(ZEROES.byteSize(), length - done), offset + done);
            if (n == -Errno.EINTR) {
                continue;
            }
            if (n <= 0) {
                return false;
            }
            done += n;
        }
        return true;
    }

    @Override
    public void close() {
        LibC.close(fd); // releases the OFD lock
    }
}

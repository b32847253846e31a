package dev.vhostappliance.block.node;

import dev.vhostappliance.block.io.IoEngine;
import dev.vhostappliance.block.io.IoEngineKind;
import dev.vhostappliance.block.io.IoFallback;
import dev.vhostappliance.block.io.IoRequest;
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
 * does (an OFD lock, shared for read-only, exclusive for writable), so two writers never share an image. Its
 * I/O runs on the engine its {@code aio=} option names (io_uring by default); discard and write-zeroes are
 * fallocate calls, with the fallbacks QEMU has where a file system lacks a mode.
 */
public final class FileNode implements BlockNode {
    /** A zeroed buffer for writing zeroes where the file system can neither punch nor zero a range. */
    private static final MemorySegment ZEROES = Arena.global().allocate(1 << 20, 4096);

    private final String name;
    private final int fd;
    private final boolean readOnly;
    private final boolean unmapOnDiscard;
    private final boolean noFlush;
    private volatile long size;

    private final boolean direct;
    private final IoEngineKind engine;
    private final Path path;

    private FileNode(String name, Path path, int fd, boolean readOnly, boolean unmapOnDiscard, boolean noFlush, long size,
            boolean direct, IoEngineKind engine) {
        this.path = path;
        this.direct = direct;
        this.engine = engine;
        this.name = name;
        this.fd = fd;
        this.readOnly = readOnly;
        this.unmapOnDiscard = unmapOnDiscard;
        this.noFlush = noFlush;
        this.size = size;
    }

    /** Options of the file driver we support (BlockdevOptionsFile and the common ones). */
    public record Options(boolean readOnly, boolean autoReadOnly, boolean locking, boolean unmapOnDiscard,
            boolean noFlush, boolean direct, IoEngineKind aio) {
        public static Options defaults(boolean readOnly) {
            return new Options(readOnly, false, true, true, false, false, IoEngineKind.IO_URING);
        }

        public Options withAio(IoEngineKind kind) {
            return new Options(readOnly, autoReadOnly, locking, unmapOnDiscard, noFlush, direct, kind);
        }

        public Options withDirect(boolean on) {
            return new Options(readOnly, autoReadOnly, locking, unmapOnDiscard, noFlush, on, aio);
        }

        Options asReadOnly() {
            return new Options(true, false, locking, unmapOnDiscard, noFlush, direct, aio);
        }
    }

    /** O_DIRECT's classic alignment for buffer addresses, offsets and lengths. */
    public static final int DIRECT_ALIGNMENT = 512;

    public static FileNode open(String name, Path path, Options o) throws StartupException {
        boolean readOnly = o.readOnly();
        int fd;
        try {
            fd = LibC.open(path.toString(), (readOnly ? LibC.O_RDONLY : LibC.O_RDWR) | LibC.O_CLOEXEC
                    | (o.direct() ? LibC.O_DIRECT : 0), 0);
        } catch (NativeCallException e) {
            if (!readOnly && o.autoReadOnly() && (e.errno() == Errno.EACCES || e.errno() == Errno.EPERM || e.errno() == Errno.EROFS)) {
                return open(name, path, o.asReadOnly());
            }
            throw new StartupException("Could not open '" + path + "'" + (o.direct() && e.errno() == Errno.EINVAL
                    ? ": the file system does not support O_DIRECT (cache.direct=on)" : ": " + Errno.describe(e.errno())));
        }
        try {
            if (o.locking()) {
                lock(fd, readOnly, path);
            }
            long size = LibC.size(fd);
            return new FileNode(name, path, fd, readOnly, o.unmapOnDiscard(), o.noFlush(), size, o.direct(), o.aio());
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

    /** The file's path as it was opened (a format resolves a relative backing file name against it). */
    public Path path() {
        return path;
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
    public boolean waitsOnDevice() {
        return direct;
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
    public IoEngineKind engineKind() {
        return engine;
    }

    @Override
    public int ioFd() {
        return fd;
    }

    /**
     * Buffered transfers from this size on are copied by the kernel's io_uring workers, so several copy on
     * other cores at once instead of one after the other inside the queue thread's submission.
     */
    static final long OFFLOAD_BYTES = 64 * 1024;

    @Override
    public void read(IoEngine io, IoRequest r, MemorySegment iov, int iovCount, long offset, long length) {
        r.prepareRead(fd, iov, iovCount, offset, length);
        if (!direct && length >= OFFLOAD_BYTES) {
            r.offload();
        }
        io.queue(r);
    }

    @Override
    public void write(IoEngine io, IoRequest r, MemorySegment iov, int iovCount, long offset, long length) {
        if (readOnly) {
            io.completeNow(r, -Errno.EPERM);
            return;
        }
        r.prepareWrite(fd, iov, iovCount, offset, length);
        if (!direct && length >= OFFLOAD_BYTES) {
            r.offload();
        }
        io.queue(r);
    }

    @Override
    public void flush(IoEngine io, IoRequest r) {
        if (readOnly || noFlush) {
            io.completeNow(r, 0);
            return;
        }
        r.prepareDatasync(fd);
        io.queue(r);
    }

    private static final int PUNCH = LibC.FALLOC_FL_PUNCH_HOLE | LibC.FALLOC_FL_KEEP_SIZE;
    private static final int ZERO_RANGE = LibC.FALLOC_FL_ZERO_RANGE | LibC.FALLOC_FL_KEEP_SIZE;
    /** Discard is advisory: a file system that cannot punch holes has done nothing wrong. */
    private static final IoFallback DISCARD_UNSUPPORTED = (r, error) -> error == -Errno.EOPNOTSUPP ? 0 : error;
    /** Punching failed: zero the range another way. */
    private final IoFallback punchFailed = (r, error) -> zeroSynchronously(r.offset(), r.length(), true);
    /** ZERO_RANGE failed (tmpfs has none): write zeroes. */
    private final IoFallback zeroRangeFailed = (r, error) -> zeroSynchronously(r.offset(), r.length(), false);

    @Override
    public void discard(IoEngine io, IoRequest r, long offset, long length) {
        if (readOnly) {
            io.completeNow(r, -Errno.EPERM);
        } else if (!unmapOnDiscard) {
            io.completeNow(r, 0); // discard=ignore
        } else {
            r.prepareFallocate(fd, PUNCH, offset, length, DISCARD_UNSUPPORTED);
            io.queue(r);
        }
    }

    /**
     * With unmap a hole is punched (reads as zeroes); otherwise, or where that fails, ZERO_RANGE, and where
     * the file system has neither (tmpfs has no ZERO_RANGE), plain writes of zeroes on the queue thread.
     */
    @Override
    public void writeZeroes(IoEngine io, IoRequest r, long offset, long length, boolean unmap) {
        if (readOnly) {
            io.completeNow(r, -Errno.EPERM);
        } else if (unmap && unmapOnDiscard) {
            r.prepareFallocate(fd, PUNCH, offset, length, punchFailed);
            io.queue(r);
        } else {
            r.prepareFallocate(fd, ZERO_RANGE, offset, length, zeroRangeFailed);
            io.queue(r);
        }
    }

    /** Punching a hole is one fallocate; ZERO_RANGE may fall back to writing zeroes (tmpfs). */
    @Override
    public boolean zeroesFast(boolean unmap) {
        return unmap && unmapOnDiscard && !readOnly;
    }

    /** SEEK_DATA/SEEK_HOLE: a hole reads as zeroes; a file that cannot tell (-EINVAL) is all data. */
    @Override
    public long blockStatus(long offset, long length, BlockStatus status) {
        long data = LibC.rawLseek(fd, offset, LibC.SEEK_DATA);
        if (data == -Errno.ENXIO) {
            return status.set(true, true, 1, length); // only a hole up to the end of the file
        }
        if (data < 0) {
            return status.set(false, false, 1, length);
        }
        if (data > offset) {
            return status.set(true, true, 1, Math.min(length, data - offset));
        }
        long hole = LibC.rawLseek(fd, offset, LibC.SEEK_HOLE);
        long run = hole > offset ? hole - offset : length;
        return status.set(false, false, 1, Math.min(length, run));
    }

    @Override
    public int readSync(MemorySegment buf, long offset) {
        return transferSync(buf, offset, false);
    }

    @Override
    public int writeSync(MemorySegment buf, long offset) {
        return readOnly ? -Errno.EPERM : transferSync(buf, offset, true);
    }

    /** pread/pwrite the whole buffer: EINTR retried; past the end a read gets zeroes, a write ENOSPC. */
    private int transferSync(MemorySegment buf, long offset, boolean write) {
        long done = 0;
        long length = buf.byteSize();
        while (done < length) {
            MemorySegment rest = buf.asSlice(done);
            long n = write ? LibC.rawPwrite(fd, rest, length - done, offset + done)
                    : LibC.rawPread(fd, rest, length - done, offset + done);
            if (n == -Errno.EINTR) {
                continue;
            }
            if (n < 0) {
                return (int) n;
            }
            if (n == 0) {
                if (write) {
                    return -Errno.ENOSPC;
                }
                rest.fill((byte) 0); // past the end of the file
                return 0;
            }
            done += n;
        }
        if (write && offset + length > size) {
            size = offset + length;
        }
        return 0;
    }

    @Override
    public void grownTo(long end) {
        if (end > size) {
            size = end;
        }
    }

    @Override
    public int flushSync() {
        return readOnly || noFlush ? 0 : LibC.rawFdatasync(fd);
    }

    @Override
    public int discardSync(long offset, long length) {
        if (readOnly || !unmapOnDiscard) {
            return 0;
        }
        int rc = LibC.rawFallocate(fd, PUNCH, offset, length);
        return rc == -Errno.EOPNOTSUPP ? 0 : rc;
    }

    /** The slow ways to zero a range (rare: file systems without the fallocate mode); 0 or -errno. */
    private int zeroSynchronously(long offset, long length, boolean tryZeroRange) {
        if (tryZeroRange && LibC.rawFallocate(fd, ZERO_RANGE, offset, length) == 0) {
            return 0;
        }
        long done = 0;
        while (done < length) {
            long n = LibC.rawPwrite(fd, ZEROES, Math.min(ZEROES.byteSize(), length - done), offset + done);
            if (n == -Errno.EINTR) {
                continue;
            }
            if (n <= 0) {
                return n == 0 ? -Errno.EIO : (int) n;
            }
            done += n;
        }
        return 0;
    }

    @Override
    public void close() {
        LibC.close(fd); // releases the OFD lock
    }
}

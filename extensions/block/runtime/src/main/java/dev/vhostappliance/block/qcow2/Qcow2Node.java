package dev.vhostappliance.block.qcow2;

import dev.vhostappliance.block.io.IoContinuation;
import dev.vhostappliance.block.io.IoEngine;
import dev.vhostappliance.block.io.IoEngineKind;
import dev.vhostappliance.block.io.IoRequest;
import dev.vhostappliance.block.node.BlockNode;
import dev.vhostappliance.block.node.BlockStatus;
import dev.vhostappliance.cli.StartupException;
import dev.vhostappliance.libc.Errno;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * The {@code qcow2} format node. A request whose range maps to one run of allocated host clusters (the
 * common case once a disk is written) is translated under the image's lock and handed, as it is, to the
 * queue thread's engine on the file below: many in flight, no copy. A write that needs new clusters goes
 * the same way with its copy-on-write around it ({@link AllocatingWrites}): many in flight too, the same
 * cluster's serialised. Everything else (reads of unallocated, zero, compressed or shared clusters or of host
 * clusters that are not contiguous, discard, zeroes, subcluster allocation) runs on the slow path in
 * {@link Qcow2Image}, synchronously under the lock, and completes at once.
 */
public final class Qcow2Node implements BlockNode {
    private final Qcow2Image image;
    private final AllocatingWrites allocating;

    public Qcow2Node(Qcow2Image image) {
        this.image = image;
        this.allocating = image.allocatingWrites();
    }

    public Qcow2Image image() {
        return image;
    }

    @Override
    public String name() {
        return image.name();
    }

    @Override
    public long size() {
        return image.size();
    }

    @Override
    public boolean readOnly() {
        return image.readOnly();
    }

    @Override
    public void resize(long newSize) throws StartupException {
        int rc = image.resize(newSize);
        if (rc < 0) {
            throw new StartupException("cannot resize node '" + name() + "': "
                    + (rc == -Errno.EOPNOTSUPP ? "qcow2 images can only grow" : Errno.describe(-rc)));
        }
    }

    @Override
    public int memoryAlignment() {
        return image.file().memoryAlignment();
    }

    @Override
    public boolean waitsOnDevice() {
        return image.file().waitsOnDevice();
    }

    @Override
    public IoEngineKind engineKind() {
        return image.file().engineKind();
    }

    @Override
    public int ioFd() {
        return image.file().ioFd();
    }

    @Override
    public List<BlockNode> children() {
        List<BlockNode> children = new ArrayList<>(2);
        children.add(image.file());
        if (image.backing() != null) {
            children.add(image.backing());
        }
        return children;
    }

    @Override
    public long blockStatus(long offset, long length, BlockStatus status) {
        return image.blockStatus(offset, length, status);
    }

    @Override
    public int readSync(MemorySegment buf, long offset) {
        return image.readSync(buf, offset);
    }

    @Override
    public int flushSync() {
        return image.flush();
    }

    @Override
    public void read(IoEngine io, IoRequest r, MemorySegment iov, int iovCount, long offset, long length) {
        long host = locateRead(offset, length);
        if (host >= 0) {
            image.file().read(io, r, iov, iovCount, host, length);
        } else if (host == HOLE) {
            Iovecs.zero(iov, iovCount, 0, length); // outside the lock: queues reading holes do not wait for each other
            io.completeNow(r, 0);
        } else if (host == SLOW) {
            io.completeNow(r, image.read(iov, iovCount, offset, length));
        } else {
            io.completeNow(r, (int) host);
        }
    }

    @Override
    public void write(IoEngine io, IoRequest r, MemorySegment iov, int iovCount, long offset, long length) {
        startWrite(io, r, Qcow2Image.WriteKind.DATA, iov, iovCount, offset, length);
    }

    /**
     * Every change to the guest's data starts here, under the image's lock: held if it touches a cluster an
     * allocating write in flight is filling; otherwise a write to allocated clusters goes to the file's
     * engine as it is, a write that needs new clusters goes as an allocating write ({@link AllocatingWrites}),
     * and the rest (discard, zeroes, in-place subcluster and copy-on-write cases that do not fit) runs on the
     * synchronous slow path, still under the lock, so nothing starts on a cluster in flight meanwhile.
     */
    private void startWrite(IoEngine io, IoRequest r, Qcow2Image.WriteKind kind, MemorySegment iov, int iovCount,
            long offset, long length) {
        if (image.readOnly()) {
            io.completeNow(r, -Errno.EPERM);
            return;
        }
        long host = -1;
        image.lock.lock();
        try {
            if (allocating.conflicts(offset, length)) {
                allocating.hold(io, r, kind.ordinal(), iov, iovCount, offset, length, retry);
                return;
            }
            if (kind == Qcow2Image.WriteKind.DATA) {
                host = image.contiguousHostOffset(offset, length, true);
                if (host < 0 && allocating.start(io, r, iov, iovCount, offset, length)) {
                    return;
                }
            }
            if (host < 0) {
                io.completeNow(r, image.write(kind, iov, iovCount, offset, length));
                return;
            }
        } catch (Qcow2IoException e) {
            io.completeNow(r, image.failed(e));
            return;
        } finally {
            image.lock.unlock();
        }
        image.file().write(io, r, iov, iovCount, host, length);
    }

    /** A held request runs again, on its own queue's engine, once the clusters it waited for are linked. */
    private final IoContinuation retry = (io, r) -> {
        startWrite(io, r, KINDS[r.heldKind()], r.iov(), r.iovEntries(), r.offset(), r.length());
        return false;
    };

    private static final Qcow2Image.WriteKind[] KINDS = Qcow2Image.WriteKind.values();

    /** {@link #locateRead}: the range needs the slow path; the range reads as zeroes without I/O. */
    private static final long SLOW = -1;
    private static final long HOLE = Long.MIN_VALUE;

    /**
     * Where a read goes, with one look at the metadata under the lock: the host offset of one run of
     * allocated clusters, {@link #HOLE}, {@link #SLOW}, or -errno (other than -1) on a metadata error.
     */
    private long locateRead(long offset, long length) {
        image.lock.lock();
        try {
            long host = image.contiguousHostOffset(offset, length, false);
            return host == SLOW && image.readsAsZeroes(offset, length) ? HOLE : host;
        } catch (Qcow2IoException e) {
            return e.errno() == -1 ? -Errno.EIO : e.errno();
        } finally {
            image.lock.unlock();
        }
    }

    @Override
    public void flush(IoEngine io, IoRequest r) {
        if (image.readOnly()) {
            io.completeNow(r, 0);
            return;
        }
        image.lock.lock();
        boolean synced;
        try {
            synced = image.flushMetadata();
        } catch (Qcow2IoException e) {
            io.completeNow(r, e.errno());
            return;
        } finally {
            image.lock.unlock();
        }
        if (synced) {
            io.completeNow(r, 0);
        } else {
            image.file().flush(io, r);
        }
    }

    @Override
    public void discard(IoEngine io, IoRequest r, long offset, long length) {
        startWrite(io, r, Qcow2Image.WriteKind.DISCARD, null, 0, offset, length);
    }

    @Override
    public void writeZeroes(IoEngine io, IoRequest r, long offset, long length, boolean unmap) {
        startWrite(io, r, unmap ? Qcow2Image.WriteKind.ZEROES_UNMAP : Qcow2Image.WriteKind.ZEROES, null, 0, offset, length);
    }

    @Override
    public void close() {
        image.close(); // the file and backing nodes belong to the graph, which closes them after this one
    }
}

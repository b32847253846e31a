package dev.vhostappliance.block.rbd;

import dev.vhostappliance.block.io.IoEngine;
import dev.vhostappliance.block.io.IoEngineKind;
import dev.vhostappliance.block.io.IoRequest;
import dev.vhostappliance.block.node.BlockNode;
import dev.vhostappliance.cli.StartupException;
import dev.vhostappliance.libc.Errno;
import dev.vhostappliance.libc.LibC;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.jboss.logging.Logger;

/**
 * The {@code rbd} protocol driver: an RBD image in a Ceph cluster, its data moved by the rbd engine (librbd's
 * asynchronous calls, straight into guest memory). A resize made anywhere (here by block_resize, or with
 * {@code rbd resize} on another host) reaches the exports through {@link #onResize}. Writers take the image's
 * exclusive lock when they start writing and keep it until they stop ({@link #startWriting}), so a second host
 * cannot write the image meanwhile; a migration hands it over as the source stops and the destination starts.
 */
public final class RbdNode implements BlockNode {
    private static final Logger LOG = Logger.getLogger(RbdNode.class);
    private final String name;
    private final RbdImage image;
    private final MemorySegment handle;
    private final boolean exclusive;
    private final boolean unmapOnDiscard;
    private final List<Runnable> resizeListeners = new CopyOnWriteArrayList<>();
    /** Writers that started (queues, exports) and have not stopped; guarded by this. */
    private int writers;
    private boolean locked;

    private RbdNode(String name, RbdImage image, RbdOptions options) {
        this.name = name;
        this.image = image;
        this.handle = image.handle();
        this.exclusive = options.exclusiveLock();
        this.unmapOnDiscard = options.unmapOnDiscard();
        image.onResize(size -> resizeListeners.forEach(Runnable::run));
    }

    /** Opens the image options name; a sentence naming what failed otherwise. */
    public static RbdNode open(String name, RbdOptions options) throws StartupException {
        try {
            return new RbdNode(name, RbdImage.open(options), options);
        } catch (RbdException e) {
            throw new StartupException("Could not open node '" + name + "' (rbd " + options.spec() + "): " + e.getMessage());
        }
    }

    public RbdImage image() {
        return image;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public long size() {
        return image.size();
    }

    @Override
    public long refreshSize() {
        return image.refreshSize();
    }

    @Override
    public boolean readOnly() {
        return image.readOnly();
    }

    @Override
    public void resize(long newSize) throws StartupException {
        if (readOnly()) {
            throw new StartupException("node '" + name + "' is read-only");
        }
        int rc = image.resize(newSize);
        if (rc < 0) {
            throw new StartupException("cannot resize node '" + name + "' (rbd " + image.spec() + "): " + Errno.describe(-rc));
        }
    }

    @Override
    public void onResize(Runnable listener) {
        resizeListeners.add(listener);
    }

    @Override
    public void removeResizeListener(Runnable listener) {
        resizeListeners.remove(listener);
    }

    @Override
    public boolean waitsOnDevice() {
        return true; // every request is a network round trip to the OSDs
    }

    @Override
    public IoEngineKind engineKind() {
        return IoEngineKind.RBD;
    }

    /**
     * A writer starts (a queue's first write since it started): the first one takes the exclusive lock, waiting
     * for librbd (a few round trips to the cluster). 0, or -errno: -EROFS while another client holds the lock.
     * An image without the exclusive-lock feature, or a node opened with {@code x-exclusive-lock=off}, is
     * written without it, as QEMU does.
     */
    @Override
    public synchronized int startWriting() {
        if (exclusive && !readOnly() && writers == 0 && !locked) {
            int rc = image.lockExclusive();
            if (rc == -Errno.EINVAL) {
                LOG.infof("rbd %s has no exclusive-lock feature: written without the lock", image.spec());
            } else if (rc < 0) {
                LOG.warnf("rbd %s: cannot take the exclusive lock: %s", image.spec(), Errno.describe(-rc));
                return rc;
            } else {
                locked = true;
            }
        }
        writers++;
        return 0;
    }

    /** A writer stopped (its queue was stopped by the frontend or it went away): the last one gives the lock up. */
    @Override
    public synchronized void stopWriting() {
        if (writers > 0 && --writers == 0 && locked) {
            int rc = image.unlock();
            if (rc < 0) {
                LOG.warnf("rbd %s: releasing the exclusive lock: %s", image.spec(), Errno.describe(-rc));
            }
            locked = false;
        }
    }

    @Override
    public void read(IoEngine io, IoRequest r, MemorySegment iov, int iovCount, long offset, long length) {
        r.prepareRead(-1, iov, iovCount, offset, length);
        r.onImage(handle);
        io.queue(r);
    }

    @Override
    public void write(IoEngine io, IoRequest r, MemorySegment iov, int iovCount, long offset, long length) {
        if (readOnly()) {
            io.completeNow(r, -Errno.EPERM);
            return;
        }
        r.prepareWrite(-1, iov, iovCount, offset, length);
        r.onImage(handle);
        io.queue(r);
    }

    @Override
    public void flush(IoEngine io, IoRequest r) {
        if (readOnly()) {
            io.completeNow(r, 0);
            return;
        }
        r.prepareDatasync(-1);
        r.onImage(handle);
        io.queue(r);
    }

    @Override
    public void discard(IoEngine io, IoRequest r, long offset, long length) {
        if (readOnly()) {
            io.completeNow(r, -Errno.EPERM);
            return;
        }
        if (!unmapOnDiscard) {
            io.completeNow(r, 0); // discard=ignore
            return;
        }
        r.prepareFallocate(-1, LibC.FALLOC_FL_PUNCH_HOLE | LibC.FALLOC_FL_KEEP_SIZE, offset, length, null);
        r.onImage(handle);
        io.queue(r);
    }

    /** rbd_aio_write_zeroes: librbd deallocates whole objects and zeroes the rest (unmap or not, it reads as zeroes). */
    @Override
    public void writeZeroes(IoEngine io, IoRequest r, long offset, long length, boolean unmap) {
        if (readOnly()) {
            io.completeNow(r, -Errno.EPERM);
            return;
        }
        r.prepareFallocate(-1, LibC.FALLOC_FL_ZERO_RANGE | LibC.FALLOC_FL_KEEP_SIZE, offset, length, null);
        r.onImage(handle);
        io.queue(r);
    }

    @Override
    public synchronized void close() {
        if (locked) {
            image.unlock();
            locked = false;
        }
        image.close();
    }
}

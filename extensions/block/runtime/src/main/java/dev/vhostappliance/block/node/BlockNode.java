package dev.vhostappliance.block.node;

import dev.vhostappliance.block.io.IoEngine;
import dev.vhostappliance.block.io.IoEngineKind;
import dev.vhostappliance.block.io.IoRequest;
import dev.vhostappliance.cli.StartupException;
import dev.vhostappliance.libc.Errno;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * A node of the block graph, qemu-storage-daemon style: a protocol driver ({@code file}, {@code null-co})
 * possibly under a format ({@code raw}). Exports do their I/O through it, several may share one. The data
 * path is asynchronous: each operation is started on the calling queue thread's {@link IoEngine} with a
 * request the caller owns, and finishes when the engine reaps it (result 0 or -errno). Offsets and lengths
 * are the node's own; the caller has checked them against {@link #size()}. Nothing here allocates per
 * request.
 */
public interface BlockNode extends AutoCloseable {

    String name();

    /** Size in bytes. */
    long size();

    /**
     * A write a format above made through the engine ended at end: a node whose size follows the data (a file
     * grows as it is written) takes note. Called by the format, under its own lock.
     */
    default void grownTo(long end) {
    }

    /** Re-reads the size from the storage (after an image was grown or shrunk) and returns it. */
    default long refreshSize() {
        return size();
    }

    boolean readOnly();

    /**
     * Tells listener whenever the size changes by itself (an RBD image resized on another host); it then reads
     * {@link #size()}. Called on a thread of the node's. A node without such changes forwards to its children.
     */
    default void onResize(Runnable listener) {
        for (BlockNode child : children()) {
            child.onResize(listener);
        }
    }

    default void removeResizeListener(Runnable listener) {
        for (BlockNode child : children()) {
            child.removeResizeListener(listener);
        }
    }

    /**
     * A writer starts writing through this node (a queue's first write since it started): storage that only one
     * host may write at a time (an RBD image's exclusive lock) is claimed; may wait for the storage. 0, or
     * -errno (-EROFS: another host holds it). Each successful call is matched by one {@link #stopWriting}.
     */
    default int startWriting() {
        List<BlockNode> kids = children();
        for (int i = 0; i < kids.size(); i++) {
            int rc = kids.get(i).startWriting();
            if (rc < 0) {
                for (int j = 0; j < i; j++) {
                    kids.get(j).stopWriting();
                }
                return rc;
            }
        }
        return 0;
    }

    /** A writer stopped (its queue stopped, its frontend left): the last one gives the claim up. */
    default void stopWriting() {
        for (BlockNode child : children()) {
            child.stopWriting();
        }
    }

    /** Grows or shrinks the storage to size bytes (QMP block_resize); a sentence of why not otherwise. */
    default void resize(long newSize) throws StartupException {
        throw new StartupException("node '" + name() + "' cannot be resized");
    }

    /**
     * Alignment the node needs for the memory of guest buffers (O_DIRECT: 512); 1 when any address works.
     * Requests with a buffer that is not aligned go through a bounce buffer.
     */
    default int memoryAlignment() {
        return 1;
    }

    /**
     * True if this node's I/O waits on a device (O_DIRECT to a disk, a network's round trip) rather than being
     * answered from memory (the page cache, null-co): a queue thread then sleeps until its requests complete
     * instead of polling for them.
     */
    default boolean waitsOnDevice() {
        return false;
    }

    /** The engine a queue thread doing this node's I/O should run ({@code aio=}). */
    default IoEngineKind engineKind() {
        return IoEngineKind.INLINE;
    }

    /** The file the engine may register once (fixed file), or -1. */
    default int ioFd() {
        return -1;
    }

    /** The nodes this one reads through (a format's file, a backing file). */
    default java.util.List<BlockNode> children() {
        return java.util.List.of();
    }

    /**
     * Describes the run of bytes that starts at offset and shares one status, at most length bytes of it (the
     * caller has checked offset &lt; size): fills status and returns the run's length (&gt; 0). Synchronous and
     * cheap (lseek, a cluster map lookup); the default knows nothing: data, depth 1.
     */
    default long blockStatus(long offset, long length, BlockStatus status) {
        return status.set(false, false, 1, length);
    }

    /**
     * True if {@link #writeZeroes} with this unmap never writes zero buffers (NBD's FAST_ZERO: a client asking
     * for fast zeroes is refused at once where they might be slow).
     */
    default boolean zeroesFast(boolean unmap) {
        return false;
    }

    // ------------------------------------------------------------------ synchronous access
    // For a format driver above this node (qcow2's metadata, its allocating writes, a backing file's reads):
    // done on the calling thread, whole or failed. Results are 0 or -errno.

    /** Reads buf.byteSize() bytes at offset; what lies past the end of the storage reads as zeroes. */
    default int readSync(MemorySegment buf, long offset) {
        return -Errno.EOPNOTSUPP;
    }

    /** Writes buf.byteSize() bytes at offset. */
    default int writeSync(MemorySegment buf, long offset) {
        return -Errno.EOPNOTSUPP;
    }

    /** Makes completed writes durable. */
    default int flushSync() {
        return 0;
    }

    /** Gives a range back to the storage (advisory, as {@link #discard}). */
    default int discardSync(long offset, long length) {
        return 0;
    }

    /** Reads length bytes at offset into the iovCount iovecs at iov. */
    void read(IoEngine io, IoRequest r, MemorySegment iov, int iovCount, long offset, long length);

    /** Writes length bytes at offset from the iovCount iovecs at iov. */
    void write(IoEngine io, IoRequest r, MemorySegment iov, int iovCount, long offset, long length);

    /** Makes completed writes durable. */
    void flush(IoEngine io, IoRequest r);

    /** Deallocates a range (advisory: a node that cannot succeeds doing nothing). */
    void discard(IoEngine io, IoRequest r, long offset, long length);

    /** Makes a range read back as zeroes, deallocating it if unmap allows. */
    void writeZeroes(IoEngine io, IoRequest r, long offset, long length, boolean unmap);

    @Override
    void close();
}

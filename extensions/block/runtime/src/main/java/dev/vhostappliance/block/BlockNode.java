package dev.vhostappliance.block;

import dev.vhostappliance.cli.StartupException;
import java.lang.foreign.MemorySegment;

/**
 * A node of the block graph, qemu-storage-daemon style: a protocol driver ({@code file}, {@code null-co})
 * possibly under a format ({@code raw}). Exports do their I/O through it; several exports may share one.
 * The I/O methods take native iovec arrays (guest memory addresses) and return bytes or -errno, so the
 * request path allocates nothing.
 */
interface BlockNode extends AutoCloseable {

    String name();

    /** Size in bytes. */
    long size();

    /** Re-reads the size from the storage (after an image was grown or shrunk) and returns it. */
    default long refreshSize() {
        return size();
    }

    boolean readOnly();

    /** Grows or shrinks the storage to size bytes (QMP block_resize); a sentence of why not otherwise. */
    default void resize(long newSize) throws StartupException {
        throw new StartupException("node '" + name() + "' cannot be resized");
    }

    /**
     * Alignment the node needs for the memory of guest buffers (O_DIRECT: 512); 1 when any address works.
     * Requests with a buffer that is not aligned go through the queue worker's bounce buffer.
     */
    default int memoryAlignment() {
        return 1;
    }

    long preadv(MemorySegment iov, int iovcnt, long offset);

    long pwritev(MemorySegment iov, int iovcnt, long offset);

    /** Makes completed writes durable; false on error. */
    boolean flush();

    /** Deallocates a range (advisory); false on error. */
    boolean discard(long offset, long length);

    /** Makes a range read back as zeroes; false on error. */
    boolean writeZeroes(long offset, long length, boolean unmap);

    @Override
    void close();
}

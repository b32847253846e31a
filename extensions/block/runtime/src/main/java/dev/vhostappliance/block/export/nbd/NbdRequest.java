package dev.vhostappliance.block.export.nbd;

import static dev.vhostappliance.block.export.nbd.NbdHandshake.U16;
import static dev.vhostappliance.block.export.nbd.NbdHandshake.U32;
import static dev.vhostappliance.block.export.nbd.NbdHandshake.U64;

import dev.vhostappliance.block.io.IoRequest;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * One NBD request, parsed once from its 28-byte header, and everything its answer needs: the data buffer
 * (grown to the largest request the slot served, then reused), the reply header, the block status chunks.
 * A slot of the connection's fixed set: nothing is allocated per request in steady state.
 */
final class NbdRequest extends IoRequest {
    /** Steps of a request. */
    static final int STAGE_IO = 0;
    static final int STAGE_FLUSH = 1;
    /** Descriptors per block status chunk at most (the spec asks for no more than 2^20). */
    static final int MAX_EXTENTS = 512;
    private static final int HEADER_BYTES = 32;

    int flags;
    int type;
    long handle;
    /** Offset and length as the client sent them (the engine's own offset and length are IoRequest's). */
    long from;
    long count;
    int stage;

    private Arena bufferArena;
    private MemorySegment buffer = MemorySegment.NULL;
    /** One iovec over the buffer, for the node. */
    final MemorySegment iov;
    /** The reply's header (simple reply, or a chunk header and its fixed fields). */
    final MemorySegment header;
    /** Block status chunks (header, context id, descriptors), made on first use. */
    private MemorySegment status;

    /** Small segments the engines' threads may read (the iovec): automatic, shared, freed with the slot. */
    NbdRequest() {
        Arena small = Arena.ofAuto();
        this.iov = small.allocate(16, 8);
        this.header = small.allocate(HEADER_BYTES, 8);
    }

    /** Reads the header at at in in; false if its magic is wrong (the stream is out of step). */
    boolean parse(MemorySegment in, long at) {
        if (in.get(U32, at) != Nbd.REQUEST_MAGIC) {
            return false;
        }
        flags = Short.toUnsignedInt(in.get(U16, at + 4));
        type = Short.toUnsignedInt(in.get(U16, at + 6));
        handle = in.get(U64, at + 8);
        from = in.get(U64, at + 16); // unsigned: negative means past any export
        count = Integer.toUnsignedLong(in.get(U32, at + 24));
        stage = STAGE_IO;
        return true;
    }

    /** True if [from, from+count) lies within size bytes. */
    boolean within(long size) {
        return from >= 0 && from <= size && count <= size - from;
    }

    long capacity() {
        return buffer.byteSize();
    }

    long bufferAddress() {
        return buffer.address();
    }

    MemorySegment buffer() {
        return buffer;
    }

    /** The buffer as the iovec's one entry, length bytes of it. */
    MemorySegment iovFor(long bytes) {
        iov.set(ValueLayout.JAVA_LONG, 0, buffer.address());
        iov.set(ValueLayout.JAVA_LONG, 8, bytes);
        return iov;
    }

    /**
     * Replaces the buffer with one of bytes (page-aligned, for O_DIRECT); returns the change in bytes held. On
     * the connection's thread only: the buffer's arena is confined to it, because closing a shared arena
     * synchronises with every thread of the process (with hundreds of connections that made each close, and
     * so each disconnect, slower than the next).
     */
    long resizeBuffer(long bytes) {
        long before = buffer.byteSize();
        if (bufferArena != null) {
            bufferArena.close();
            bufferArena = null;
            buffer = MemorySegment.NULL;
        }
        if (bytes > 0) {
            bufferArena = Arena.ofConfined();
            buffer = bufferArena.allocate(bytes, 4096);
        }
        return buffer.byteSize() - before;
    }

    MemorySegment status() {
        if (status == null) {
            status = Arena.ofAuto().allocate(2L * (Nbd.CHUNK_HEADER_BYTES + 4 + 8L * MAX_EXTENTS), 8);
        }
        return status;
    }
}

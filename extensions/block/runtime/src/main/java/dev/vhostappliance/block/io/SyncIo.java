package dev.vhostappliance.block.io;

import dev.vhostappliance.block.node.BlockNode;
import dev.vhostappliance.server.Poll;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * One request at a time through a node's own engine, waited for on the calling thread: for exports that
 * serve a request before reading the next (FUSE). The asynchronous path of the node is the one used, so
 * every node (file, qcow2, null) works the same as under the other exports.
 */
public final class SyncIo implements AutoCloseable {
    private final BlockNode node;
    private final IoEngine engine;
    private final IoRequest r = new IoRequest();
    private final MemorySegment iov = Arena.ofAuto().allocate(16, 8);
    private final Poll poll = new Poll(1);

    public SyncIo(BlockNode node, String who) {
        this.node = node;
        this.engine = node.engineKind().open(1, node.ioFd(), who);
    }

    /** Reads length bytes at offset into buf; 0 or -errno. */
    public int read(MemorySegment buf, long offset, long length) {
        node.read(engine, r, iov(buf, length), 1, offset, length);
        return await();
    }

    /** Writes length bytes of buf at offset; 0 or -errno. */
    public int write(MemorySegment buf, long offset, long length) {
        node.write(engine, r, iov(buf, length), 1, offset, length);
        return await();
    }

    public int flush() {
        node.flush(engine, r);
        return await();
    }

    public int discard(long offset, long length) {
        node.discard(engine, r, offset, length);
        return await();
    }

    public int writeZeroes(long offset, long length, boolean unmap) {
        node.writeZeroes(engine, r, offset, length, unmap);
        return await();
    }

    private MemorySegment iov(MemorySegment buf, long length) {
        iov.set(ValueLayout.JAVA_LONG, 0, buf.address());
        iov.set(ValueLayout.JAVA_LONG, 8, length);
        return iov;
    }

    private int await() {
        try {
            engine.awaitIdle(done -> { }, poll, Long.MAX_VALUE);
        } catch (dev.vhostappliance.libc.NativeCallException e) {
            return -e.errno();
        }
        return r.result();
    }

    @Override
    public void close() {
        engine.close();
    }
}

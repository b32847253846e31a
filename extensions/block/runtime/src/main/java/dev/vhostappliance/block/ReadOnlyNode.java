package dev.vhostappliance.block;

import java.lang.foreign.MemorySegment;

/** A node seen read-only ({@code raw} with {@code read-only=on} over a writable file node). */
final class ReadOnlyNode implements BlockNode {
    private final String name;
    private final BlockNode under;

    ReadOnlyNode(String name, BlockNode under) {
        this.name = name;
        this.under = under;
    }

    /** The node this one reads through. */
    BlockNode under() {
        return under;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public long size() {
        return under.size();
    }

    @Override
    public boolean readOnly() {
        return true;
    }

    @Override
    public long preadv(MemorySegment iov, int iovcnt, long offset) {
        return under.preadv(iov, iovcnt, offset);
    }

    @Override
    public long pwritev(MemorySegment iov, int iovcnt, long offset) {
        return -dev.vhostappliance.libc.Errno.EPERM;
    }

    @Override
    public boolean flush() {
        return true;
    }

    @Override
    public boolean discard(long offset, long length) {
        return false;
    }

    @Override
    public boolean writeZeroes(long offset, long length, boolean unmap) {
        return false;
    }

    @Override
    public void close() {
        // the underlying node belongs to the graph
    }
}

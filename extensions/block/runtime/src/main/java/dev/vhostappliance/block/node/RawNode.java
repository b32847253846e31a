package dev.vhostappliance.block.node;

import dev.vhostappliance.block.io.IoEngine;
import dev.vhostappliance.block.io.IoEngineKind;
import dev.vhostappliance.block.io.IoRequest;
import dev.vhostappliance.libc.Errno;
import java.lang.foreign.MemorySegment;

/**
 * The {@code raw} format over another node, where it is more than that node: a window of it
 * ({@code offset}/{@code size}) or a read-only view ({@code read-only=on} over a writable file).
 */
public final class RawNode implements BlockNode {
    private final String name;
    private final BlockNode under;
    private final long base;
    /** The window's size, or -1 for "to the end of the node below". */
    private final long windowSize;
    private final boolean readOnly;

    public RawNode(String name, BlockNode under, long offset, long size, boolean readOnly) {
        this.name = name;
        this.under = under;
        this.base = offset;
        this.windowSize = size;
        this.readOnly = readOnly || under.readOnly();
    }

    @Override
    public java.util.List<BlockNode> children() {
        return java.util.List.of(under);
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public long size() {
        return windowSize >= 0 ? windowSize : Math.max(0, under.size() - base);
    }

    @Override
    public long refreshSize() {
        under.refreshSize();
        return size();
    }

    @Override
    public boolean readOnly() {
        return readOnly;
    }

    @Override
    public int memoryAlignment() {
        return under.memoryAlignment();
    }

    @Override
    public boolean waitsOnDevice() {
        return under.waitsOnDevice();
    }

    @Override
    public IoEngineKind engineKind() {
        return under.engineKind();
    }

    @Override
    public int ioFd() {
        return under.ioFd();
    }

    @Override
    public int readSync(MemorySegment buf, long offset) {
        return under.readSync(buf, base + offset);
    }

    @Override
    public int writeSync(MemorySegment buf, long offset) {
        return readOnly ? -Errno.EPERM : under.writeSync(buf, base + offset);
    }

    @Override
    public int flushSync() {
        return readOnly ? 0 : under.flushSync();
    }

    @Override
    public int discardSync(long offset, long length) {
        return readOnly ? 0 : under.discardSync(base + offset, length);
    }

    @Override
    public long blockStatus(long offset, long length, BlockStatus status) {
        return under.blockStatus(base + offset, length, status);
    }

    @Override
    public boolean zeroesFast(boolean unmap) {
        return !readOnly && under.zeroesFast(unmap);
    }

    @Override
    public void read(IoEngine io, IoRequest r, MemorySegment iov, int iovCount, long offset, long length) {
        under.read(io, r, iov, iovCount, base + offset, length);
    }

    @Override
    public void write(IoEngine io, IoRequest r, MemorySegment iov, int iovCount, long offset, long length) {
        if (readOnly) {
            io.completeNow(r, -Errno.EPERM);
        } else {
            under.write(io, r, iov, iovCount, base + offset, length);
        }
    }

    @Override
    public void flush(IoEngine io, IoRequest r) {
        if (readOnly) {
            io.completeNow(r, 0);
        } else {
            under.flush(io, r);
        }
    }

    @Override
    public void discard(IoEngine io, IoRequest r, long offset, long length) {
        if (readOnly) {
            io.completeNow(r, -Errno.EPERM);
        } else {
            under.discard(io, r, base + offset, length);
        }
    }

    @Override
    public void writeZeroes(IoEngine io, IoRequest r, long offset, long length, boolean unmap) {
        if (readOnly) {
            io.completeNow(r, -Errno.EPERM);
        } else {
            under.writeZeroes(io, r, base + offset, length, unmap);
        }
    }

    @Override
    public void close() {
        // the node below belongs to the graph
    }
}

package dev.vhostappliance.block.node;

import dev.vhostappliance.block.io.IoEngine;
import dev.vhostappliance.block.io.IoRequest;
import dev.vhostappliance.block.io.NativeMemory;
import dev.vhostappliance.libc.Errno;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The {@code null-co} protocol driver: a device of the given size that stores nothing. Reads return zeroes
 * with {@code read-zeroes=on} and leave the buffers untouched otherwise (as QEMU's); writes succeed. Every
 * request completes at once through the engine, so benchmarks measure the whole request path but storage.
 */
public final class NullNode implements BlockNode {
    private final String name;
    private final long size;
    private final boolean readZeroes;
    private final boolean readOnly;

    public NullNode(String name, long size, boolean readZeroes, boolean readOnly) {
        this.name = name;
        this.size = size;
        this.readZeroes = readZeroes;
        this.readOnly = readOnly;
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
    public boolean readOnly() {
        return readOnly;
    }

    @Override
    public int readSync(MemorySegment buf, long offset) {
        if (readZeroes) {
            buf.fill((byte) 0);
        }
        return 0;
    }

    @Override
    public int writeSync(MemorySegment buf, long offset) {
        return readOnly ? -Errno.EPERM : 0;
    }

    /** As QEMU's null-co: data, known to be zeroes with read-zeroes. */
    @Override
    public long blockStatus(long offset, long length, BlockStatus status) {
        return status.set(false, readZeroes, 1, length);
    }

    @Override
    public boolean zeroesFast(boolean unmap) {
        return true;
    }

    @Override
    public void read(IoEngine io, IoRequest r, MemorySegment iov, int iovCount, long offset, long length) {
        if (readZeroes) {
            for (int i = 0; i < iovCount; i++) {
                long base = iov.get(ValueLayout.JAVA_LONG, 16L * i);
                long len = iov.get(ValueLayout.JAVA_LONG, 16L * i + 8);
                NativeMemory.zero(base, len);
            }
        }
        io.completeNow(r, 0);
    }

    @Override
    public void write(IoEngine io, IoRequest r, MemorySegment iov, int iovCount, long offset, long length) {
        io.completeNow(r, 0);
    }

    @Override
    public void flush(IoEngine io, IoRequest r) {
        io.completeNow(r, 0);
    }

    @Override
    public void discard(IoEngine io, IoRequest r, long offset, long length) {
        io.completeNow(r, 0);
    }

    @Override
    public void writeZeroes(IoEngine io, IoRequest r, long offset, long length, boolean unmap) {
        io.completeNow(r, 0);
    }

    @Override
    public void close() {
    }
}

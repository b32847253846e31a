package dev.vhostappliance.block;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The {@code null-co} protocol driver: a device of the given size that stores nothing. Reads return zeroes
 * with {@code read-zeroes=on} and leave the buffers untouched otherwise (as QEMU's); writes succeed. For
 * benchmarks of the request path without storage.
 */
final class NullNode implements BlockNode {
    private final String name;
    private final long size;
    private final boolean readZeroes;
    private final boolean readOnly;

    NullNode(String name, long size, boolean readZeroes, boolean readOnly) {
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
    public long preadv(MemorySegment iov, int iovcnt, long offset) {
        long total = 0;
        for (int i = 0; i < iovcnt; i++) {
            long base = iov.get(ValueLayout.JAVA_LONG, 16L * i);
            long len = iov.get(ValueLayout.JAVA_LONG, 16L * i + 8);
            if (readZeroes) {
                MemorySegment.ofAddress(base).reinterpret(len).fill((byte) 0);
            }
            total += len;
        }
        return total;
    }

    @Override
    public long pwritev(MemorySegment iov, int iovcnt, long offset) {
        long total = 0;
        for (int i = 0; i < iovcnt; i++) {
            total += iov.get(ValueLayout.JAVA_LONG, 16L * i + 8);
        }
        return total;
    }

    @Override
    public boolean flush() {
        return true;
    }

    @Override
    public boolean discard(long offset, long length) {
        return true;
    }

    @Override
    public boolean writeZeroes(long offset, long length, boolean unmap) {
        return true;
    }

    @Override
    public void close() {
    }
}

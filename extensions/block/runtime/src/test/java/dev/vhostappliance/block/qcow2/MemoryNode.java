package dev.vhostappliance.block.qcow2;

import dev.vhostappliance.block.io.IoEngine;
import dev.vhostappliance.block.io.IoRequest;
import dev.vhostappliance.libc.Errno;
import dev.vhostappliance.block.node.BlockNode;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * A file node over a byte array, for the fuzz target and hostile images: reads past the end are zeroes,
 * writes may grow it only up to a limit (a hostile image must never make us write far outside it).
 */
final class MemoryNode implements BlockNode {
    byte[] bytes;
    private final long growLimit;
    int writesPastLimit;

    MemoryNode(byte[] bytes, long growLimit) {
        this.bytes = bytes;
        this.growLimit = growLimit;
    }

    @Override
    public String name() {
        return "memory";
    }

    @Override
    public long size() {
        return bytes.length;
    }

    @Override
    public boolean readOnly() {
        return false;
    }

    @Override
    public int readSync(MemorySegment buf, long offset) {
        buf.fill((byte) 0);
        if (offset < bytes.length) {
            int n = (int) Math.min(buf.byteSize(), bytes.length - offset);
            MemorySegment.copy(bytes, (int) offset, buf, ValueLayout.JAVA_BYTE, 0, n);
        }
        return 0;
    }

    @Override
    public int writeSync(MemorySegment buf, long offset) {
        long end = offset + buf.byteSize();
        if (offset < 0 || end > growLimit) {
            writesPastLimit++;
            return -Errno.EFBIG;
        }
        if (end > bytes.length) {
            bytes = Arrays.copyOf(bytes, (int) end);
        }
        MemorySegment.copy(buf, ValueLayout.JAVA_BYTE, 0, bytes, (int) offset, (int) buf.byteSize());
        return 0;
    }

    @Override
    public void read(IoEngine io, IoRequest r, MemorySegment iov, int iovCount, long offset, long length) {
        long pos = 0;
        for (int i = 0; i < iovCount; i++) {
            long base = iov.get(ValueLayout.JAVA_LONG, 16L * i);
            long len = iov.get(ValueLayout.JAVA_LONG, 16L * i + 8);
            readSync(MemorySegment.ofAddress(base).reinterpret(len), offset + pos);
            pos += len;
        }
        io.completeNow(r, 0);
    }

    @Override
    public void write(IoEngine io, IoRequest r, MemorySegment iov, int iovCount, long offset, long length) {
        long pos = 0;
        int rc = 0;
        for (int i = 0; i < iovCount && rc == 0; i++) {
            long base = iov.get(ValueLayout.JAVA_LONG, 16L * i);
            long len = iov.get(ValueLayout.JAVA_LONG, 16L * i + 8);
            rc = writeSync(MemorySegment.ofAddress(base).reinterpret(len), offset + pos);
            pos += len;
        }
        io.completeNow(r, rc);
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

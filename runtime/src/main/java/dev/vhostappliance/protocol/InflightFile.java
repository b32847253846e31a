package dev.vhostappliance.protocol;

import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.NativeCallException;
import dev.vhostappliance.virtqueue.InflightRegion;
import java.lang.foreign.MemorySegment;

/**
 * The shared inflight buffer of a connection: created by GET_INFLIGHT_FD (a memfd the frontend keeps) or
 * handed back by SET_INFLIGHT_FD after a backend restart. Holds one {@link InflightRegion} per queue.
 */
final class InflightFile implements AutoCloseable {
    final int fd;
    final int numQueues;
    final int queueSize;
    final long size;
    private final MemorySegment mapping;
    private final long mapAddress;
    private final long mapLength;

    private InflightFile(int fd, int numQueues, int queueSize, long size, MemorySegment base, long offset) {
        this.fd = fd;
        this.mapAddress = base.address();
        this.mapLength = offset + size;
        this.numQueues = numQueues;
        this.queueSize = queueSize;
        this.size = size;
        this.mapping = base.reinterpret(mapLength).asSlice(offset, size);
    }

    static long bytesFor(int numQueues, int queueSize) {
        return numQueues * InflightRegion.queueRegionBytes(queueSize);
    }

    /** A fresh zeroed buffer in a new memfd. */
    static InflightFile create(int numQueues, int queueSize) throws NativeCallException {
        long size = bytesFor(numQueues, queueSize);
        int fd = LibC.memfdCreate("vhost-inflight", LibC.MFD_CLOEXEC | LibC.MFD_ALLOW_SEALING);
        try {
            LibC.ftruncate(fd, size);
            return map(fd, numQueues, queueSize, size, 0);
        } catch (NativeCallException | RuntimeException e) {
            LibC.close(fd);
            throw e;
        }
    }

    /** Maps a buffer the frontend handed back; the fd must really hold offset + size bytes. */
    static InflightFile map(int fd, int numQueues, int queueSize, long size, long offset) throws NativeCallException {
        long mapLen = offset + size;
        MemorySegment base = LibC.mmap(mapLen, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd, 0);
        return new InflightFile(fd, numQueues, queueSize, size, base, offset);
    }

    /** The region of queue {@code index}, or null if this buffer does not cover it. */
    InflightRegion region(int index, int num) {
        if (index >= numQueues || num != queueSize) {
            return null;
        }
        long per = InflightRegion.queueRegionBytes(queueSize);
        return new InflightRegion(mapping.asSlice(index * per, per), queueSize);
    }

    @Override
    public void close() {
        LibC.munmap(mapAddress, mapLength);
        LibC.close(fd);
    }
}

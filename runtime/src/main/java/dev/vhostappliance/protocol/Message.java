package dev.vhostappliance.protocol;

import dev.vhostappliance.libc.LibC;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * One vhost-user message: the 12-byte header {u32 request; u32 flags; u32 size}, the payload and the file
 * descriptors that came with it. Reused for every message of a connection. Payload accessors are bounds
 * checked against {@link #size()} so a short message can never be read past its end.
 */
public final class Message {
    public static final int HEADER_SIZE = 12;
    /** Larger than any message this backend accepts (the biggest is SET_MEM_TABLE with 8 regions, 264 bytes). */
    public static final int MAX_PAYLOAD = 4096;
    /** VHOST_MEMORY_BASELINE_NREGIONS: the most fds one message legitimately carries. */
    public static final int MAX_FDS = 8;
    public static final int VERSION = 0x1;
    public static final int FLAG_REPLY = 0x4;
    public static final int FLAG_NEED_REPLY = 0x8;

    static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    final MemorySegment buffer;
    final int[] fds = new int[MAX_FDS];
    int fdCount;
    /** More fds arrived than {@link #MAX_FDS} (the kernel dropped the rest): never a valid message. */
    boolean fdsTruncated;

    Message(MemorySegment buffer) {
        this.buffer = buffer;
    }

    public int request() {
        return buffer.get(U32, 0);
    }

    public int flags() {
        return buffer.get(U32, 4);
    }

    public int size() {
        return buffer.get(U32, 8);
    }

    public boolean needsReply() {
        return (flags() & FLAG_NEED_REPLY) != 0;
    }

    public int fdCount() {
        return fdCount;
    }

    public int fd(int i) {
        return fds[i];
    }

    /** Takes fd i out of the message: the caller owns it and it will not be closed with the message. */
    public int takeFd(int i) {
        int fd = fds[i];
        fds[i] = -1;
        return fd;
    }

    /** Closes every fd the handler did not take. */
    public void closeFds() {
        for (int i = 0; i < fdCount; i++) {
            if (fds[i] >= 0) {
                LibC.close(fds[i]);
                fds[i] = -1;
            }
        }
        fdCount = 0;
    }

    private void check(long offset, long width) {
        if (offset < 0 || offset + width > size()) {
            throw new IndexOutOfBoundsException("payload read at " + offset + "+" + width + " beyond size " + size());
        }
    }

    public int u32(long offset) {
        check(offset, 4);
        return buffer.get(U32, HEADER_SIZE + offset);
    }

    public long u64(long offset) {
        check(offset, 8);
        return buffer.get(U64, HEADER_SIZE + offset);
    }

    public MemorySegment payload() {
        return buffer.asSlice(HEADER_SIZE, size());
    }

    /** Sets the header for a message to send (test frontends and the backend request channel). */
    public void setHeader(int request, int flags, int payloadSize) {
        buffer.set(U32, 0, request);
        buffer.set(U32, 4, flags);
        buffer.set(U32, 8, payloadSize);
    }

    public void setU32(long offset, int value) {
        putU32(offset, value);
    }

    public void setU64(long offset, long value) {
        putU64(offset, value);
    }

    public void setBytes(long offset, byte[] data) {
        MemorySegment.copy(data, 0, buffer, ValueLayout.JAVA_BYTE, HEADER_SIZE + offset, data.length);
    }

    public byte[] bytes(long offset, int length) {
        check(offset, length);
        byte[] out = new byte[length];
        MemorySegment.copy(buffer, ValueLayout.JAVA_BYTE, HEADER_SIZE + offset, out, 0, length);
        return out;
    }

    // Reply construction: request kept, flags = version | reply, payload written by the caller.

    void beginReply(int payloadSize) {
        buffer.set(U32, 4, VERSION | FLAG_REPLY);
        buffer.set(U32, 8, payloadSize);
    }

    void putU32(long offset, int value) {
        buffer.set(U32, HEADER_SIZE + offset, value);
    }

    void putU64(long offset, long value) {
        buffer.set(U64, HEADER_SIZE + offset, value);
    }
}

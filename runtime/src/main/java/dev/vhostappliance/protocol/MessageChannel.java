package dev.vhostappliance.protocol;

import dev.vhostappliance.libc.Errno;
import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.NativeCallException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * vhost-user framing on a Unix stream socket: messages in and out with their file descriptors
 * (SCM_RIGHTS). All native buffers are allocated once per channel. At most {@link Message#MAX_FDS} fds are
 * accepted per message; the kernel discards (closes) any beyond that and the message is marked truncated.
 */
public final class MessageChannel implements AutoCloseable {
    private static final int MSGHDR_SIZE = 56;
    private static final int CMSG_HDR = 16;
    private static final int CONTROL_SIZE = CMSG_HDR + 4 * Message.MAX_FDS;
    /** Oversized payloads up to this are drained and answered with an error; beyond it the frontend is dropped. */
    private static final int MAX_DRAIN = 64 * 1024;

    private final int fd;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment msghdr = arena.allocate(MSGHDR_SIZE, 8);
    private final MemorySegment iov = arena.allocate(16, 8);
    private final MemorySegment control = arena.allocate(CONTROL_SIZE, 8);
    private final Message message = new Message(arena.allocate(Message.HEADER_SIZE + Message.MAX_PAYLOAD, 8));
    private final MemorySegment scratch = arena.allocate(4096, 8);

    public MessageChannel(int fd) {
        this.fd = fd;
        message.fdCount = 0;
    }

    public int fd() {
        return fd;
    }

    public Message message() {
        return message;
    }

    /**
     * Reads the next message into {@link #message()}; false on orderly disconnect. A payload larger than
     * {@link Message#MAX_PAYLOAD} is drained and reported as {@link OversizedMessageException}.
     */
    public boolean receive() throws NativeCallException, ProtocolException, OversizedMessageException {
        Message m = message;
        m.fdCount = 0;
        m.fdsTruncated = false;
        MemorySegment buf = m.buffer;
        iov.set(ValueLayout.ADDRESS, 0, buf);
        iov.set(ValueLayout.JAVA_LONG, 8, Message.HEADER_SIZE);
        msghdr.fill((byte) 0);
        msghdr.set(ValueLayout.ADDRESS, 16, iov);
        msghdr.set(ValueLayout.JAVA_LONG, 24, 1);
        msghdr.set(ValueLayout.ADDRESS, 32, control);
        msghdr.set(ValueLayout.JAVA_LONG, 40, CONTROL_SIZE);
        long n;
        do {
            n = LibC.rawRecvmsg(fd, msghdr, LibC.MSG_CMSG_CLOEXEC);
        } while (n == -Errno.EINTR);
        if (n == 0 || n == -Errno.ECONNRESET) {
            return false;
        }
        if (n < 0) {
            throw new NativeCallException("recvmsg", (int) -n);
        }
        collectFds(m);
        if (n < Message.HEADER_SIZE && !readFully(buf.asSlice(n, Message.HEADER_SIZE - n))) {
            m.closeFds();
            throw new ProtocolException("frontend closed the connection inside a message header");
        }
        long size = Integer.toUnsignedLong(m.size());
        if (size > Message.MAX_PAYLOAD) {
            if (size > MAX_DRAIN || !drain(size)) {
                m.closeFds();
                throw new ProtocolException("message " + VhostUserRequest.name(m.request()) + " claims a payload of "
                        + size + " bytes");
            }
            throw new OversizedMessageException(size);
        }
        if (size > 0 && !readFully(buf.asSlice(Message.HEADER_SIZE, size))) {
            m.closeFds();
            throw new ProtocolException("frontend closed the connection inside a message payload");
        }
        return true;
    }

    private void collectFds(Message m) {
        long controlLen = msghdr.get(ValueLayout.JAVA_LONG, 40);
        int flags = msghdr.get(ValueLayout.JAVA_INT, 48);
        if ((flags & LibC.MSG_CTRUNC) != 0) {
            m.fdsTruncated = true;
        }
        long off = 0;
        while (off + CMSG_HDR <= controlLen) {
            long len = control.get(ValueLayout.JAVA_LONG, off);
            int level = control.get(ValueLayout.JAVA_INT, off + 8);
            int type = control.get(ValueLayout.JAVA_INT, off + 12);
            if (len < CMSG_HDR || off + len > controlLen) {
                break;
            }
            if (level == LibC.SOL_SOCKET && type == LibC.SCM_RIGHTS) {
                int count = (int) ((len - CMSG_HDR) / 4);
                for (int i = 0; i < count; i++) {
                    int received = control.get(ValueLayout.JAVA_INT, off + CMSG_HDR + 4L * i);
                    if (m.fdCount < Message.MAX_FDS) {
                        m.fds[m.fdCount++] = received;
                    } else {
                        LibC.close(received);
                        m.fdsTruncated = true;
                    }
                }
            }
            off += (len + 7) & ~7L;
        }
    }

    private boolean readFully(MemorySegment dst) throws NativeCallException {
        long done = 0;
        while (done < dst.byteSize()) {
            long n = LibC.rawRead(fd, dst.asSlice(done), dst.byteSize() - done);
            if (n == -Errno.EINTR) {
                continue;
            }
            if (n == 0 || n == -Errno.ECONNRESET) {
                return false;
            }
            if (n < 0) {
                throw new NativeCallException("read", (int) -n);
            }
            done += n;
        }
        return true;
    }

    private boolean drain(long size) throws NativeCallException {
        long left = size;
        while (left > 0) {
            long chunk = Math.min(left, scratch.byteSize());
            if (!readFully(scratch.asSlice(0, chunk))) {
                return false;
            }
            left -= chunk;
        }
        return true;
    }

    /** Sends the message buffer as it stands (header + size bytes), with optional fds. */
    public void send(int... fds) throws NativeCallException {
        send(message, fds);
    }

    void send(Message m, int... fds) throws NativeCallException {
        long total = Message.HEADER_SIZE + Integer.toUnsignedLong(m.size());
        iov.set(ValueLayout.ADDRESS, 0, m.buffer);
        iov.set(ValueLayout.JAVA_LONG, 8, total);
        msghdr.fill((byte) 0);
        msghdr.set(ValueLayout.ADDRESS, 16, iov);
        msghdr.set(ValueLayout.JAVA_LONG, 24, 1);
        if (fds.length > 0) {
            if (fds.length > Message.MAX_FDS) {
                throw new IllegalArgumentException("too many fds");
            }
            long len = CMSG_HDR + 4L * fds.length;
            control.set(ValueLayout.JAVA_LONG, 0, len);
            control.set(ValueLayout.JAVA_INT, 8, LibC.SOL_SOCKET);
            control.set(ValueLayout.JAVA_INT, 12, LibC.SCM_RIGHTS);
            for (int i = 0; i < fds.length; i++) {
                control.set(ValueLayout.JAVA_INT, CMSG_HDR + 4L * i, fds[i]);
            }
            msghdr.set(ValueLayout.ADDRESS, 32, control);
            msghdr.set(ValueLayout.JAVA_LONG, 40, (len + 7) & ~7L);
        }
        long sent = 0;
        while (true) {
            long n = LibC.rawSendmsg(fd, msghdr, LibC.MSG_NOSIGNAL);
            if (n == -Errno.EINTR) {
                continue;
            }
            if (n < 0) {
                throw new NativeCallException("sendmsg", (int) -n);
            }
            sent += n;
            if (sent >= total) {
                return;
            }
            // Partial write (rare on Unix sockets): send the rest without fds.
            iov.set(ValueLayout.ADDRESS, 0, m.buffer.asSlice(sent));
            iov.set(ValueLayout.JAVA_LONG, 8, total - sent);
            msghdr.set(ValueLayout.ADDRESS, 32, MemorySegment.NULL);
            msghdr.set(ValueLayout.JAVA_LONG, 40, 0);
        }
    }

    @Override
    public void close() {
        message.closeFds();
        arena.close();
    }
}

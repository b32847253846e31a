package dev.vhostappliance.block.export.nbd;

import dev.vhostappliance.block.io.NativeMemory;
import dev.vhostappliance.libc.Errno;
import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.server.Poll;
import dev.vhostappliance.server.Wakeup;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * One client's connection as a byte stream: a non-blocking socket the connection's thread waits on together
 * with its {@link Wakeup} (the server stopping, or the export removed hard). Reads take what has arrived;
 * writes go out whole, waiting for the socket where the client reads slowly. Raw system calls without errno
 * capture: the transmission path allocates nothing.
 */
class NbdSocket implements AutoCloseable {
    private static final boolean AARCH64 = "aarch64".equals(System.getProperty("os.arch"));
    private static final long SYS_READ = AARCH64 ? 63 : 0;
    private static final long SYS_SENDMSG = AARCH64 ? 211 : 46;

    private final int fd;
    private final Wakeup kill;
    private final Poll poll = new Poll(2);
    /** For {@link #writeFully}: a msghdr and one iovec (the handshake's replies). */
    private final MemorySegment oneMsg = Arena.ofAuto().allocate(56 + 16, 8);

    /** The same connection, for a transport layered on it (TLS). */
    NbdSocket(NbdSocket plain) {
        this(plain.fd, plain.kill);
    }

    NbdSocket(int fd, Wakeup kill) {
        this.fd = fd;
        this.kill = kill;
    }

    final int fd() {
        return fd;
    }

    /** True if bytes wait in this process (decrypted TLS data) that poll on the socket would not announce. */
    boolean buffered() {
        return false;
    }

    final Wakeup kill() {
        return kill;
    }

    /** Bytes read into [address, address+length): at least 1, 0 if none have arrived, -1 at the end. */
    long readSome(long address, long length) throws ConnectionClosedException {
        long n = LibC.syscallHot(SYS_READ, fd, address, length, 0, 0, 0);
        if (n > 0) {
            return n;
        }
        if (n == 0) {
            return -1;
        }
        if (n == -Errno.EAGAIN || n == -Errno.EINTR) {
            return 0;
        }
        throw new ConnectionClosedException("read: " + Errno.describe((int) -n));
    }

    /** Reads exactly length bytes into buf at offset, waiting until deadline (System.nanoTime()). */
    final void readFully(MemorySegment buf, long offset, long length, long deadline) throws ConnectionClosedException {
        long done = 0;
        while (done < length) {
            long n = readSome(buf.address() + offset + done, length - done);
            if (n < 0) {
                throw new ConnectionClosedException("the client closed the connection");
            }
            if (n == 0) {
                await(LibC.POLLIN, deadline);
            }
            done += n;
        }
    }

    /** Sends length bytes of buf (handshake replies). */
    final void writeFully(MemorySegment buf, long length) throws ConnectionClosedException {
        MemorySegment iov = oneMsg.asSlice(56, 16);
        iov.set(ValueLayout.JAVA_LONG, 0, buf.address());
        iov.set(ValueLayout.JAVA_LONG, 8, length);
        sendAll(oneMsg.asSlice(0, 56), iov, 1, length);
    }

    /** Sends the iovecs a msghdr names, all of them: partial sends are continued (the iovecs are consumed). */
    void sendAll(MemorySegment msghdr, MemorySegment iov, int count, long bytes) throws ConnectionClosedException {
        int first = 0;
        long left = bytes;
        while (left > 0) {
            msghdr.set(ValueLayout.JAVA_LONG, 16, iov.address() + 16L * first);
            msghdr.set(ValueLayout.JAVA_LONG, 24, count - first);
            long n = LibC.syscallHot(SYS_SENDMSG, fd, msghdr.address(), LibC.MSG_NOSIGNAL, 0, 0, 0);
            if (n == -Errno.EAGAIN || n == -Errno.EINTR) {
                await(LibC.POLLOUT, Long.MAX_VALUE);
                continue;
            }
            if (n < 0) {
                throw new ConnectionClosedException("send: " + Errno.describe((int) -n));
            }
            left -= n;
            first = NativeMemory.consumeIovecs(iov, first, count, n);
        }
    }

    /** Waits until the socket is ready for events, the kill wakeup fires (thrown), or deadline passes (thrown). */
    final void await(short events, long deadline) throws ConnectionClosedException {
        while (true) {
            if (kill.isSignalled()) {
                throw new ConnectionClosedException("the server stops this connection");
            }
            long now = System.nanoTime();
            if (deadline != Long.MAX_VALUE && now - deadline >= 0) {
                throw new ConnectionClosedException("the client took too long");
            }
            int timeout = deadline == Long.MAX_VALUE ? -1 : (int) Math.max(1, (deadline - now) / 1_000_000);
            poll.clear();
            int s = poll.add(fd, events);
            poll.add(kill.fd());
            try {
                poll.await(timeout);
            } catch (dev.vhostappliance.libc.NativeCallException e) {
                throw new ConnectionClosedException(e.getMessage());
            }
            if (poll.ready(s) && !kill.isSignalled()) {
                return;
            }
        }
    }

    @Override
    public void close() {
        LibC.close(fd);
    }
}

package dev.vhostappliance.block.export.nbd;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLException;

/**
 * A connection after NBD_OPT_STARTTLS: the same socket, its bytes through a JSSE {@link SSLEngine}. Reads
 * decrypt what has arrived (whole records; the rest waits in {@link #buffered()} or the kernel); writes
 * encrypt and send every byte before returning. JSSE allocates as it works: the TLS path is not the
 * allocation-free one.
 */
final class TlsNbdSocket extends NbdSocket {
    private static final int RECORD_HEADER = 5;
    private final SSLEngine engine;
    /** Made and closed on the connection's thread. */
    private final Arena arena = Arena.ofConfined();
    private final ByteBuffer netIn;
    private final ByteBuffer netOut;
    private final ByteBuffer appIn;
    private final MemorySegment appInSegment;
    private final long netInAddress;
    private final MemorySegment netOutSegment;
    private final MemorySegment msg = arena.allocate(56 + 16, 8);
    private static final ByteBuffer EMPTY = ByteBuffer.allocate(0);

    TlsNbdSocket(NbdSocket plain, SSLEngine engine) {
        super(plain);
        this.engine = engine;
        int packet = engine.getSession().getPacketBufferSize();
        int app = engine.getSession().getApplicationBufferSize();
        MemorySegment in = arena.allocate(2L * packet, 8);
        netOutSegment = arena.allocate(2L * packet, 8);
        netIn = in.asByteBuffer();
        netInAddress = in.address();
        netOut = netOutSegment.asByteBuffer();
        appInSegment = arena.allocate(2L * app, 8);
        appIn = appInSegment.asByteBuffer();
    }

    SSLEngine engine() {
        return engine;
    }

    /** The TLS handshake, before deadline; a client that fails it (no or a wrong certificate) is closed. */
    void handshake(long deadline) throws ConnectionClosedException {
        try {
            engine.beginHandshake();
            while (true) {
                switch (engine.getHandshakeStatus()) {
                    case NEED_WRAP -> wrap(EMPTY);
                    case NEED_UNWRAP, NEED_UNWRAP_AGAIN -> {
                        netIn.flip();
                        SSLEngineResult r = engine.unwrap(netIn, appIn);
                        netIn.compact();
                        if (r.getStatus() == SSLEngineResult.Status.BUFFER_UNDERFLOW) {
                            fill(deadline);
                        } else if (r.getStatus() == SSLEngineResult.Status.CLOSED) {
                            throw new ConnectionClosedException("the client closed TLS during its handshake");
                        }
                    }
                    case NEED_TASK -> {
                        for (Runnable task = engine.getDelegatedTask(); task != null; task = engine.getDelegatedTask()) {
                            task.run();
                        }
                    }
                    default -> {
                        return;
                    }
                }
            }
        } catch (SSLException e) {
            flushQuietly(); // the alert that tells the client why
            throw new ConnectionClosedException("TLS handshake failed: " + e.getMessage());
        }
    }

    /** Reads raw bytes into netIn, waiting until deadline for some. */
    private void fill(long deadline) throws ConnectionClosedException {
        while (true) {
            long n = super.readSome(netInAddress + netIn.position(), netIn.remaining());
            if (n < 0) {
                throw new ConnectionClosedException("the client closed the connection");
            }
            if (n > 0) {
                netIn.position(netIn.position() + (int) n);
                return;
            }
            await(dev.vhostappliance.libc.LibC.POLLIN, deadline);
        }
    }

    @Override
    long readSome(long address, long length) throws ConnectionClosedException {
        try {
            while (true) {
                if (appIn.position() > 0) {
                    appIn.flip();
                    int n = (int) Math.min(length, appIn.remaining());
                    MemorySegment.copy(appInSegment, appIn.position(), MemorySegment.ofAddress(address).reinterpret(n), 0, n);
                    appIn.position(appIn.position() + n);
                    appIn.compact();
                    return n;
                }
                if (recordWaiting()) {
                    netIn.flip();
                    SSLEngineResult r = engine.unwrap(netIn, appIn);
                    netIn.compact();
                    if (r.getStatus() == SSLEngineResult.Status.CLOSED) {
                        return -1;
                    }
                    continue;
                }
                long n = super.readSome(netInAddress + netIn.position(), netIn.remaining());
                if (n <= 0) {
                    return n;
                }
                netIn.position(netIn.position() + (int) n);
            }
        } catch (SSLException e) {
            throw new ConnectionClosedException("TLS: " + e.getMessage());
        }
    }

    /** A whole TLS record is in netIn (the engine can decrypt it without more bytes). */
    private boolean recordWaiting() {
        int p = netIn.position();
        if (p < RECORD_HEADER) {
            return false;
        }
        int length = (netIn.get(3) & 0xff) << 8 | netIn.get(4) & 0xff;
        return p >= RECORD_HEADER + length;
    }

    @Override
    boolean buffered() {
        return appIn.position() > 0 || recordWaiting();
    }

    @Override
    void sendAll(MemorySegment msghdr, MemorySegment iov, int count, long bytes) throws ConnectionClosedException {
        try {
            for (int i = 0; i < count; i++) {
                long base = iov.get(ValueLayout.JAVA_LONG, 16L * i);
                long len = iov.get(ValueLayout.JAVA_LONG, 16L * i + 8);
                ByteBuffer src = MemorySegment.ofAddress(base).reinterpret(len).asByteBuffer();
                while (src.hasRemaining()) {
                    wrap(src);
                }
            }
        } catch (SSLException e) {
            throw new ConnectionClosedException("TLS: " + e.getMessage());
        }
    }

    /** Encrypts (some of) src into one record and sends it. */
    private void wrap(ByteBuffer src) throws SSLException, ConnectionClosedException {
        netOut.clear();
        SSLEngineResult r = engine.wrap(src, netOut);
        if (r.getStatus() == SSLEngineResult.Status.CLOSED && r.bytesProduced() == 0) {
            throw new ConnectionClosedException("TLS closed");
        }
        flush();
    }

    private void flush() throws ConnectionClosedException {
        int n = netOut.position();
        if (n == 0) {
            return;
        }
        MemorySegment iov = msg.asSlice(56, 16);
        iov.set(ValueLayout.JAVA_LONG, 0, netOutSegment.address());
        iov.set(ValueLayout.JAVA_LONG, 8, n);
        super.sendAll(msg.asSlice(0, 56), iov, 1, n);
        netOut.clear();
    }

    private void flushQuietly() {
        try {
            while (engine.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_WRAP) {
                netOut.clear();
                engine.wrap(EMPTY, netOut);
                flush();
            }
        } catch (SSLException | ConnectionClosedException e) {
            // the client is gone anyway
        }
    }

    /** Frees the TLS buffers; the socket itself is the plain connection's to close. */
    @Override
    public void close() {
        arena.close();
    }
}

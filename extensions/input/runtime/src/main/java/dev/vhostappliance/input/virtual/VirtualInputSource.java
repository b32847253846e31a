package dev.vhostappliance.input.virtual;

import dev.vhostappliance.input.InputIdentity;
import dev.vhostappliance.input.InputSource;
import dev.vhostappliance.input.VirtioInput;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import org.jboss.logging.Logger;

/**
 * An input device that exists only in configuration: its identity is given, its events come from programs
 * connected to a Unix socket (JSON lines or raw struct input_event records, see {@link EventFormat}). Each
 * client's events are handed on in whole batches (up to SYN_REPORT), so two clients never interleave inside
 * a batch. Status events from the guest (LEDs) go to every client; a client that does not read them loses
 * them (bounded per client) rather than stalling the device.
 */
public final class VirtualInputSource implements InputSource {
    private static final Logger LOG = Logger.getLogger(VirtualInputSource.class);
    private static final int MAX_LINE = 4096;
    private static final int MAX_BATCH = 1024;
    private static final int STATUS_BACKLOG = 256;

    private final InputIdentity identity;
    private final Path socketPath;
    private final EventFormat format;
    private final ServerSocketChannel server;
    private final Set<Client> clients = ConcurrentHashMap.newKeySet();
    private final Object sinkLock = new Object();
    private volatile boolean closed;
    private Thread acceptor;

    /** Binds the event socket now (a stale socket file is replaced, a live one refused). */
    public VirtualInputSource(InputIdentity identity, Path socketPath, EventFormat format) throws IOException {
        this.identity = identity;
        this.socketPath = socketPath;
        this.format = format;
        this.server = bind(socketPath);
    }

    static ServerSocketChannel bind(Path path) throws IOException {
        UnixDomainSocketAddress addr = UnixDomainSocketAddress.of(path);
        if (Files.exists(path, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            boolean live;
            try (SocketChannel probe = SocketChannel.open(addr)) {
                live = true;
            } catch (IOException e) {
                live = false;
            }
            if (live) {
                throw new IOException("event socket " + path + " is in use by another process");
            }
            Files.deleteIfExists(path); // nobody listens: a stale socket from an earlier run
        }
        ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            Path bound = dev.vhostappliance.server.SocketPaths.bindingPath(path);
            s.bind(UnixDomainSocketAddress.of(bound), 16); // a backlog: several programs may connect at once
            dev.vhostappliance.server.SocketPaths.publish(bound, path);
        } catch (IOException e) {
            s.close();
            throw new IOException("cannot listen on event socket " + path + ": " + e.getMessage(), e);
        }
        return s;
    }

    @Override
    public InputIdentity identity() {
        return identity;
    }

    public Path socketPath() {
        return socketPath;
    }

    @Override
    public void start(EventSink sink) {
        acceptor = Thread.ofPlatform().name("input-events").daemon(true).start(() -> {
            while (!closed) {
                try {
                    SocketChannel c = server.accept();
                    Client client = new Client(c);
                    clients.add(client);
                    Thread.ofVirtual().name("input-client").start(() -> client.read(sink));
                    Thread.ofVirtual().name("input-status").start(client::writeStatus);
                } catch (IOException e) {
                    if (!closed) {
                        LOG.warnf("event socket %s: %s", socketPath, e.getMessage());
                    }
                    return;
                }
            }
        });
    }

    @Override
    public void statusEvent(int type, int code, int value) {
        for (Client c : clients) {
            c.offerStatus(type, code, value);
        }
    }

    @Override
    public void close() {
        closed = true;
        try {
            server.close();
        } catch (IOException e) {
            // closing anyway
        }
        for (Client c : clients) {
            c.close();
        }
        try {
            Files.deleteIfExists(socketPath);
        } catch (IOException e) {
            LOG.debugf("event socket %s not removed: %s", socketPath, e.getMessage());
        }
    }

    /** One connected program. */
    private final class Client {
        private final SocketChannel channel;
        private final BlockingQueue<long[]> status = new ArrayBlockingQueue<>(STATUS_BACKLOG);
        private final int[] batch = new int[MAX_BATCH * 3];
        private int batchLen;
        private boolean overflowed;

        Client(SocketChannel channel) {
            this.channel = channel;
        }

        void read(EventSink sink) {
            try (channel) {
                if (format == EventFormat.JSON) {
                    readLines(sink);
                } else {
                    readRecords(sink);
                }
            } catch (IOException | UncheckedIOException e) {
                LOG.debugf("event client gone: %s", e.getMessage());
            } finally {
                clients.remove(this);
                status.offer(new long[0]); // ends the status writer
            }
        }

        private void readLines(EventSink sink) throws IOException {
            ByteBuffer in = ByteBuffer.allocate(MAX_LINE);
            int lineNo = 0;
            while (channel.read(in) >= 0) {
                in.flip();
                int start = 0;
                for (int i = 0; i < in.limit(); i++) {
                    if (in.get(i) == '\n') {
                        lineNo++;
                        String line = new String(in.array(), start, i - start, StandardCharsets.UTF_8);
                        start = i + 1;
                        try {
                            JsonEventLine.parse(line, (t, c, v) -> add(sink, t, c, v));
                        } catch (IllegalArgumentException e) {
                            reply("{\"error\":" + quote("line " + lineNo + ": " + e.getMessage()) + "}\n");
                        }
                    }
                }
                in.position(start);
                in.compact();
                if (!in.hasRemaining()) {
                    reply("{\"error\":" + quote("line " + (lineNo + 1) + " longer than " + MAX_LINE + " bytes") + "}\n");
                    return;
                }
            }
        }

        private void readRecords(EventSink sink) throws IOException {
            ByteBuffer in = ByteBuffer.allocate(24 * 64).order(ByteOrder.nativeOrder());
            while (channel.read(in) >= 0) {
                in.flip();
                while (in.remaining() >= 24) {
                    int p = in.position();
                    add(sink, in.getShort(p + 16) & 0xffff, in.getShort(p + 18) & 0xffff, in.getInt(p + 20));
                    in.position(p + 24);
                }
                in.compact();
            }
        }

        /** Collects a batch; hands it on whole at SYN_REPORT. A batch longer than MAX_BATCH is dropped. */
        private void add(EventSink sink, int type, int code, int value) {
            boolean report = type == VirtioInput.EV_SYN && code == VirtioInput.SYN_REPORT;
            if (!overflowed) {
                if (batchLen == batch.length) {
                    overflowed = true;
                    LOG.warnf("event socket %s: a batch of more than %d events without SYN_REPORT was dropped",
                            socketPath, MAX_BATCH);
                } else {
                    batch[batchLen++] = type;
                    batch[batchLen++] = code;
                    batch[batchLen++] = value;
                }
            }
            if (!report) {
                return;
            }
            if (!overflowed) {
                synchronized (sinkLock) {
                    for (int i = 0; i < batchLen; i += 3) {
                        sink.event(batch[i], batch[i + 1], batch[i + 2]);
                    }
                }
            }
            batchLen = 0;
            overflowed = false;
        }

        void offerStatus(int type, int code, int value) {
            if (!status.offer(new long[] {type, code, value})) {
                LOG.debugf("event client not reading; status event dropped");
            }
        }

        void writeStatus() {
            try {
                while (true) {
                    long[] e = status.take();
                    if (e.length == 0) {
                        return;
                    }
                    if (format == EventFormat.JSON) {
                        reply(JsonEventLine.format((int) e[0], (int) e[1], (int) e[2]));
                    } else {
                        ByteBuffer b = ByteBuffer.allocate(24).order(ByteOrder.nativeOrder());
                        b.putShort(16, (short) e[0]).putShort(18, (short) e[1]).putInt(20, (int) e[2]);
                        synchronized (channel) {
                            while (b.hasRemaining()) {
                                channel.write(b);
                            }
                        }
                    }
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (IOException e) {
                LOG.debugf("event client gone: %s", e.getMessage());
            }
        }

        private void reply(String text) throws IOException {
            ByteBuffer b = ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8));
            synchronized (channel) {
                while (b.hasRemaining()) {
                    channel.write(b);
                }
            }
        }

        void close() {
            try {
                channel.close();
            } catch (IOException e) {
                // closing anyway
            }
        }
    }

    private static String quote(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }
}

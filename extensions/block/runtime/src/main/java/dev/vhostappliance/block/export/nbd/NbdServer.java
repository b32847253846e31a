package dev.vhostappliance.block.export.nbd;

import dev.vhostappliance.block.io.IoEngine;
import dev.vhostappliance.block.node.BlockNode;
import dev.vhostappliance.cli.StartupException;
import dev.vhostappliance.libc.Errno;
import dev.vhostappliance.libc.InetSockets;
import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.NativeCallException;
import dev.vhostappliance.libc.UnixSockets;
import dev.vhostappliance.server.Poll;
import dev.vhostappliance.server.SocketPaths;
import dev.vhostappliance.server.Wakeup;
import java.lang.foreign.Arena;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.jboss.logging.Logger;

/**
 * qemu-storage-daemon's NBD server ({@code --nbd-server}, QMP {@code nbd-server-start}): one listening socket
 * (Unix, TCP or inherited), exports by name, a thread per connection doing the handshake and then the
 * transmission phase on an I/O engine of its own over the export's node. With max-connections reached it
 * stops accepting, as QEMU does: further clients wait in the backlog until one leaves.
 */
public final class NbdServer implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(NbdServer.class);
    /** QEMU's handshake-max-seconds default: a client must choose an export within this. */
    static final long HANDSHAKE_NANOS = 10_000_000_000L;

    private final int listenFd;
    private final Path ownedPath;
    private final String where;
    private final int maxConnections;
    private final Wakeup stop;
    /** Poked when a connection ends, so a full server accepts again. */
    private final Wakeup connectionEnded;
    private final Map<String, NbdExport> exports = new LinkedHashMap<>();
    private final Set<Connection> connections = ConcurrentHashMap.newKeySet();
    private final AtomicInteger connectionNumbers = new AtomicInteger();
    /** Connections that ended in an exception of ours rather than the client's doing (a bug: tests check it). */
    private final AtomicInteger failures = new AtomicInteger();
    private volatile Thread acceptor;
    /** TLS credentials: every client must negotiate TLS (QEMU's tls-creds), or null. */
    private volatile TlsCredentials tls;

    /** One client: its thread's socket, and the export it chose once the handshake is over. */
    private static final class Connection {
        final NbdSocket socket;
        volatile NbdExport export;
        private boolean closed;

        Connection(NbdSocket socket) {
            this.socket = socket;
        }

        /** Asks the connection's thread to end; from any thread, before or after it ended. */
        synchronized void kill() {
            if (!closed) {
                socket.kill().signal();
            }
        }

        /** On the connection's thread, last: no kill() writes to the closed fds (whose numbers may be reused). */
        synchronized void close() {
            closed = true;
            socket.close();
            socket.kill().close();
        }
    }

    private NbdServer(int listenFd, Path ownedPath, String where, int maxConnections) throws StartupException {
        this.listenFd = listenFd;
        this.ownedPath = ownedPath;
        this.where = where;
        this.maxConnections = maxConnections;
        try {
            this.stop = new Wakeup();
            this.connectionEnded = new Wakeup();
        } catch (NativeCallException e) {
            LibC.close(listenFd);
            throw new StartupException("NBD server: " + e.getMessage(), e);
        }
    }

    /** A server on a Unix socket at path (a stale socket file is replaced). */
    public static NbdServer listenUnix(Path path, int maxConnections) throws StartupException {
        return new NbdServer(SocketPaths.listen(path, 16), path, "unix:" + path, maxConnections);
    }

    /** A server on host:port over TCP (port 0: any free port, see {@link #port()}). */
    public static NbdServer listenInet(String host, int port, int maxConnections) throws StartupException {
        try {
            int fd = InetSockets.listen(host, port, 16);
            return new NbdServer(fd, null, "inet:" + host + ":" + InetSockets.port(fd), maxConnections);
        } catch (UnknownHostException e) {
            throw new StartupException("address resolution failed for " + host + ": " + e.getMessage(), e);
        } catch (NativeCallException e) {
            throw new StartupException("Failed to bind socket on " + host + ":" + port + ": " + e.getMessage(), e);
        }
    }

    /** A server on a listening socket the caller's parent made (addr.type=fd). */
    public static NbdServer inherit(int fd, int maxConnections) throws StartupException {
        try {
            if (!UnixSockets.isListening(fd)) {
                throw new StartupException("fd " + fd + " is not a listening socket");
            }
            LibC.fcntl(fd, LibC.F_SETFD, LibC.FD_CLOEXEC);
        } catch (NativeCallException e) {
            throw new StartupException("fd " + fd + " is not a usable socket: " + e.getMessage(), e);
        }
        return new NbdServer(fd, null, "fd:" + fd, maxConnections);
    }

    /** Where the server listens, for messages ({@code inet:HOST:PORT}, {@code unix:PATH}, {@code fd:N}). */
    public String where() {
        return where;
    }

    /** The TCP port (a server on port 0 learns it here); -1 for other sockets. */
    public int port() {
        try {
            return where.startsWith("inet:") ? InetSockets.port(listenFd) : -1;
        } catch (NativeCallException e) {
            return -1;
        }
    }

    /** Connections that failed on our side (an exception, not the client leaving or breaking the protocol). */
    public int failures() {
        return failures.get();
    }

    /** Requires TLS of every client from now on (before {@link #start()}). */
    public void requireTls(TlsCredentials credentials) {
        this.tls = credentials;
    }

    /** Adds an export; its name must be new. */
    public synchronized void add(NbdExport export) throws StartupException {
        if (exports.containsKey(export.name())) {
            throw new StartupException("NBD server already has export named '" + export.name() + "'");
        }
        exports.put(export.name(), export);
    }

    /** The export called name, or null. */
    public synchronized NbdExport export(String name) {
        return exports.get(name);
    }

    public synchronized List<NbdExport> exports() {
        return new ArrayList<>(exports.values());
    }

    /** Connections in the transmission phase on export. */
    public int connectionsTo(NbdExport export) {
        int n = 0;
        for (Connection c : connections) {
            n += c.export == export ? 1 : 0;
        }
        return n;
    }

    /**
     * Removes an export: safe refuses while a client uses it, hard disconnects its clients. New clients no
     * longer find it either way.
     */
    public void remove(NbdExport export, boolean hard) throws StartupException {
        synchronized (this) {
            if (exports.get(export.name()) != export) {
                return;
            }
            if (!hard && connectionsTo(export) > 0) {
                throw new StartupException("export '" + export.name() + "' still in use");
            }
            exports.remove(export.name());
        }
        for (Connection c : connections) {
            if (c.export == export) {
                c.kill();
            }
        }
    }

    /** Accepts clients on a thread of its own until {@link #close()}. */
    public void start() {
        Thread t = new Thread(this::acceptLoop, "nbd-server");
        t.setDaemon(true);
        acceptor = t;
        t.start();
    }

    private void acceptLoop() {
        Poll poll = new Poll(3);
        java.lang.foreign.MemorySegment word = Arena.ofAuto().allocate(8, 8);
        while (!stop.isSignalled()) {
            boolean full = maxConnections > 0 && connections.size() >= maxConnections;
            poll.clear();
            int listenSlot = full ? -1 : poll.add(listenFd);
            poll.add(stop.fd());
            int endedSlot = poll.add(connectionEnded.fd());
            try {
                poll.await(-1);
            } catch (NativeCallException e) {
                LOG.errorf("NBD server %s: %s", where, e.getMessage());
                return;
            }
            if (poll.ready(endedSlot)) {
                connectionEnded.drain(word);
            }
            if (stop.isSignalled() || listenSlot < 0 || !poll.ready(listenSlot)) {
                continue;
            }
            int fd = LibC.rawAccept4(listenFd, LibC.SOCK_CLOEXEC | LibC.SOCK_NONBLOCK);
            if (fd < 0) {
                if (-fd != Errno.EAGAIN && -fd != Errno.EINTR && -fd != Errno.ECONNRESET) {
                    LOG.warnf("NBD server %s: accept: %s", where, Errno.describe(-fd));
                }
                continue;
            }
            serve(fd);
        }
    }

    private void serve(int fd) {
        Wakeup kill;
        try {
            kill = new Wakeup();
        } catch (NativeCallException e) {
            LOG.warnf("NBD server %s: %s", where, e.getMessage());
            LibC.close(fd);
            return;
        }
        InetSockets.noDelay(fd);
        Connection c = new Connection(new NbdSocket(fd, kill));
        connections.add(c);
        Thread t = new Thread(() -> run(c), "nbd-connection-" + connectionNumbers.incrementAndGet());
        t.setDaemon(true);
        t.start();
    }

    private void run(Connection c) {
        NbdHandshake handshake = null;
        try (Arena arena = Arena.ofConfined()) {
            if (stop.isSignalled()) {
                return;
            }
            handshake = new NbdHandshake(c.socket, tls, this::export, this::exports, System.nanoTime() + HANDSHAKE_NANOS, arena);
            NbdSession session = handshake.run();
            NbdExport e = session.export();
            synchronized (this) {
                if (exports.get(e.name()) != e) {
                    return; // removed while the client chose it
                }
                c.export = e;
            }
            e.counters().connections.increment();
            BlockNode node = e.node();
            IoEngine engine = node.engineKind().open(NbdTransmission.MAX_IN_FLIGHT, node.ioFd(), "NBD export '" + e.name() + "'");
            try {
                new NbdTransmission(session.socket(), session, engine, e.counters()).run();
            } finally {
                engine.close();
            }
        } catch (ConnectionClosedException ex) {
            LOG.debugf("NBD connection ended: %s", ex.getMessage());
        } catch (RuntimeException ex) {
            failures.incrementAndGet();
            LOG.warnf(ex, "NBD connection failed");
        } finally {
            if (handshake != null && handshake.socket() != c.socket) {
                handshake.socket().close(); // the TLS layer's buffers
            }
            connections.remove(c);
            c.close();
            connectionEnded.poke();
        }
    }

    /** Stops accepting, disconnects every client, waits (briefly) for their threads, closes the socket. */
    @Override
    public void close() {
        stop.signal();
        for (Connection c : connections) {
            c.kill();
        }
        Thread t = acceptor;
        if (t != null) {
            try {
                t.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (!connections.isEmpty() && System.nanoTime() - deadline < 0) {
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        LibC.close(listenFd);
        if (ownedPath != null) {
            LibC.unlink(ownedPath.toString());
        }
    }
}

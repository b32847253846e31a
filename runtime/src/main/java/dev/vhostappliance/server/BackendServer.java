package dev.vhostappliance.server;

import dev.vhostappliance.cli.StartupException;
import dev.vhostappliance.libc.Errno;
import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.NativeCallException;
import dev.vhostappliance.libc.UnixSockets;
import java.nio.file.Path;
import org.jboss.logging.Logger;

/**
 * The backend's end of the vhost-user socket, in the three shapes QEMU's backends accept:
 * <ul>
 * <li>{@code --socket-path}: listen on a path (a stale socket file nobody listens on is replaced; a live one
 * is an error); one frontend at a time, the next is accepted after a disconnect;</li>
 * <li>{@code --fd} naming a listening socket: the same without owning a path;</li>
 * <li>{@code --fd} naming a connected socket (libvirt's socketpair): serve it, and end when it closes;</li>
 * <li>{@code --client}: connect to a frontend listening on a path (QEMU {@code -chardev socket,server=on}),
 * and with {@code --reconnect=SECONDS} (ChardevSocket {@code reconnect}) keep reconnecting after a failed
 * attempt or a disconnect until stopped.</li>
 * </ul>
 */
public final class BackendServer implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(BackendServer.class);

    private final int fd;
    private final boolean listening;
    private final Path ownedPath;
    /** Client mode: where to connect, and seconds between attempts (0: connect once). */
    private final Path connectPath;
    private final int reconnectSeconds;
    private final Wakeup stop;
    /** The connection being served, so stop() can unblock a protocol thread stuck in a read. */
    private volatile int current = -1;

    private BackendServer(int fd, boolean listening, Path ownedPath) throws NativeCallException {
        this(fd, listening, ownedPath, null, 0);
    }

    private BackendServer(int fd, boolean listening, Path ownedPath, Path connectPath, int reconnectSeconds)
            throws NativeCallException {
        this.fd = fd;
        this.listening = listening;
        this.ownedPath = ownedPath;
        this.connectPath = connectPath;
        this.reconnectSeconds = reconnectSeconds;
        this.stop = new Wakeup();
    }

    /**
     * Client mode. With reconnectSeconds 0 the connection is made now (a failure is a start-up failure) and
     * serving ends when it closes; otherwise connecting is retried every reconnectSeconds, forever.
     */
    public static BackendServer client(Path path, int reconnectSeconds) throws StartupException {
        if (reconnectSeconds < 0) {
            throw new StartupException("--reconnect must be 0 or more seconds, is " + reconnectSeconds);
        }
        try {
            if (reconnectSeconds == 0) {
                int conn = UnixSockets.connect(path.toString());
                if (conn < 0) {
                    throw new StartupException("cannot connect to " + path + ": " + Errno.describe(-conn));
                }
                return new BackendServer(conn, false, null);
            }
            return new BackendServer(-1, false, null, path, reconnectSeconds);
        } catch (NativeCallException e) {
            throw new StartupException("cannot connect to " + path + ": " + e.getMessage(), e);
        } catch (IllegalArgumentException e) {
            throw new StartupException(e.getMessage(), e);
        }
    }

    /** Listens on path, replacing a stale socket file; fails if another process listens there. */
    public static BackendServer listen(Path path) throws StartupException {
        int fd = SocketPaths.listen(path, 1);
        try {
            return new BackendServer(fd, true, path);
        } catch (NativeCallException e) {
            LibC.close(fd);
            LibC.unlink(path.toString());
            throw new StartupException("cannot listen on " + path + ": " + e.getMessage(), e);
        }
    }

    /** Takes over an inherited socket: listening or already connected. */
    public static BackendServer inherit(int fd) throws StartupException {
        if (fd < 0) {
            throw new StartupException("--fd must be a non-negative file descriptor number, is " + fd);
        }
        try {
            boolean listening = UnixSockets.isListening(fd);
            LibC.fcntl(fd, LibC.F_SETFD, LibC.FD_CLOEXEC);
            return new BackendServer(fd, listening, null);
        } catch (NativeCallException e) {
            throw new StartupException("--fd=" + fd + " is not a usable stream socket: " + e.getMessage(), e);
        }
    }

    /** A frontend is connected right now. */
    public boolean hasFrontend() {
        return current >= 0;
    }

    public boolean isListening() {
        return listening;
    }

    /** Asks {@link #serve} to return; safe from any thread. */
    public void stop() {
        stop.signal();
        int conn = current;
        if (conn >= 0) {
            LibC.shutdownQuietly(conn);
        }
    }

    public Wakeup stopSignal() {
        return stop;
    }

    /**
     * Serves frontends until {@link #stop()}; with an inherited connected socket, until it disconnects.
     * A failing connection is logged and, when listening, the next frontend is accepted.
     */
    public void serve(ConnectionHandler handler) throws NativeCallException {
        if (connectPath != null) {
            serveReconnecting(handler);
            return;
        }
        if (!listening) {
            serveOne(handler, fd);
            return;
        }
        Poll poll = new Poll(2);
        while (!stop.isSignalled()) {
            poll.clear();
            int listenSlot = poll.add(fd);
            poll.add(stop.fd());
            poll.await(-1);
            if (stop.isSignalled()) {
                break;
            }
            if (!poll.ready(listenSlot)) {
                continue;
            }
            int conn = LibC.rawAccept4(fd, LibC.SOCK_CLOEXEC);
            if (conn < 0) {
                if (-conn == Errno.EAGAIN || -conn == Errno.EINTR || -conn == Errno.ECONNRESET) {
                    continue;
                }
                throw new NativeCallException("accept4", -conn);
            }
            LOG.debugf("frontend connected (fd %d)", conn);
            try {
                serveOne(handler, conn);
            } finally {
                LibC.close(conn);
            }
            LOG.debugf("frontend disconnected (fd %d)", conn);
        }
    }

    private void serveReconnecting(ConnectionHandler handler) throws NativeCallException {
        Poll poll = new Poll(1);
        boolean reported = false;
        while (!stop.isSignalled()) {
            int conn = UnixSockets.connect(connectPath.toString());
            if (conn >= 0) {
                reported = false;
                LOG.debugf("connected to %s", connectPath);
                try {
                    serveOne(handler, conn);
                } finally {
                    LibC.close(conn);
                }
                continue; // reconnect at once after a disconnect; wait only between failed attempts
            }
            if (!reported) {
                LOG.infof("cannot connect to %s (%s); retrying every %d s", connectPath, Errno.describe(-conn),
                        reconnectSeconds);
                reported = true;
            }
            poll.clear().add(stop.fd());
            poll.await(reconnectSeconds * 1000);
        }
    }

    private void serveOne(ConnectionHandler handler, int conn) {
        current = conn;
        try {
            handler.serve(conn, stop);
        } catch (Exception e) {
            LOG.warnf("frontend connection ended: %s", e.toString());
        } finally {
            current = -1;
        }
    }

    @Override
    public void close() {
        LibC.close(fd);
        if (ownedPath != null) {
            LibC.unlink(ownedPath.toString());
        }
        stop.close();
    }
}

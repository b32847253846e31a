package dev.vhostappliance.server;

import dev.vhostappliance.cli.StartupException;
import dev.vhostappliance.libc.Errno;
import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.NativeCallException;
import dev.vhostappliance.libc.UnixSockets;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.LinkOption;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import org.jboss.logging.Logger;

/**
 * A listening socket's file appears only once the socket listens: bind(2) creates the file before listen(2)
 * makes it accept, and a client that connects in between (a management layer polling for the path, our own
 * tests) gets ECONNREFUSED. So sockets are bound under a temporary name in the same directory and renamed to
 * their path after listen (rename is atomic). Names too long for sun_path are bound directly.
 */
public final class SocketPaths {
    private static final Logger LOG = Logger.getLogger(SocketPaths.class);
    private static final int SUN_PATH_MAX = 107;

    private SocketPaths() {
    }

    /**
     * A listening Unix socket at path: a stale socket file from a process that died is replaced, a live one
     * or any other file is an error; the file appears only once the socket listens.
     */
    public static int listen(Path path, int backlog) throws StartupException {
        String p = path.toString();
        try {
            BasicFileAttributes attrs = Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            if (!attrs.isOther()) {
                throw new StartupException("socket path " + p + " exists and is not a socket");
            }
            int probe = UnixSockets.connect(p);
            if (probe >= 0) {
                LibC.close(probe);
                throw new StartupException("socket path " + p + " is in use by a running backend");
            }
            if (-probe != Errno.ECONNREFUSED) {
                throw new StartupException("socket path " + p + " exists and cannot be checked: " + Errno.describe(-probe));
            }
            LOG.infof("replacing stale socket %s", p);
            LibC.unlink(p);
        } catch (java.nio.file.NoSuchFileException e) {
            // the normal case
        } catch (IOException e) {
            throw new StartupException("cannot check socket path " + p + ": " + e.getMessage(), e);
        }
        Path parent = path.toAbsolutePath().getParent();
        if (parent != null && !Files.isDirectory(parent)) {
            throw new StartupException("directory of socket path " + p + " does not exist");
        }
        Path bound = bindingPath(path);
        int fd = -1;
        try {
            fd = UnixSockets.listen(bound.toString(), backlog);
            publish(bound, path);
            return fd;
        } catch (NativeCallException e) {
            throw new StartupException("cannot listen on " + p + ": " + e.getMessage(), e);
        } catch (IOException e) {
            LibC.close(fd);
            LibC.unlink(bound.toString());
            throw new StartupException("cannot create socket " + p + ": " + e.getMessage(), e);
        } catch (IllegalArgumentException e) {
            throw new StartupException(e.getMessage(), e);
        }
    }

    /** Where to bind before {@link #publish}: a hidden sibling, or path itself if that name would be too long. */
    public static Path bindingPath(Path path) {
        Path tmp = path.resolveSibling("." + path.getFileName() + ".binding-" + ProcessHandle.current().pid());
        return tmp.toString().getBytes(StandardCharsets.UTF_8).length <= SUN_PATH_MAX ? tmp : path;
    }

    /** Renames the listening socket's file from bound to path (nothing to do if they are the same). */
    public static void publish(Path bound, Path path) throws IOException {
        if (!bound.equals(path)) {
            Files.move(bound, path, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        }
    }
}

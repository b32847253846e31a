package dev.vhostappliance.libc;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;

/** AF_UNIX stream sockets by path: socket + bind + listen, connect, and what an fd is. */
public final class UnixSockets {
    /** sizeof(struct sockaddr_un): sa_family_t + char sun_path[108]. */
    private static final int SOCKADDR_UN_SIZE = 110;
    private static final int SUN_PATH_MAX = 107;

    private UnixSockets() {
    }

    private static MemorySegment sockaddr(Arena arena, String path) {
        byte[] bytes = path.getBytes(StandardCharsets.UTF_8);
        if (bytes.length == 0 || bytes.length > SUN_PATH_MAX) {
            throw new IllegalArgumentException(
                    "socket path must be 1 to " + SUN_PATH_MAX + " bytes long, is " + bytes.length + ": " + path);
        }
        MemorySegment sa = arena.allocate(SOCKADDR_UN_SIZE);
        sa.set(ValueLayout.JAVA_SHORT, 0, (short) LibC.AF_UNIX);
        MemorySegment.copy(bytes, 0, sa, ValueLayout.JAVA_BYTE, 2, bytes.length);
        return sa;
    }

    /** A new listening socket bound to path (which must not exist). */
    public static int listen(String path, int backlog) throws NativeCallException {
        int fd = LibC.socket(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0);
        try (Arena arena = Arena.ofConfined()) {
            LibC.bind(fd, sockaddr(arena, path), SOCKADDR_UN_SIZE);
            LibC.listen(fd, backlog);
            return fd;
        } catch (NativeCallException | RuntimeException e) {
            LibC.close(fd);
            throw e;
        }
    }

    /** Connects to path; returns the fd, or -errno (ECONNREFUSED: nobody listens; ENOENT: no such socket). */
    public static int connect(String path) throws NativeCallException {
        int fd = LibC.socket(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0);
        try (Arena arena = Arena.ofConfined()) {
            int rc = LibC.rawConnect(fd, sockaddr(arena, path), SOCKADDR_UN_SIZE);
            if (rc != 0) {
                LibC.close(fd);
                return rc;
            }
            return fd;
        } catch (RuntimeException e) {
            LibC.close(fd);
            throw e;
        }
    }

    /** True if fd is a listening socket; throws (ENOTSOCK, EBADF) if it is no socket at all. */
    public static boolean isListening(int fd) throws NativeCallException {
        int type = LibC.getsockoptInt(fd, LibC.SOL_SOCKET, LibC.SO_TYPE);
        if (type != LibC.SOCK_STREAM) {
            throw new NativeCallException("getsockopt(SO_TYPE)", Errno.EOPNOTSUPP);
        }
        return LibC.getsockoptInt(fd, LibC.SOL_SOCKET, LibC.SO_ACCEPTCONN) != 0;
    }

    /** A connected pair (fds[0], fds[1]), close-on-exec. */
    public static int[] pair() throws NativeCallException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment fds = arena.allocate(8);
            LibC.socketpair(LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, fds);
            return new int[] {fds.get(ValueLayout.JAVA_INT, 0), fds.get(ValueLayout.JAVA_INT, 4)};
        }
    }
}

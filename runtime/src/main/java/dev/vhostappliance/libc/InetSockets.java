package dev.vhostappliance.libc;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.UnknownHostException;

/** TCP listening sockets by host and port (IPv4 and IPv6), for servers that speak over the network (NBD). */
public final class InetSockets {
    private static final int SOCKADDR_IN_SIZE = 16;
    private static final int SOCKADDR_IN6_SIZE = 28;

    private InetSockets() {
    }

    /**
     * A new listening socket on host:port (SO_REUSEADDR, as QEMU's); host is a name or a numeric address,
     * resolved once. Port 0 picks a free port: {@link #port} tells which.
     */
    public static int listen(String host, int port, int backlog) throws NativeCallException, UnknownHostException {
        InetAddress address = InetAddress.getByName(host);
        boolean v6 = address instanceof Inet6Address;
        int fd = LibC.socket(v6 ? LibC.AF_INET6 : LibC.AF_INET, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0);
        try (Arena arena = Arena.ofConfined()) {
            LibC.setsockoptInt(fd, LibC.SOL_SOCKET, LibC.SO_REUSEADDR, 1);
            MemorySegment sa = arena.allocate(SOCKADDR_IN6_SIZE, 4);
            byte[] raw = address.getAddress();
            sa.set(ValueLayout.JAVA_SHORT, 0, (short) (v6 ? LibC.AF_INET6 : LibC.AF_INET));
            sa.set(ValueLayout.JAVA_BYTE, 2, (byte) (port >>> 8));
            sa.set(ValueLayout.JAVA_BYTE, 3, (byte) port);
            if (v6) {
                MemorySegment.copy(raw, 0, sa, ValueLayout.JAVA_BYTE, 8, 16);
                sa.set(ValueLayout.JAVA_INT, 24, ((Inet6Address) address).getScopeId());
            } else {
                MemorySegment.copy(raw, 0, sa, ValueLayout.JAVA_BYTE, 4, 4);
            }
            LibC.bind(fd, sa, v6 ? SOCKADDR_IN6_SIZE : SOCKADDR_IN_SIZE);
            LibC.listen(fd, backlog);
            return fd;
        } catch (NativeCallException | RuntimeException e) {
            LibC.close(fd);
            throw e;
        }
    }

    /** The port a TCP socket is bound to. */
    public static int port(int fd) throws NativeCallException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sa = arena.allocate(SOCKADDR_IN6_SIZE, 4);
            LibC.getsockname(fd, sa);
            return (sa.get(ValueLayout.JAVA_BYTE, 2) & 0xff) << 8 | sa.get(ValueLayout.JAVA_BYTE, 3) & 0xff;
        }
    }

    /** TCP_NODELAY: replies leave at once (NBD replies are small and latency-bound). */
    public static void noDelay(int fd) {
        try {
            LibC.setsockoptInt(fd, LibC.IPPROTO_TCP, LibC.TCP_NODELAY, 1);
        } catch (NativeCallException e) {
            // a Unix socket: nothing to do
        }
    }
}

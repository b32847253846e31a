package dev.vhostappliance.libc;

import java.lang.foreign.Arena;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;

/**
 * libc through {@code static final} method handles (see {@link Downcall}); errno is captured per call into
 * a per-thread state segment. Every wrapper that can fail throws {@link NativeCallException} naming the
 * call; the {@code raw*} variants return -errno instead where the caller expects EAGAIN and friends on a
 * hot path (no exception, no allocation).
 */
public final class LibC {
    // socket(2) and friends
    public static final int AF_UNIX = 1;
    public static final int AF_INET = 2;
    public static final int AF_INET6 = 10;
    public static final int IPPROTO_TCP = 6;
    public static final int TCP_NODELAY = 1;
    public static final int SO_REUSEADDR = 2;
    public static final int SOCK_STREAM = 1;
    public static final int SOCK_NONBLOCK = 0x800;
    public static final int SOCK_CLOEXEC = 0x80000;
    public static final int SOL_SOCKET = 1;
    public static final int SO_TYPE = 3;
    public static final int SO_ACCEPTCONN = 30;
    public static final int SCM_RIGHTS = 1;
    public static final int MSG_DONTWAIT = 0x40;
    public static final int MSG_WAITALL = 0x100;
    public static final int MSG_NOSIGNAL = 0x4000;
    public static final int MSG_CMSG_CLOEXEC = 0x40000000;
    public static final int MSG_CTRUNC = 0x8;
    public static final int SHUT_RDWR = 2;
    // mmap(2)
    public static final int PROT_READ = 1;
    public static final int PROT_WRITE = 2;
    public static final int MAP_SHARED = 1;
    public static final int MAP_PRIVATE = 2;
    public static final int MAP_ANONYMOUS = 0x20;
    public static final int MAP_NORESERVE = 0x4000;
    public static final long MAP_FAILED = -1L;
    // eventfd(2)
    public static final int EFD_CLOEXEC = 0x80000;
    public static final int EFD_NONBLOCK = 0x800;
    // poll(2)
    public static final short POLLIN = 0x1;
    public static final short POLLOUT = 0x4;
    public static final short POLLERR = 0x8;
    public static final short POLLHUP = 0x10;
    public static final short POLLNVAL = 0x20;
    // epoll(7)
    public static final int EPOLL_CLOEXEC = 0x80000;
    public static final int EPOLL_CTL_ADD = 1;
    public static final int EPOLL_CTL_DEL = 2;
    public static final int EPOLL_CTL_MOD = 3;
    public static final int EPOLLIN = 0x1;
    // open(2) / fcntl(2)
    public static final int O_RDONLY = 0;
    public static final int O_WRONLY = 1;
    public static final int O_RDWR = 2;
    public static final int O_CREAT = 0x40;
    public static final int O_EXCL = 0x80;
    public static final int O_NONBLOCK = 0x800;
    public static final int O_DIRECT = 0x4000;
    public static final int O_CLOEXEC = 0x80000;
    public static final int F_GETFD = 1;
    public static final int F_SETFD = 2;
    public static final int F_GETFL = 3;
    public static final int F_SETFL = 4;
    public static final int F_OFD_GETLK = 36;
    public static final int F_OFD_SETLK = 37;
    public static final int FD_CLOEXEC = 1;
    public static final int F_ADD_SEALS = 1033;
    public static final int MFD_CLOEXEC = 1;
    public static final int MFD_ALLOW_SEALING = 2;
    // fallocate(2)
    public static final int FALLOC_FL_KEEP_SIZE = 1;
    public static final int FALLOC_FL_PUNCH_HOLE = 2;
    public static final int FALLOC_FL_ZERO_RANGE = 0x10;
    public static final int SEEK_END = 2;
    public static final int SEEK_DATA = 3;
    public static final int SEEK_HOLE = 4;

    // Each handle in a holder class of its own, linked on first use: linking a downcall spins classes (about
    // 5 ms each in a fresh JVM), and a device needs only some of the ~50 (block's start-up needs 8). The
    // field stays static final, so the JIT still sees a constant handle on the request path.
    private static final class Socket { static final MethodHandle H = Downcall.SOCKET.handle(); }
    private static final class Socketpair { static final MethodHandle H = Downcall.SOCKETPAIR.handle(); }
    private static final class Bind { static final MethodHandle H = Downcall.BIND.handle(); }
    private static final class Listen { static final MethodHandle H = Downcall.LISTEN.handle(); }
    private static final class Accept4 { static final MethodHandle H = Downcall.ACCEPT4.handle(); }
    private static final class Connect { static final MethodHandle H = Downcall.CONNECT.handle(); }
    private static final class Getsockopt { static final MethodHandle H = Downcall.GETSOCKOPT.handle(); }
    private static final class Shutdown { static final MethodHandle H = Downcall.SHUTDOWN.handle(); }
    private static final class Setsockopt { static final MethodHandle H = Downcall.SETSOCKOPT.handle(); }
    private static final class Getsockname { static final MethodHandle H = Downcall.GETSOCKNAME.handle(); }
    private static final class Sendmsg { static final MethodHandle H = Downcall.SENDMSG.handle(); }
    private static final class Recvmsg { static final MethodHandle H = Downcall.RECVMSG.handle(); }
    private static final class Read { static final MethodHandle H = Downcall.READ.handle(); }
    private static final class Write { static final MethodHandle H = Downcall.WRITE.handle(); }
    private static final class Pread { static final MethodHandle H = Downcall.PREAD.handle(); }
    private static final class Pwrite { static final MethodHandle H = Downcall.PWRITE.handle(); }
    private static final class Preadv { static final MethodHandle H = Downcall.PREADV.handle(); }
    private static final class Pwritev { static final MethodHandle H = Downcall.PWRITEV.handle(); }
    private static final class Close { static final MethodHandle H = Downcall.CLOSE.handle(); }
    private static final class Dup { static final MethodHandle H = Downcall.DUP.handle(); }
    private static final class Unlink { static final MethodHandle H = Downcall.UNLINK.handle(); }
    private static final class Open { static final MethodHandle H = Downcall.OPEN.handle(); }
    private static final class FcntlInt { static final MethodHandle H = Downcall.FCNTL_INT.handle(); }
    private static final class FcntlPtr { static final MethodHandle H = Downcall.FCNTL_PTR.handle(); }
    private static final class IoctlPtr { static final MethodHandle H = Downcall.IOCTL_PTR.handle(); }
    private static final class IoctlInt { static final MethodHandle H = Downcall.IOCTL_INT.handle(); }
    private static final class Mmap { static final MethodHandle H = Downcall.MMAP.handle(); }
    private static final class Munmap { static final MethodHandle H = Downcall.MUNMAP.handle(); }
    private static final class Eventfd { static final MethodHandle H = Downcall.EVENTFD.handle(); }
    private static final class Poll { static final MethodHandle H = Downcall.POLL.handle(); }
    private static final class EpollCreate1 { static final MethodHandle H = Downcall.EPOLL_CREATE1.handle(); }
    private static final class EpollCtl { static final MethodHandle H = Downcall.EPOLL_CTL.handle(); }
    private static final class EpollWait { static final MethodHandle H = Downcall.EPOLL_WAIT.handle(); }
    private static final class Fallocate { static final MethodHandle H = Downcall.FALLOCATE.handle(); }
    private static final class Ftruncate { static final MethodHandle H = Downcall.FTRUNCATE.handle(); }
    private static final class Fdatasync { static final MethodHandle H = Downcall.FDATASYNC.handle(); }
    private static final class Lseek { static final MethodHandle H = Downcall.LSEEK.handle(); }
    private static final class MemfdCreate { static final MethodHandle H = Downcall.MEMFD_CREATE.handle(); }
    private static final class Getpid { static final MethodHandle H = Downcall.GETPID.handle(); }
    private static final class Getuid { static final MethodHandle H = Downcall.GETUID.handle(); }
    private static final class Getgid { static final MethodHandle H = Downcall.GETGID.handle(); }
    private static final class Mount { static final MethodHandle H = Downcall.MOUNT.handle(); }
    private static final class Umount2 { static final MethodHandle H = Downcall.UMOUNT2.handle(); }
    private static final class Chmod { static final MethodHandle H = Downcall.CHMOD.handle(); }
    private static final class Syscall { static final MethodHandle H = Downcall.SYSCALL.handle(); }
    private static final class ReadWord { static final MethodHandle H = Downcall.READ_WORD.handle(); }
    private static final class PollHot { static final MethodHandle H = Downcall.POLL_HOT.handle(); }
    private static final class SyscallHot { static final MethodHandle H = Downcall.SYSCALL_HOT.handle(); }
    private static final class WriteWord { static final MethodHandle H = Downcall.WRITE_WORD.handle(); }

    private static final StructLayout CAPTURE_LAYOUT = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO =
            CAPTURE_LAYOUT.varHandle(java.lang.foreign.MemoryLayout.PathElement.groupElement("errno"));
    /** One capture-state segment per thread, allocated once: errno reads allocate nothing. */
    private static final ThreadLocal<MemorySegment> CAPTURE =
            ThreadLocal.withInitial(() -> Arena.global().allocate(CAPTURE_LAYOUT));

    private LibC() {
    }

    private static MemorySegment state() {
        return CAPTURE.get();
    }

    /** errno of the last call made on this thread through this class. */
    public static int errno() {
        return (int) ERRNO.get(state(), 0L);
    }

    private static int check(String call, int rc) throws NativeCallException {
        if (rc == -1) {
            throw new NativeCallException(call, errno());
        }
        return rc;
    }

    private static long check(String call, long rc) throws NativeCallException {
        if (rc == -1) {
            throw new NativeCallException(call, errno());
        }
        return rc;
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException re) {
            return re;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException(t);
    }

    // ---------------------------------------------------------------- sockets

    public static int socket(int domain, int type, int protocol) throws NativeCallException {
        try {
            return check("socket", (int) Socket.H.invokeExact(state(), domain, type, protocol));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Fills {@code fds} (two ints) with a connected AF_UNIX stream pair. */
    public static void socketpair(int type, MemorySegment fds) throws NativeCallException {
        try {
            check("socketpair", (int) Socketpair.H.invokeExact(state(), AF_UNIX, type, 0, fds));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void bind(int fd, MemorySegment addr, int len) throws NativeCallException {
        try {
            check("bind", (int) Bind.H.invokeExact(state(), fd, addr, len));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void listen(int fd, int backlog) throws NativeCallException {
        try {
            check("listen", (int) Listen.H.invokeExact(state(), fd, backlog));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** accept4 with no peer address; returns the new fd or -errno. */
    public static int rawAccept4(int fd, int flags) {
        try {
            int rc = (int) Accept4.H.invokeExact(state(), fd, MemorySegment.NULL, MemorySegment.NULL, flags);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** connect; returns 0 or -errno (callers distinguish ECONNREFUSED / ENOENT). */
    public static int rawConnect(int fd, MemorySegment addr, int len) {
        try {
            int rc = (int) Connect.H.invokeExact(state(), fd, addr, len);
            return rc == 0 ? 0 : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** getsockopt for an int option; returns the value or throws. */
    public static int getsockoptInt(int fd, int level, int name) throws NativeCallException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment val = arena.allocate(4);
            MemorySegment len = arena.allocate(4);
            len.set(java.lang.foreign.ValueLayout.JAVA_INT, 0, 4);
            check("getsockopt", (int) Getsockopt.H.invokeExact(state(), fd, level, name, val, len));
            return val.get(java.lang.foreign.ValueLayout.JAVA_INT, 0);
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void setsockoptInt(int fd, int level, int name, int value) throws NativeCallException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment val = arena.allocate(4);
            val.set(java.lang.foreign.ValueLayout.JAVA_INT, 0, value);
            check("setsockopt", (int) Setsockopt.H.invokeExact(state(), fd, level, name, val, 4));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** getsockname into addr (at most addr.byteSize() bytes); returns the address length. */
    public static int getsockname(int fd, MemorySegment addr) throws NativeCallException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment len = arena.allocate(4);
            len.set(java.lang.foreign.ValueLayout.JAVA_INT, 0, (int) addr.byteSize());
            check("getsockname", (int) Getsockname.H.invokeExact(state(), fd, addr, len));
            return len.get(java.lang.foreign.ValueLayout.JAVA_INT, 0);
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** shutdown(fd, SHUT_RDWR), ignoring errors: wakes a thread blocked on the socket. */
    public static void shutdownQuietly(int fd) {
        try {
            int ignored = (int) Shutdown.H.invokeExact(state(), fd, SHUT_RDWR);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** sendmsg; returns bytes sent or -errno. */
    public static long rawSendmsg(int fd, MemorySegment msghdr, int flags) {
        try {
            long rc = (long) Sendmsg.H.invokeExact(state(), fd, msghdr, flags);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** recvmsg; returns bytes received (0 = orderly shutdown) or -errno. */
    public static long rawRecvmsg(int fd, MemorySegment msghdr, int flags) {
        try {
            long rc = (long) Recvmsg.H.invokeExact(state(), fd, msghdr, flags);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---------------------------------------------------------------- plain I/O

    /**
     * write(fd, address, 8) of an 8-byte word (an eventfd signal); bytes written, or -1 (errno not kept).
     * Takes the address, not a segment: the call allocates nothing however the JIT compiles its caller.
     */
    public static long writeWord(int fd, MemorySegment word) {
        try {
            return (long) WriteWord.H.invokeExact(fd, word.address(), 8L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** read(fd, address, 8) into an 8-byte word (draining an eventfd); bytes read, or -1 (errno not kept). */
    public static long readWord(int fd, MemorySegment word) {
        try {
            return (long) ReadWord.H.invokeExact(fd, word.address(), 8L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** read; returns bytes read or -errno. */
    public static long rawRead(int fd, MemorySegment buf, long len) {
        try {
            long rc = (long) Read.H.invokeExact(state(), fd, buf, len);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** write; returns bytes written or -errno. */
    public static long rawWrite(int fd, MemorySegment buf, long len) {
        try {
            long rc = (long) Write.H.invokeExact(state(), fd, buf, len);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static long rawPread(int fd, MemorySegment buf, long len, long offset) {
        try {
            long rc = (long) Pread.H.invokeExact(state(), fd, buf, len, offset);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static long rawPwrite(int fd, MemorySegment buf, long len, long offset) {
        try {
            long rc = (long) Pwrite.H.invokeExact(state(), fd, buf, len, offset);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** preadv over {@code iovcnt} struct iovec at {@code iov}; returns bytes or -errno. */
    public static long rawPreadv(int fd, MemorySegment iov, int iovcnt, long offset) {
        try {
            long rc = (long) Preadv.H.invokeExact(state(), fd, iov, iovcnt, offset);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** pwritev over {@code iovcnt} struct iovec at {@code iov}; returns bytes or -errno. */
    public static long rawPwritev(int fd, MemorySegment iov, int iovcnt, long offset) {
        try {
            long rc = (long) Pwritev.H.invokeExact(state(), fd, iov, iovcnt, offset);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** close; returns 0 or -errno. Never retried on EINTR (Linux releases the fd regardless). */
    public static int close(int fd) {
        if (fd < 0) {
            return 0;
        }
        try {
            int rc = (int) Close.H.invokeExact(state(), fd);
            return rc == 0 ? 0 : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int dup(int fd) throws NativeCallException {
        try {
            return check("dup", (int) Dup.H.invokeExact(state(), fd));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---------------------------------------------------------------- files

    /** unlink; returns 0 or -errno. */
    public static int unlink(String path) {
        try (Arena arena = Arena.ofConfined()) {
            int rc = (int) Unlink.H.invokeExact(state(), cString(arena, path));
            return rc == 0 ? 0 : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void chmod(String path, int mode) throws NativeCallException {
        try (Arena arena = Arena.ofConfined()) {
            check("chmod " + path, (int) Chmod.H.invokeExact(state(), cString(arena, path), mode));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int open(String path, int flags, int mode) throws NativeCallException {
        try (Arena arena = Arena.ofConfined()) {
            return check("open " + path, (int) Open.H.invokeExact(state(), cString(arena, path), flags, mode));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int fcntl(int fd, int cmd, int arg) throws NativeCallException {
        try {
            return check("fcntl", (int) FcntlInt.H.invokeExact(state(), fd, cmd, arg));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** fcntl with a pointer argument (struct flock for OFD locks); returns the result or -errno. */
    public static int rawFcntl(int fd, int cmd, MemorySegment arg) {
        try {
            int rc = (int) FcntlPtr.H.invokeExact(state(), fd, cmd, arg);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** ioctl with a pointer argument; returns the result or -errno. */
    public static int rawIoctl(int fd, long request, MemorySegment arg) {
        try {
            int rc = (int) IoctlPtr.H.invokeExact(state(), fd, request, arg);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** ioctl with an int argument; returns the result or -errno. */
    public static int rawIoctl(int fd, long request, int arg) {
        try {
            int rc = (int) IoctlInt.H.invokeExact(state(), fd, request, arg);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void fallocate(int fd, int mode, long offset, long len) throws NativeCallException {
        try {
            check("fallocate", (int) Fallocate.H.invokeExact(state(), fd, mode, offset, len));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** fallocate; returns 0 or -errno (callers fall back on EOPNOTSUPP). */
    public static int rawFallocate(int fd, int mode, long offset, long len) {
        try {
            int rc = (int) Fallocate.H.invokeExact(state(), fd, mode, offset, len);
            return rc == 0 ? 0 : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void ftruncate(int fd, long len) throws NativeCallException {
        try {
            check("ftruncate", (int) Ftruncate.H.invokeExact(state(), fd, len));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** fdatasync; returns 0 or -errno. */
    public static int rawFdatasync(int fd) {
        try {
            int rc = (int) Fdatasync.H.invokeExact(state(), fd);
            return rc == 0 ? 0 : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Size of a file or block device (lseek to the end). */
    public static long size(int fd) throws NativeCallException {
        try {
            return check("lseek", (long) Lseek.H.invokeExact(state(), fd, 0L, SEEK_END));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** lseek; the new offset or -errno (SEEK_DATA/SEEK_HOLE past the data: -ENXIO). */
    public static long rawLseek(int fd, long offset, int whence) {
        try {
            long rc = (long) Lseek.H.invokeExact(state(), fd, offset, whence);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int memfdCreate(String name, int flags) throws NativeCallException {
        try (Arena arena = Arena.ofConfined()) {
            return check("memfd_create", (int) MemfdCreate.H.invokeExact(state(), cString(arena, name), flags));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int getuid() {
        try {
            return (int) Getuid.H.invokeExact(state());
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int getgid() {
        try {
            return (int) Getgid.H.invokeExact(state());
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static final long MS_NOSUID = 2;
    public static final long MS_NODEV = 4;
    public static final int MNT_DETACH = 2;

    /** mount(2); throws with errno. */
    public static void mount(String source, String target, String type, long flags, String data) throws NativeCallException {
        try (Arena arena = Arena.ofConfined()) {
            check("mount", (int) Mount.H.invokeExact(state(), cString(arena, source), cString(arena, target), cString(arena, type),
                    flags, cString(arena, data)));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** umount2(2); 0 or -errno. */
    public static int umount2(String target, int flags) {
        try (Arena arena = Arena.ofConfined()) {
            int rc = (int) Umount2.H.invokeExact(state(), cString(arena, target), flags);
            return rc == 0 ? 0 : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int getpid() {
        try {
            return (int) Getpid.H.invokeExact(state());
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---------------------------------------------------------------- memory

    /** mmap; returns the address (a zero-length segment) or throws. */
    public static MemorySegment mmap(long length, int prot, int flags, int fd, long offset)
            throws NativeCallException {
        try {
            MemorySegment addr = (MemorySegment) Mmap.H.invokeExact(state(), MemorySegment.NULL, length, prot, flags,
                    fd, offset);
            if (addr.address() == MAP_FAILED) {
                throw new NativeCallException("mmap", errno());
            }
            return addr;
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** munmap; returns 0 or -errno. */
    public static int munmap(long address, long length) {
        try {
            int rc = (int) Munmap.H.invokeExact(state(), MemorySegment.ofAddress(address), length);
            return rc == 0 ? 0 : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---------------------------------------------------------------- events

    public static int eventfd(int initval, int flags) throws NativeCallException {
        try {
            return check("eventfd", (int) Eventfd.H.invokeExact(state(), initval, flags));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** poll over {@code nfds} struct pollfd; returns the count or -errno. */
    public static int rawPoll(MemorySegment fds, long nfds, int timeoutMillis) {
        try {
            int rc = (int) Poll.H.invokeExact(state(), fds, nfds, timeoutMillis);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int epollCreate() throws NativeCallException {
        try {
            return check("epoll_create1", (int) EpollCreate1.H.invokeExact(state(), EPOLL_CLOEXEC));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** epoll_ctl with a prepared struct epoll_event; returns 0 or -errno. */
    public static int rawEpollCtl(int epfd, int op, int fd, MemorySegment event) {
        try {
            int rc = (int) EpollCtl.H.invokeExact(state(), epfd, op, fd, event);
            return rc == 0 ? 0 : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** epoll_wait; returns the count or -errno. */
    public static int rawEpollWait(int epfd, MemorySegment events, int max, int timeoutMillis) {
        try {
            int rc = (int) EpollWait.H.invokeExact(state(), epfd, events, max, timeoutMillis);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---------------------------------------------------------------- raw system calls

    /** syscall(nr, a..f); returns the result or -errno. Pointers are passed as their addresses. */
    public static long rawSyscall(long nr, long a, long b, long c, long d, long e, long f) {
        try {
            long rc = (long) Syscall.H.invokeExact(state(), nr, a, b, c, d, e, f);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /*
     * Calls on the request path without errno capture. A capturing downcall slices its capture segment on
     * every call (SharedUtils.checkCaptureSegment), which allocates wherever the JIT does not inline the call
     * into its caller; these pass only numbers. They are meant for calls that did nothing when they failed:
     * only then are they made again with errno captured, to learn why (rare, and allowed to allocate).
     */

    /** syscall(nr, a..f) for calls that did nothing when they failed; the result or -errno. */
    public static long syscallHot(long nr, long a, long b, long c, long d, long e, long f) {
        long rc;
        try {
            rc = (long) SyscallHot.H.invokeExact(nr, a, b, c, d, e, f);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        return rc != -1 ? rc : rawSyscall(nr, a, b, c, d, e, f);
    }

    /** poll over nfds struct pollfd at fds; the count or -errno (a failed poll waited for nothing). */
    public static int pollHot(MemorySegment fds, long nfds, int timeoutMillis) {
        int rc;
        try {
            rc = (int) PollHot.H.invokeExact(fds.address(), nfds, timeoutMillis);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        return rc >= 0 ? rc : rawPoll(fds, nfds, 0);
    }

    /** read of an 8-byte word (an eventfd) for the request path; bytes read or -errno. */
    public static long readWordHot(int fd, MemorySegment word) {
        long rc = readWord(fd, word);
        return rc >= 0 ? rc : rawRead(fd, word, 8);
    }

    // ---------------------------------------------------------------- helpers

    public static MemorySegment cString(Arena arena, String s) {
        return arena.allocateFrom(s, StandardCharsets.UTF_8);
    }
}

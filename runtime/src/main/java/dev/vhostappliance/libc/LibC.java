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

    private static final MethodHandle SOCKET = Downcall.SOCKET.handle();
    private static final MethodHandle SOCKETPAIR = Downcall.SOCKETPAIR.handle();
    private static final MethodHandle BIND = Downcall.BIND.handle();
    private static final MethodHandle LISTEN = Downcall.LISTEN.handle();
    private static final MethodHandle ACCEPT4 = Downcall.ACCEPT4.handle();
    private static final MethodHandle CONNECT = Downcall.CONNECT.handle();
    private static final MethodHandle GETSOCKOPT = Downcall.GETSOCKOPT.handle();
    private static final MethodHandle SHUTDOWN = Downcall.SHUTDOWN.handle();
    private static final MethodHandle SETSOCKOPT = Downcall.SETSOCKOPT.handle();
    private static final MethodHandle GETSOCKNAME = Downcall.GETSOCKNAME.handle();
    private static final MethodHandle SENDMSG = Downcall.SENDMSG.handle();
    private static final MethodHandle RECVMSG = Downcall.RECVMSG.handle();
    private static final MethodHandle READ = Downcall.READ.handle();
    private static final MethodHandle WRITE = Downcall.WRITE.handle();
    private static final MethodHandle PREAD = Downcall.PREAD.handle();
    private static final MethodHandle PWRITE = Downcall.PWRITE.handle();
    private static final MethodHandle PREADV = Downcall.PREADV.handle();
    private static final MethodHandle PWRITEV = Downcall.PWRITEV.handle();
    private static final MethodHandle CLOSE = Downcall.CLOSE.handle();
    private static final MethodHandle DUP = Downcall.DUP.handle();
    private static final MethodHandle UNLINK = Downcall.UNLINK.handle();
    private static final MethodHandle OPEN = Downcall.OPEN.handle();
    private static final MethodHandle FCNTL_INT = Downcall.FCNTL_INT.handle();
    private static final MethodHandle FCNTL_PTR = Downcall.FCNTL_PTR.handle();
    private static final MethodHandle IOCTL_PTR = Downcall.IOCTL_PTR.handle();
    private static final MethodHandle IOCTL_INT = Downcall.IOCTL_INT.handle();
    private static final MethodHandle MMAP = Downcall.MMAP.handle();
    private static final MethodHandle MUNMAP = Downcall.MUNMAP.handle();
    private static final MethodHandle EVENTFD = Downcall.EVENTFD.handle();
    private static final MethodHandle POLL = Downcall.POLL.handle();
    private static final MethodHandle EPOLL_CREATE1 = Downcall.EPOLL_CREATE1.handle();
    private static final MethodHandle EPOLL_CTL = Downcall.EPOLL_CTL.handle();
    private static final MethodHandle EPOLL_WAIT = Downcall.EPOLL_WAIT.handle();
    private static final MethodHandle FALLOCATE = Downcall.FALLOCATE.handle();
    private static final MethodHandle FTRUNCATE = Downcall.FTRUNCATE.handle();
    private static final MethodHandle FDATASYNC = Downcall.FDATASYNC.handle();
    private static final MethodHandle LSEEK = Downcall.LSEEK.handle();
    private static final MethodHandle MEMFD_CREATE = Downcall.MEMFD_CREATE.handle();
    private static final MethodHandle GETPID = Downcall.GETPID.handle();
    private static final MethodHandle GETUID = Downcall.GETUID.handle();
    private static final MethodHandle GETGID = Downcall.GETGID.handle();
    private static final MethodHandle MOUNT = Downcall.MOUNT.handle();
    private static final MethodHandle UMOUNT2 = Downcall.UMOUNT2.handle();
    private static final MethodHandle CHMOD = Downcall.CHMOD.handle();
    private static final MethodHandle SYSCALL = Downcall.SYSCALL.handle();
    private static final MethodHandle READ_WORD = Downcall.READ_WORD.handle();
    private static final MethodHandle POLL_HOT = Downcall.POLL_HOT.handle();
    private static final MethodHandle SYSCALL_HOT = Downcall.SYSCALL_HOT.handle();
    private static final MethodHandle WRITE_WORD = Downcall.WRITE_WORD.handle();

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
            return check("socket", (int) SOCKET.invokeExact(state(), domain, type, protocol));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Fills {@code fds} (two ints) with a connected AF_UNIX stream pair. */
    public static void socketpair(int type, MemorySegment fds) throws NativeCallException {
        try {
            check("socketpair", (int) SOCKETPAIR.invokeExact(state(), AF_UNIX, type, 0, fds));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void bind(int fd, MemorySegment addr, int len) throws NativeCallException {
        try {
            check("bind", (int) BIND.invokeExact(state(), fd, addr, len));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void listen(int fd, int backlog) throws NativeCallException {
        try {
            check("listen", (int) LISTEN.invokeExact(state(), fd, backlog));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** accept4 with no peer address; returns the new fd or -errno. */
    public static int rawAccept4(int fd, int flags) {
        try {
            int rc = (int) ACCEPT4.invokeExact(state(), fd, MemorySegment.NULL, MemorySegment.NULL, flags);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** connect; returns 0 or -errno (callers distinguish ECONNREFUSED / ENOENT). */
    public static int rawConnect(int fd, MemorySegment addr, int len) {
        try {
            int rc = (int) CONNECT.invokeExact(state(), fd, addr, len);
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
            check("getsockopt", (int) GETSOCKOPT.invokeExact(state(), fd, level, name, val, len));
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
            check("setsockopt", (int) SETSOCKOPT.invokeExact(state(), fd, level, name, val, 4));
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
            check("getsockname", (int) GETSOCKNAME.invokeExact(state(), fd, addr, len));
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
            int ignored = (int) SHUTDOWN.invokeExact(state(), fd, SHUT_RDWR);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** sendmsg; returns bytes sent or -errno. */
    public static long rawSendmsg(int fd, MemorySegment msghdr, int flags) {
        try {
            long rc = (long) SENDMSG.invokeExact(state(), fd, msghdr, flags);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** recvmsg; returns bytes received (0 = orderly shutdown) or -errno. */
    public static long rawRecvmsg(int fd, MemorySegment msghdr, int flags) {
        try {
            long rc = (long) RECVMSG.invokeExact(state(), fd, msghdr, flags);
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
            return (long) WRITE_WORD.invokeExact(fd, word.address(), 8L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** read(fd, address, 8) into an 8-byte word (draining an eventfd); bytes read, or -1 (errno not kept). */
    public static long readWord(int fd, MemorySegment word) {
        try {
            return (long) READ_WORD.invokeExact(fd, word.address(), 8L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** read; returns bytes read or -errno. */
    public static long rawRead(int fd, MemorySegment buf, long len) {
        try {
            long rc = (long) READ.invokeExact(state(), fd, buf, len);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** write; returns bytes written or -errno. */
    public static long rawWrite(int fd, MemorySegment buf, long len) {
        try {
            long rc = (long) WRITE.invokeExact(state(), fd, buf, len);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static long rawPread(int fd, MemorySegment buf, long len, long offset) {
        try {
            long rc = (long) PREAD.invokeExact(state(), fd, buf, len, offset);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static long rawPwrite(int fd, MemorySegment buf, long len, long offset) {
        try {
            long rc = (long) PWRITE.invokeExact(state(), fd, buf, len, offset);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** preadv over {@code iovcnt} struct iovec at {@code iov}; returns bytes or -errno. */
    public static long rawPreadv(int fd, MemorySegment iov, int iovcnt, long offset) {
        try {
            long rc = (long) PREADV.invokeExact(state(), fd, iov, iovcnt, offset);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** pwritev over {@code iovcnt} struct iovec at {@code iov}; returns bytes or -errno. */
    public static long rawPwritev(int fd, MemorySegment iov, int iovcnt, long offset) {
        try {
            long rc = (long) PWRITEV.invokeExact(state(), fd, iov, iovcnt, offset);
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
            int rc = (int) CLOSE.invokeExact(state(), fd);
            return rc == 0 ? 0 : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int dup(int fd) throws NativeCallException {
        try {
            return check("dup", (int) DUP.invokeExact(state(), fd));
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
            int rc = (int) UNLINK.invokeExact(state(), cString(arena, path));
            return rc == 0 ? 0 : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void chmod(String path, int mode) throws NativeCallException {
        try (Arena arena = Arena.ofConfined()) {
            check("chmod " + path, (int) CHMOD.invokeExact(state(), cString(arena, path), mode));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int open(String path, int flags, int mode) throws NativeCallException {
        try (Arena arena = Arena.ofConfined()) {
            return check("open " + path, (int) OPEN.invokeExact(state(), cString(arena, path), flags, mode));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int fcntl(int fd, int cmd, int arg) throws NativeCallException {
        try {
            return check("fcntl", (int) FCNTL_INT.invokeExact(state(), fd, cmd, arg));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** fcntl with a pointer argument (struct flock for OFD locks); returns the result or -errno. */
    public static int rawFcntl(int fd, int cmd, MemorySegment arg) {
        try {
            int rc = (int) FCNTL_PTR.invokeExact(state(), fd, cmd, arg);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** ioctl with a pointer argument; returns the result or -errno. */
    public static int rawIoctl(int fd, long request, MemorySegment arg) {
        try {
            int rc = (int) IOCTL_PTR.invokeExact(state(), fd, request, arg);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** ioctl with an int argument; returns the result or -errno. */
    public static int rawIoctl(int fd, long request, int arg) {
        try {
            int rc = (int) IOCTL_INT.invokeExact(state(), fd, request, arg);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void fallocate(int fd, int mode, long offset, long len) throws NativeCallException {
        try {
            check("fallocate", (int) FALLOCATE.invokeExact(state(), fd, mode, offset, len));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** fallocate; returns 0 or -errno (callers fall back on EOPNOTSUPP). */
    public static int rawFallocate(int fd, int mode, long offset, long len) {
        try {
            int rc = (int) FALLOCATE.invokeExact(state(), fd, mode, offset, len);
            return rc == 0 ? 0 : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void ftruncate(int fd, long len) throws NativeCallException {
        try {
            check("ftruncate", (int) FTRUNCATE.invokeExact(state(), fd, len));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** fdatasync; returns 0 or -errno. */
    public static int rawFdatasync(int fd) {
        try {
            int rc = (int) FDATASYNC.invokeExact(state(), fd);
            return rc == 0 ? 0 : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Size of a file or block device (lseek to the end). */
    public static long size(int fd) throws NativeCallException {
        try {
            return check("lseek", (long) LSEEK.invokeExact(state(), fd, 0L, SEEK_END));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** lseek; the new offset or -errno (SEEK_DATA/SEEK_HOLE past the data: -ENXIO). */
    public static long rawLseek(int fd, long offset, int whence) {
        try {
            long rc = (long) LSEEK.invokeExact(state(), fd, offset, whence);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int memfdCreate(String name, int flags) throws NativeCallException {
        try (Arena arena = Arena.ofConfined()) {
            return check("memfd_create", (int) MEMFD_CREATE.invokeExact(state(), cString(arena, name), flags));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int getuid() {
        try {
            return (int) GETUID.invokeExact(state());
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int getgid() {
        try {
            return (int) GETGID.invokeExact(state());
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
            check("mount", (int) MOUNT.invokeExact(state(), cString(arena, source), cString(arena, target), cString(arena, type),
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
            int rc = (int) UMOUNT2.invokeExact(state(), cString(arena, target), flags);
            return rc == 0 ? 0 : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int getpid() {
        try {
            return (int) GETPID.invokeExact(state());
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---------------------------------------------------------------- memory

    /** mmap; returns the address (a zero-length segment) or throws. */
    public static MemorySegment mmap(long length, int prot, int flags, int fd, long offset)
            throws NativeCallException {
        try {
            MemorySegment addr = (MemorySegment) MMAP.invokeExact(state(), MemorySegment.NULL, length, prot, flags,
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
            int rc = (int) MUNMAP.invokeExact(state(), MemorySegment.ofAddress(address), length);
            return rc == 0 ? 0 : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---------------------------------------------------------------- events

    public static int eventfd(int initval, int flags) throws NativeCallException {
        try {
            return check("eventfd", (int) EVENTFD.invokeExact(state(), initval, flags));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** poll over {@code nfds} struct pollfd; returns the count or -errno. */
    public static int rawPoll(MemorySegment fds, long nfds, int timeoutMillis) {
        try {
            int rc = (int) POLL.invokeExact(state(), fds, nfds, timeoutMillis);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int epollCreate() throws NativeCallException {
        try {
            return check("epoll_create1", (int) EPOLL_CREATE1.invokeExact(state(), EPOLL_CLOEXEC));
        } catch (NativeCallException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** epoll_ctl with a prepared struct epoll_event; returns 0 or -errno. */
    public static int rawEpollCtl(int epfd, int op, int fd, MemorySegment event) {
        try {
            int rc = (int) EPOLL_CTL.invokeExact(state(), epfd, op, fd, event);
            return rc == 0 ? 0 : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** epoll_wait; returns the count or -errno. */
    public static int rawEpollWait(int epfd, MemorySegment events, int max, int timeoutMillis) {
        try {
            int rc = (int) EPOLL_WAIT.invokeExact(state(), epfd, events, max, timeoutMillis);
            return rc >= 0 ? rc : -errno();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---------------------------------------------------------------- raw system calls

    /** syscall(nr, a..f); returns the result or -errno. Pointers are passed as their addresses. */
    public static long rawSyscall(long nr, long a, long b, long c, long d, long e, long f) {
        try {
            long rc = (long) SYSCALL.invokeExact(state(), nr, a, b, c, d, e, f);
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
            rc = (long) SYSCALL_HOT.invokeExact(nr, a, b, c, d, e, f);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        return rc != -1 ? rc : rawSyscall(nr, a, b, c, d, e, f);
    }

    /** poll over nfds struct pollfd at fds; the count or -errno (a failed poll waited for nothing). */
    public static int pollHot(MemorySegment fds, long nfds, int timeoutMillis) {
        int rc;
        try {
            rc = (int) POLL_HOT.invokeExact(fds.address(), nfds, timeoutMillis);
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

package dev.vhostappliance.libc;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.invoke.MethodHandle;

/**
 * Every libc function this project calls, with its C signature. One list serves two masters: {@link LibC}
 * builds its {@code static final} method handles from it, and the deployment module registers exactly
 * these descriptors for downcalls at native-image build time (nothing is discovered reflectively).
 * Every handle captures errno (its first argument is the capture-state segment) except the {@code _WORD} and
 * {@code _HOT} ones of the request path, which pass only numbers (see {@link LibC#syscallHot}).
 */
public enum Downcall {
    SOCKET("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT)),
    SOCKETPAIR("socketpair", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS)),
    BIND("bind", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT)),
    LISTEN("listen", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT)),
    ACCEPT4("accept4", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT)),
    CONNECT("connect", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT)),
    GETSOCKOPT("getsockopt", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS)),
    GETSOCKNAME("getsockname", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS)),
    SETSOCKOPT("setsockopt", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT)),
    SHUTDOWN("shutdown", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT)),
    SENDMSG("sendmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT)),
    RECVMSG("recvmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT)),
    READ("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG)),
    WRITE("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG)),
    PREAD("pread", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG)),
    PWRITE("pwrite", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG)),
    PREADV("preadv", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG)),
    PWRITEV("pwritev", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG)),
    CLOSE("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT)),
    DUP("dup", FunctionDescriptor.of(JAVA_INT, JAVA_INT)),
    UNLINK("unlink", FunctionDescriptor.of(JAVA_INT, ADDRESS)),
    OPEN("open", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), Linker.Option.firstVariadicArg(2)),
    FCNTL_INT("fcntl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT), Linker.Option.firstVariadicArg(2)),
    FCNTL_PTR("fcntl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS), Linker.Option.firstVariadicArg(2)),
    IOCTL_PTR("ioctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS), Linker.Option.firstVariadicArg(2)),
    IOCTL_INT("ioctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_INT), Linker.Option.firstVariadicArg(2)),
    MMAP("mmap", FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG)),
    MUNMAP("munmap", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG)),
    EVENTFD("eventfd", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT)),
    POLL("poll", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT)),
    EPOLL_CREATE1("epoll_create1", FunctionDescriptor.of(JAVA_INT, JAVA_INT)),
    EPOLL_CTL("epoll_ctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS)),
    EPOLL_WAIT("epoll_wait", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT)),
    FALLOCATE("fallocate", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG)),
    FTRUNCATE("ftruncate", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG)),
    FDATASYNC("fdatasync", FunctionDescriptor.of(JAVA_INT, JAVA_INT)),
    LSEEK("lseek", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT)),
    MEMFD_CREATE("memfd_create", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT)),
    GETPID("getpid", FunctionDescriptor.of(JAVA_INT)),
    GETUID("getuid", FunctionDescriptor.of(JAVA_INT)),
    GETGID("getgid", FunctionDescriptor.of(JAVA_INT)),
    MOUNT("mount", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS)),
    UMOUNT2("umount2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT)),
    CHMOD("chmod", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT)),
    /**
     * read/write of a buffer given by address, without errno: the eventfd signals of the hot path. No
     * memory-segment argument at all, so nothing can be materialised per call whatever the JIT inlines.
     */
    READ_WORD("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG), false),
    WRITE_WORD("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG), false),
    /** poll(2) over an address, without errno: the queue workers' wait (see {@link LibC#pollHot}). */
    POLL_HOT("poll", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT), false),
    /** syscall(2) without errno: io_uring_enter, io_submit, io_getevents (see {@link LibC#syscallHot}). */
    SYSCALL_HOT("syscall", FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG,
            JAVA_LONG), false, Linker.Option.firstVariadicArg(1)),
    /** syscall(2) with six word-sized arguments: io_uring and Linux AIO have no libc wrappers. */
    SYSCALL("syscall", FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG,
            JAVA_LONG), Linker.Option.firstVariadicArg(1));

    private final String symbol;
    private final FunctionDescriptor descriptor;
    private final Linker.Option[] options;

    Downcall(String symbol, FunctionDescriptor descriptor, Linker.Option... extra) {
        this(symbol, descriptor, true, extra);
    }

    Downcall(String symbol, FunctionDescriptor descriptor, boolean captureErrno, Linker.Option... extra) {
        this.symbol = symbol;
        this.descriptor = descriptor;
        Linker.Option[] opts = new Linker.Option[extra.length + (captureErrno ? 1 : 0)];
        if (captureErrno) {
            opts[0] = Linker.Option.captureCallState("errno"); // the handle's first argument is the capture state
        }
        System.arraycopy(extra, 0, opts, captureErrno ? 1 : 0, extra.length);
        this.options = opts;
    }

    public String symbol() {
        return symbol;
    }

    public FunctionDescriptor descriptor() {
        return descriptor;
    }

    public Linker.Option[] options() {
        return options.clone();
    }

    MethodHandle handle() {
        Linker linker = Linker.nativeLinker();
        return linker.downcallHandle(
                linker.defaultLookup().find(symbol).orElseThrow(() -> new UnsatisfiedLinkError("libc: " + symbol)),
                descriptor, options);
    }
}

package dev.vhostappliance.block.io;

import dev.vhostappliance.libc.Errno;
import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.NativeCallException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.jboss.logging.Logger;

/**
 * {@code aio=native}: Linux AIO (io_setup/io_submit/io_getevents), which is asynchronous only with O_DIRECT;
 * QEMU requires {@code cache.direct=on} for it and so does the option parser. Reads and writes are iocbs
 * signalling an eventfd (IOCB_FLAG_RESFD); fdatasync and fallocate run synchronously on the queue thread, as
 * QEMU hands them to its thread pool (Linux AIO has no fallocate, and fsync only on some file systems).
 */
public final class LinuxAioEngine extends AbstractIoEngine {
    private static final Logger LOG = Logger.getLogger(LinuxAioEngine.class);
    private static final boolean AARCH64 = "aarch64".equals(System.getProperty("os.arch"));
    private static final long SYS_IO_SETUP = AARCH64 ? 0 : 206;
    private static final long SYS_IO_DESTROY = AARCH64 ? 1 : 207;
    private static final long SYS_IO_SUBMIT = AARCH64 ? 2 : 209;
    private static final long SYS_IO_GETEVENTS = AARCH64 ? 4 : 208;
    private static final java.lang.invoke.VarHandle INT = ValueLayout.JAVA_INT.varHandle();
    private static final int IOCB_BYTES = 64;
    private static final int EVENT_BYTES = 32;
    private static final short CMD_PREADV = 7;
    private static final short CMD_PWRITEV = 8;
    private static final int IOCB_FLAG_RESFD = 1;
    /** struct aio_ring, mapped at the context's address: head and tail of the completion ring. */
    private static final long RING_HEAD = 8;
    private static final long RING_TAIL = 12;

    private final Arena arena = Arena.ofShared();
    private final long context;
    private final MemorySegment ring;
    private final int eventFd;
    private final MemorySegment iocbs;
    private final MemorySegment pointers;
    private final MemorySegment events;
    private final MemorySegment zeroTimeout;
    private final MemorySegment counter;
    private int pending;
    private boolean closed;

    private LinuxAioEngine(long context, int eventFd, int capacity) {
        super(capacity, true);
        this.context = context;
        this.ring = MemorySegment.ofAddress(context).reinterpret(32);
        this.eventFd = eventFd;
        this.iocbs = arena.allocate((long) IOCB_BYTES * capacity, 64);
        this.pointers = arena.allocate(8L * capacity, 8);
        this.events = arena.allocate((long) EVENT_BYTES * capacity, 8);
        this.zeroTimeout = arena.allocate(16, 8);
        this.counter = arena.allocate(8, 8);
    }

    public static LinuxAioEngine open(int capacity) throws IoEngineUnavailableException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ctx = a.allocate(8, 8);
            long rc = LibC.rawSyscall(SYS_IO_SETUP, capacity, ctx.address(), 0, 0, 0, 0);
            if (rc < 0) {
                throw new IoEngineUnavailableException("io_setup failed: " + Errno.describe((int) -rc)
                        + (rc == -Errno.EAGAIN ? " (fs.aio-max-nr reached)" : ""));
            }
            long context = ctx.get(ValueLayout.JAVA_LONG, 0);
            try {
                int efd = LibC.eventfd(0, LibC.EFD_NONBLOCK | LibC.EFD_CLOEXEC);
                return new LinuxAioEngine(context, efd, capacity);
            } catch (NativeCallException e) {
                LibC.rawSyscall(SYS_IO_DESTROY, context, 0, 0, 0, 0, 0);
                throw new IoEngineUnavailableException("eventfd failed: " + e.getMessage());
            }
        }
    }

    @Override
    public String name() {
        return "native";
    }

    @Override
    public void queue(IoRequest r) {
        if (r.op != IoRequest.READV && r.op != IoRequest.WRITEV) {
            r.runToCompletion(); // Linux AIO has no fallocate, and fsync only on some file systems
            completeNow(r, r.result);
            return;
        }
        tag(r);
        long o = (long) IOCB_BYTES * r.engineTag;
        for (int i = 0; i < IOCB_BYTES; i += 8) {
            iocbs.set(ValueLayout.JAVA_LONG, o + i, 0L);
        }
        iocbs.set(ValueLayout.JAVA_LONG, o, r.engineTag); // aio_data
        iocbs.set(ValueLayout.JAVA_SHORT, o + 16, r.op == IoRequest.READV ? CMD_PREADV : CMD_PWRITEV);
        iocbs.set(ValueLayout.JAVA_INT, o + 20, r.fd);
        iocbs.set(ValueLayout.JAVA_LONG, o + 24, r.iovAddress());
        iocbs.set(ValueLayout.JAVA_LONG, o + 32, r.iovCount());
        iocbs.set(ValueLayout.JAVA_LONG, o + 40, r.nextOffset());
        iocbs.set(ValueLayout.JAVA_INT, o + 56, IOCB_FLAG_RESFD);
        iocbs.set(ValueLayout.JAVA_INT, o + 60, eventFd);
        pointers.set(ValueLayout.JAVA_LONG, 8L * pending, iocbs.address() + o);
        pending++;
    }

    @Override
    public void submit() {
        int done = 0;
        while (done < pending) {
            long rc = LibC.syscallHot(SYS_IO_SUBMIT, context, pending - done, pointers.address() + 8L * done, 0, 0, 0);
            if (rc > 0) {
                done += (int) rc;
            } else if (rc != -Errno.EINTR) {
                if (rc != -Errno.EAGAIN && rc != 0) {
                    // a request the kernel refuses outright (EINVAL: not O_DIRECT-aligned, EBADF...): fail it alone
                    long iocb = pointers.get(ValueLayout.JAVA_LONG, 8L * done);
                    fail((int) ((iocb - iocbs.address()) / IOCB_BYTES), (int) rc);
                    done++;
                    continue;
                }
                break; // EAGAIN: the kernel has no room now; the rest goes with the next submit
            }
        }
        if (done > 0 && done < pending) {
            MemorySegment.copy(pointers, 8L * done, pointers, 0, 8L * (pending - done));
        }
        pending -= done;
    }

    private void fail(int tag, int error) {
        IoRequest r = tagged(tag);
        untag(r);
        r.answered(error);
        finishedHere(r);
    }

    @Override
    public int reap(IoCompletionSink sink) {
        LibC.readWord(eventFd, counter); // clear the eventfd: the ring itself says what completed
        int n = deliverReady(sink);
        while (ringHasEvents()) {
            long got = LibC.syscallHot(SYS_IO_GETEVENTS, context, 0, capacity(), events.address(), zeroTimeout.address(), 0);
            if (got <= 0) {
                if (got < 0 && got != -Errno.EINTR) {
                    LOG.warnf("io_getevents: %s", Errno.describe((int) -got));
                }
                break;
            }
            for (int i = 0; i < got; i++) {
                long o = (long) EVENT_BYTES * i;
                IoRequest r = tagged(events.get(ValueLayout.JAVA_LONG, o));
                if (r == null) {
                    continue;
                }
                if (!r.answered(events.get(ValueLayout.JAVA_LONG, o + 16))) {
                    queue(r);
                    continue;
                }
                untag(r);
                deliver(r, sink);
                n++;
            }
            n += deliverReady(sink);
        }
        n += deliverReady(sink); // what the continuations finished or were given back meanwhile
        submit();
        return n;
    }

    private boolean ringHasEvents() {
        return (int) INT.getAcquire(ring, RING_HEAD) != (int) INT.getAcquire(ring, RING_TAIL);
    }

    @Override
    public int completionFd() {
        return eventFd;
    }

    @Override
    public boolean hasCompletions() {
        return hasReady() || ringHasEvents();
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        LibC.rawSyscall(SYS_IO_DESTROY, context, 0, 0, 0, 0, 0); // waits for what is still in flight
        LibC.close(eventFd);
        arena.close();
    }
}

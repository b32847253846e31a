package dev.vhostappliance.block.io;

import dev.vhostappliance.libc.Errno;
import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.NativeCallException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import org.jboss.logging.Logger;

/**
 * {@code aio=io_uring}: the kernel's submission and completion rings, set up and entered with the raw system
 * calls (liburing is mostly inline functions, nothing to bind to), the rings and the SQE array mapped as
 * memory segments. Ordering follows the io_uring ABI: the SQ tail is published with release after the SQEs
 * are written, the CQ tail is read with acquire before the CQEs, the CQ head is published with release once
 * they are consumed. The node's file is registered (IOSQE_FIXED_FILE: no file reference taken per request).
 * The ring fd polls readable while completions wait, so the queue thread sleeps on it next to its kick.
 */
public final class IoUringEngine extends AbstractIoEngine {
    private static final Logger LOG = Logger.getLogger(IoUringEngine.class);

    // io_uring system calls: the same numbers on every Linux architecture (added after the unified table)
    private static final long SYS_SETUP = 425;
    private static final long SYS_ENTER = 426;
    private static final long SYS_REGISTER = 427;
    private static final long OFF_SQ_RING = 0;
    private static final long OFF_CQ_RING = 0x8000000L;
    private static final long OFF_SQES = 0x10000000L;
    private static final int FEAT_SINGLE_MMAP = 1;
    private static final int SETUP_SUBMIT_ALL = 1 << 7;
    private static final int SETUP_COOP_TASKRUN = 1 << 8;
    private static final int SETUP_TASKRUN_FLAG = 1 << 9;
    private static final int SQ_TASKRUN = 4;
    /** Completions wait for the queue thread to enter the kernel instead of interrupting it (A/B switch). */
    private static final boolean COOP = Boolean.parseBoolean(System.getProperty("vhost.io_uring.coop", "false"));
    private static final int ENTER_GETEVENTS = 1;
    private static final int SQ_CQ_OVERFLOW = 2;
    private static final int REGISTER_FILES = 2;
    private static final int UNREGISTER_FILES = 3;
    private static final int OP_READV = 1;
    private static final int OP_WRITEV = 2;
    private static final int OP_FSYNC = 3;
    private static final int OP_FALLOCATE = 17;
    private static final int FSYNC_DATASYNC = 1;
    private static final int SQE_FIXED_FILE = 1;
    private static final int SQE_ASYNC = 16;
    private static final int SQE_BYTES = 64;
    private static final int CQE_BYTES = 16;
    private static final int MAP_POPULATE = 0x8000;
    private static final VarHandle INT = ValueLayout.JAVA_INT.varHandle();

    private final int ringFd;
    private final MemorySegment sqRing;
    private final MemorySegment cqRing;
    private final MemorySegment sqes;
    private final long sqRingBytes;
    private final long cqRingBytes;
    private final boolean singleMmap;
    private final int sqEntries;
    private final int sqMask;
    private final int cqMask;
    private final long sqHeadOff;
    private final long sqTailOff;
    private final long sqFlagsOff;
    private final long cqHeadOff;
    private final long cqTailOff;
    private final long cqesOff;
    /** The registered file (index 0), or -1. */
    private final int fixedFd;

    private int sqTail;
    private int cqHead;
    private int toSubmit;
    /** Requests waiting for room in the submission ring. */
    private final RequestList waiting = new RequestList();
    private boolean closed;

    private IoUringEngine(int ringFd, MemorySegment params, int capacity, int fixedFd) throws NativeCallException {
        super(capacity, true);
        this.ringFd = ringFd;
        this.sqEntries = params.get(ValueLayout.JAVA_INT, 0);
        int cqEntries = params.get(ValueLayout.JAVA_INT, 4);
        int features = params.get(ValueLayout.JAVA_INT, 20);
        // struct io_sqring_offsets at 40, struct io_cqring_offsets at 80
        this.sqHeadOff = Integer.toUnsignedLong(params.get(ValueLayout.JAVA_INT, 40));
        this.sqTailOff = Integer.toUnsignedLong(params.get(ValueLayout.JAVA_INT, 44));
        long sqMaskOff = Integer.toUnsignedLong(params.get(ValueLayout.JAVA_INT, 48));
        this.sqFlagsOff = Integer.toUnsignedLong(params.get(ValueLayout.JAVA_INT, 56));
        long sqArrayOff = Integer.toUnsignedLong(params.get(ValueLayout.JAVA_INT, 64));
        this.cqHeadOff = Integer.toUnsignedLong(params.get(ValueLayout.JAVA_INT, 80));
        this.cqTailOff = Integer.toUnsignedLong(params.get(ValueLayout.JAVA_INT, 84));
        long cqMaskOff = Integer.toUnsignedLong(params.get(ValueLayout.JAVA_INT, 88));
        this.cqesOff = Integer.toUnsignedLong(params.get(ValueLayout.JAVA_INT, 100));
        long sqBytes = sqArrayOff + 4L * sqEntries;
        long cqBytes = cqesOff + (long) CQE_BYTES * cqEntries;
        this.singleMmap = (features & FEAT_SINGLE_MMAP) != 0;
        if (singleMmap) {
            sqBytes = Math.max(sqBytes, cqBytes);
            cqBytes = sqBytes;
        }
        this.sqRingBytes = sqBytes;
        this.cqRingBytes = cqBytes;
        int prot = LibC.PROT_READ | LibC.PROT_WRITE;
        int flags = LibC.MAP_SHARED | MAP_POPULATE;
        this.sqRing = LibC.mmap(sqBytes, prot, flags, ringFd, OFF_SQ_RING).reinterpret(sqBytes);
        this.cqRing = singleMmap ? sqRing : LibC.mmap(cqBytes, prot, flags, ringFd, OFF_CQ_RING).reinterpret(cqBytes);
        this.sqes = LibC.mmap((long) SQE_BYTES * sqEntries, prot, flags, ringFd, OFF_SQES)
                .reinterpret((long) SQE_BYTES * sqEntries);
        this.sqMask = sqRing.get(ValueLayout.JAVA_INT, sqMaskOff);
        this.cqMask = cqRing.get(ValueLayout.JAVA_INT, cqMaskOff);
        for (int i = 0; i < sqEntries; i++) {
            sqRing.set(ValueLayout.JAVA_INT, sqArrayOff + 4L * i, i); // SQE i in slot i, once and for all
        }
        this.sqTail = (int) INT.getAcquire(sqRing, sqTailOff);
        this.cqHead = (int) INT.getAcquire(cqRing, cqHeadOff);
        this.fixedFd = fixedFd;
    }

    /**
     * A ring for capacity requests in flight; fd (if not -1) is registered as fixed file 0. Throws with one
     * sentence when the kernel has no usable io_uring.
     */
    public static IoUringEngine open(int capacity, int fd) throws IoEngineUnavailableException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment params = arena.allocate(120, 8);
            long rc = setup(capacity, params, SETUP_SUBMIT_ALL | (COOP ? SETUP_COOP_TASKRUN | SETUP_TASKRUN_FLAG : 0));
            if (rc == -Errno.EINVAL) {
                params.fill((byte) 0);
                rc = setup(capacity, params, 0); // a kernel before 5.18
            }
            if (rc < 0) {
                throw new IoEngineUnavailableException("io_uring_setup failed: " + Errno.describe((int) -rc)
                        + (rc == -Errno.ENOSYS || rc == -Errno.EPERM ? " (io_uring is disabled or filtered here)" : ""));
            }
            int ringFd = (int) rc;
            try {
                int registered = -1;
                if (fd >= 0) {
                    MemorySegment fds = arena.allocateFrom(ValueLayout.JAVA_INT, fd);
                    if (LibC.rawSyscall(SYS_REGISTER, ringFd, REGISTER_FILES, fds.address(), 1, 0, 0) == 0) {
                        registered = fd;
                    }
                }
                return new IoUringEngine(ringFd, params, capacity, registered);
            } catch (NativeCallException | RuntimeException e) {
                LibC.close(ringFd);
                throw new IoEngineUnavailableException("io_uring rings could not be mapped: " + e.getMessage());
            }
        }
    }

    private static long setup(int entries, MemorySegment params, int flags) {
        params.set(ValueLayout.JAVA_INT, 8, flags);
        return LibC.rawSyscall(SYS_SETUP, Math.max(entries, 1), params.address(), 0, 0, 0, 0);
    }

    @Override
    public String name() {
        return "io_uring";
    }

    @Override
    public void queue(IoRequest r) {
        tag(r);
        if (sqTail - (int) INT.getAcquire(sqRing, sqHeadOff) == sqEntries) {
            waiting.add(r); // the kernel has not taken earlier entries yet: after the next submit
            return;
        }
        writeSqe(r);
    }

    private void writeSqe(IoRequest r) {
        long o = (long) SQE_BYTES * (sqTail & sqMask);
        for (int i = 0; i < SQE_BYTES; i += 8) {
            sqes.set(ValueLayout.JAVA_LONG, o + i, 0L);
        }
        int fixed = r.fd == fixedFd && fixedFd >= 0 ? SQE_FIXED_FILE : 0;
        sqes.set(ValueLayout.JAVA_BYTE, o + 1, (byte) (fixed | (r.offload ? SQE_ASYNC : 0)));
        sqes.set(ValueLayout.JAVA_INT, o + 4, fixed != 0 ? 0 : r.fd);
        switch (r.op) {
            case IoRequest.READV, IoRequest.WRITEV -> {
                sqes.set(ValueLayout.JAVA_BYTE, o, (byte) (r.op == IoRequest.READV ? OP_READV : OP_WRITEV));
                sqes.set(ValueLayout.JAVA_LONG, o + 8, r.nextOffset());
                sqes.set(ValueLayout.JAVA_LONG, o + 16, r.iovAddress());
                sqes.set(ValueLayout.JAVA_INT, o + 24, r.iovCount());
            }
            case IoRequest.FDATASYNC -> {
                sqes.set(ValueLayout.JAVA_BYTE, o, (byte) OP_FSYNC);
                sqes.set(ValueLayout.JAVA_INT, o + 28, FSYNC_DATASYNC);
            }
            case IoRequest.FALLOCATE -> {
                // io_uring's fallocate: offset in off, length in addr, mode in len
                sqes.set(ValueLayout.JAVA_BYTE, o, (byte) OP_FALLOCATE);
                sqes.set(ValueLayout.JAVA_LONG, o + 8, r.offset);
                sqes.set(ValueLayout.JAVA_LONG, o + 16, r.length);
                sqes.set(ValueLayout.JAVA_INT, o + 24, r.fallocMode);
            }
            default -> throw new IllegalArgumentException("operation " + r.op);
        }
        sqes.set(ValueLayout.JAVA_LONG, o + 32, r.engineTag);
        sqTail++;
        toSubmit++;
    }

    @Override
    public void submit() {
        if (toSubmit == 0) {
            return;
        }
        INT.setRelease(sqRing, sqTailOff, sqTail);
        while (toSubmit > 0) {
            long rc = enter(toSubmit, 0, 0);
            if (rc > 0) {
                toSubmit -= (int) rc;
            } else if (rc != -Errno.EINTR) {
                if (rc != -Errno.EAGAIN && rc != -Errno.EBUSY && rc != 0) {
                    LOG.warnf("io_uring_enter: %s; retried with the next submission", Errno.describe((int) -rc));
                }
                return; // the entries stay in the ring and go with the next enter
            }
        }
    }

    private long enter(int count, int minComplete, int flags) {
        return LibC.syscallHot(SYS_ENTER, ringFd, count, minComplete, flags, 0, 0);
    }

    @Override
    public int reap(IoCompletionSink sink) {
        int n = deliverReady(sink);
        while (true) {
            int tail = (int) INT.getAcquire(cqRing, cqTailOff);
            if (tail == cqHead) {
                if (((int) INT.getAcquire(sqRing, sqFlagsOff) & (SQ_CQ_OVERFLOW | SQ_TASKRUN)) != 0) {
                    enter(0, 0, ENTER_GETEVENTS); // completions the full CQ ring could not take: flush them in
                    if ((int) INT.getAcquire(cqRing, cqTailOff) != cqHead) {
                        continue;
                    }
                }
                break;
            }
            while (cqHead != tail) {
                long o = cqesOff + (long) CQE_BYTES * (cqHead & cqMask);
                IoRequest r = tagged(cqRing.get(ValueLayout.JAVA_LONG, o));
                int res = cqRing.get(ValueLayout.JAVA_INT, o + 8);
                cqHead++;
                if (r == null) {
                    continue;
                }
                if (!r.answered(res)) {
                    queue(r); // the rest of a short transfer, or a retry
                    continue;
                }
                untag(r);
                deliver(r, sink);
                n++;
            }
            INT.setRelease(cqRing, cqHeadOff, cqHead);
        }
        n += deliverReady(sink); // what the continuations finished or were given back meanwhile
        requeueWaiting();
        submit();
        return n;
    }

    private void requeueWaiting() {
        while (!waiting.isEmpty() && sqTail - (int) INT.getAcquire(sqRing, sqHeadOff) < sqEntries) {
            writeSqe(waiting.poll());
        }
    }

    @Override
    public int completionFd() {
        return ringFd;
    }

    @Override
    public boolean hasCompletions() {
        return hasReady() || (int) INT.getAcquire(cqRing, cqTailOff) != cqHead
                || ((int) INT.getAcquire(sqRing, sqFlagsOff) & SQ_TASKRUN) != 0;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (inFlight() > 0) {
            LOG.warnf("io_uring closed with %d request(s) in flight", inFlight());
        }
        LibC.munmap(sqes.address(), sqes.byteSize());
        LibC.munmap(sqRing.address(), sqRingBytes);
        if (!singleMmap) {
            LibC.munmap(cqRing.address(), cqRingBytes);
        }
        if (fixedFd >= 0) {
            // the ring's own teardown runs later, in the kernel's time: the file (and its OFD lock, which the
            // next user of the image needs) is let go now
            LibC.rawSyscall(SYS_REGISTER, ringFd, UNREGISTER_FILES, 0, 0, 0, 0);
        }
        LibC.close(ringFd); // the kernel cancels or finishes what is still in flight
    }
}

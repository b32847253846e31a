package dev.vhostappliance.block.io;

import dev.vhostappliance.libc.Errno;
import dev.vhostappliance.libc.LibC;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * One block operation on its way through an {@link IoEngine}: what to do (set by a node with one of the
 * {@code prepare} methods), and the engine's progress on it. Requests are allocated once and reused; an
 * engine never allocates per request. Engines finish transfers the kernel did only in part (short reads and
 * writes, more than {@link #IOV_MAX} buffers) by resubmitting the rest, retry {@code -EINTR}/{@code -EAGAIN},
 * and report one result: 0 or -errno.
 */
public class IoRequest {
    /** Engine operations. */
    public static final int READV = 1;
    public static final int WRITEV = 2;
    public static final int FDATASYNC = 3;
    public static final int FALLOCATE = 4;
    /** Linux's limit on iovecs in one preadv/pwritev (and one io_uring READV). */
    public static final int IOV_MAX = 1024;

    int op;
    int fd;
    long offset;
    long length;
    /** struct iovec array of a transfer, and how many of its entries are left from iovStart. */
    MemorySegment iov;
    int iovEnd;
    int iovStart;
    int fallocMode;
    /** The rbd image (rbd_image_t) of a request for the rbd engine, else NULL. */
    MemorySegment image = MemorySegment.NULL;
    long done;
    /** Runs when the operation failed, on the queue thread, and may turn the failure into a result. */
    IoFallback fallback;
    /** 0 or -errno once complete. */
    int result;
    /** Run in the kernel's worker threads rather than inline at submission (large copies from the page cache). */
    boolean offload;
    /** The engine's handle on this request while it is in the engine (io_uring user_data), else -1. */
    int engineTag = -1;
    /** The thread-pool engine this request runs on, while it is there. */
    ThreadPoolEngine pool;
    /** Intrusive lists of the engines (ready or waiting to be queued): no allocation. */
    IoRequest next;
    /** The node's next step once the engine finishes this request ({@link IoContinuation}); cleared as it runs. */
    IoContinuation then;
    /** What a node holding this request back means to do with it (its own code), see {@link #hold}. */
    private int heldKind;

    /** A vectored read of length bytes into the iovCount iovecs at iov. */
    public final void prepareRead(int fd, MemorySegment iov, int iovCount, long offset, long length) {
        prepareTransfer(READV, fd, iov, iovCount, offset, length);
    }

    /** A vectored write of length bytes from the iovCount iovecs at iov. */
    public final void prepareWrite(int fd, MemorySegment iov, int iovCount, long offset, long length) {
        prepareTransfer(WRITEV, fd, iov, iovCount, offset, length);
    }

    private void prepareTransfer(int op, int fd, MemorySegment iov, int iovCount, long offset, long length) {
        this.op = op;
        this.fd = fd;
        this.iov = iov;
        this.iovStart = 0;
        this.iovEnd = iovCount;
        this.offset = offset;
        this.length = length;
        this.done = 0;
        this.fallback = null;
        this.result = 0;
        this.offload = false;
        this.image = MemorySegment.NULL;
    }

    /** The request is for the rbd image (an rbd_image_t), not a file: call after prepare. */
    public final void onImage(MemorySegment image) {
        this.image = image;
    }

    /**
     * Asks the engine to run this request on the kernel's worker threads instead of inline when it is
     * submitted: a large copy from the page cache then runs on another core while the queue thread goes on
     * (io_uring's IOSQE_ASYNC; other engines ignore it). Call after prepare.
     */
    public final void offload() {
        this.offload = true;
    }

    public final void prepareDatasync(int fd) {
        prepareTransfer(FDATASYNC, fd, null, 0, 0, 0);
    }

    /** fallocate(fd, mode, offset, length); fallback (if any) runs when the kernel refuses it. */
    public final void prepareFallocate(int fd, int mode, long offset, long length, IoFallback fallback) {
        prepareTransfer(FALLOCATE, fd, null, 0, offset, length);
        this.fallocMode = mode;
        this.fallback = fallback;
    }

    /**
     * Sets the node's next step for when the engine finishes this request: after the node started it on an
     * engine (prepare resets nothing of it), or before it gives the request to another thread's engine.
     */
    public final void then(IoContinuation next) {
        this.then = next;
    }

    /**
     * A node keeps a request back (a write to a cluster another request is allocating): what it is to do
     * later, in the request itself, so nothing is allocated. Read back with {@link #heldKind}, {@link #iov},
     * {@link #iovEntries}, {@link #offset} and {@link #length}.
     */
    public final void hold(int kind, MemorySegment iov, int iovCount, long offset, long length) {
        prepareTransfer(0, -1, iov, iovCount, offset, length);
        this.heldKind = kind;
    }

    public final int heldKind() {
        return heldKind;
    }

    /** The iovec array of the transfer (of a held request: as it was given). */
    public final MemorySegment iov() {
        return iov;
    }

    /** iovecs in {@link #iov} (of a held request: as it was given). */
    public final int iovEntries() {
        return iovEnd;
    }

    public final int op() {
        return op;
    }

    public final int fd() {
        return fd;
    }

    public final long offset() {
        return offset;
    }

    public final long length() {
        return length;
    }

    public final int fallocMode() {
        return fallocMode;
    }

    /** The result: 0, or -errno. */
    public final int result() {
        return result;
    }

    /** Overrides the result (a node or device deciding what a failure means). */
    public final void setResult(int result) {
        this.result = result;
    }

    // ------------------------------------------------------------------ for the engines

    /** Address of the first iovec still to transfer. */
    final long iovAddress() {
        return iov.address() + 16L * iovStart;
    }

    /** iovecs to hand the kernel in the next submission (at most IOV_MAX). */
    final int iovCount() {
        return Math.min(iovEnd - iovStart, IOV_MAX);
    }

    /** File offset of the next submission. */
    final long nextOffset() {
        return offset + done;
    }

    /**
     * The kernel's answer res to the last submission; returns true when the request is complete (result set),
     * false when the engine must submit it again (the rest of a transfer, or a retry).
     */
    final boolean answered(long res) {
        if (res == -Errno.EINTR || res == -Errno.EAGAIN) {
            return false;
        }
        if (res < 0) {
            result = (int) res;
            if (fallback != null) {
                result = fallback.failed(this, result);
            }
            return true;
        }
        if (op != READV && op != WRITEV) {
            result = 0;
            return true;
        }
        if (res == 0 && done < length) {
            if (op == WRITEV) {
                result = -Errno.ENOSPC;
                return true;
            }
            zeroRest(); // a read at the end of the file: the rest reads as zeroes (QEMU's raw driver does too)
            result = 0;
            return true;
        }
        done += res;
        if (done >= length) {
            result = 0;
            return true;
        }
        iovStart = NativeMemory.consumeIovecs(iov, iovStart, iovEnd, res);
        return false;
    }

    private void zeroRest() {
        for (int i = iovStart; i < iovEnd; i++) {
            long base = iov.get(ValueLayout.JAVA_LONG, 16L * i);
            long len = iov.get(ValueLayout.JAVA_LONG, 16L * i + 8);
            NativeMemory.zero(base, len);
        }
    }

    /** Runs the whole operation synchronously on this thread: short transfers continued, EINTR retried. */
    final void runToCompletion() {
        while (!answered(runSynchronously())) {
            // the rest of a short transfer, or a retry after EINTR/EAGAIN
        }
    }

    private static final boolean AARCH64 = "aarch64".equals(System.getProperty("os.arch"));
    private static final long SYS_PREADV = AARCH64 ? 69 : 295;
    private static final long SYS_PWRITEV = AARCH64 ? 70 : 296;
    private static final long SYS_FDATASYNC = AARCH64 ? 83 : 75;
    private static final long SYS_FALLOCATE = AARCH64 ? 47 : 285;

    /**
     * Runs the operation synchronously on this thread (the inline and thread-pool engines, AIO's flushes);
     * -errno or bytes. Raw system calls without errno capture unless they fail (see LibC.syscallHot): the
     * pool's threads allocate nothing either. preadv/pwritev take the offset as (low, high) words.
     */
    final long runSynchronously() {
        return switch (op) {
            case READV -> LibC.syscallHot(SYS_PREADV, fd, iovAddress(), iovCount(), nextOffset(), 0, 0);
            case WRITEV -> LibC.syscallHot(SYS_PWRITEV, fd, iovAddress(), iovCount(), nextOffset(), 0, 0);
            case FDATASYNC -> LibC.syscallHot(SYS_FDATASYNC, fd, 0, 0, 0, 0, 0);
            case FALLOCATE -> LibC.syscallHot(SYS_FALLOCATE, fd, fallocMode, offset, length, 0, 0);
            default -> -Errno.EINVAL;
        };
    }
}

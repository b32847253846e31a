package dev.vhostappliance.block.io;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.vhostappliance.block.rbd.Librbd;
import dev.vhostappliance.libc.Errno;
import dev.vhostappliance.libc.LibC;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;

/**
 * The engine of rbd nodes: librbd's asynchronous calls ({@code rbd_aio_readv}/{@code writev} straight into
 * guest memory, {@code flush}, {@code discard}, {@code write_zeroes}), as many in flight as the queue has.
 * librbd finishes them on its own threads through one completion callback (an FFM upcall) that takes the
 * result, releases the completion, puts the request's tag on this engine's done list and wakes the queue
 * thread through an eventfd. Nothing is allocated per request: the callback's argument is the engine's slot
 * and the request's tag, not an object.
 *
 * <p>A request librbd still holds when the engine closes (a queue stopped while the cluster is away) keeps its
 * slot: the slot is reused only after librbd's last callback for it, so a late callback never reaches another
 * engine; the request itself is never delivered, so the guest memory it points into stays referenced.
 */
public final class RbdEngine extends ForeignCompletionEngine {
    /** The completion callback: void (*)(rbd_completion_t, void *arg), pointers as words. */
    private static final MemorySegment CALLBACK = Librbd.available() ? Librbd.upcall(MethodHandles.lookup(), "librbdCompleted",
            MethodType.methodType(void.class, long.class, long.class), FunctionDescriptor.ofVoid(JAVA_LONG, JAVA_LONG)) : null;
    /** Engines by slot, for the callback. */
    private static volatile RbdEngine[] slots = new RbdEngine[16];

    private final int slot;
    /** rbd_aio_create_completion's out parameter (only the queue thread submits). */
    private final MemorySegment completionOut = Arena.ofAuto().allocate(8, 8);
    private final RequestList queued = new RequestList();
    /** Finished by librbd, not reaped yet: tags and results, guarded by doneLock. */
    private final int[] doneTags;
    private final long[] results;
    private int doneCount;
    private final int[] reaping;
    /** Requests librbd holds (guarded by doneLock). */
    private int inLibrbd;

    private RbdEngine(int capacity) throws IoEngineUnavailableException {
        super(capacity, true);
        this.doneTags = new int[capacity];
        this.reaping = new int[capacity];
        this.results = new long[capacity];
        this.slot = claimSlot(this);
    }

    public static RbdEngine open(int capacity) throws IoEngineUnavailableException {
        if (CALLBACK == null) {
            throw new IoEngineUnavailableException("librbd cannot be loaded");
        }
        return new RbdEngine(capacity);
    }

    private static synchronized int claimSlot(RbdEngine e) {
        RbdEngine[] s = slots;
        for (int i = 0; i < s.length; i++) {
            if (s[i] == null) {
                s[i] = e;
                return i;
            }
        }
        RbdEngine[] grown = java.util.Arrays.copyOf(s, s.length * 2);
        grown[s.length] = e;
        slots = grown;
        return s.length;
    }

    private static synchronized void freeSlot(int slot) {
        slots[slot] = null;
    }

    @Override
    public String name() {
        return "rbd";
    }

    @Override
    public void queue(IoRequest r) {
        tag(r);
        queued.add(r);
    }

    @Override
    public void submit() {
        IoRequest r;
        while ((r = queued.poll()) != null) {
            int rc = start(r);
            if (rc < 0) { // refused at once (bad arguments): no callback comes
                untag(r);
                r.result = rc;
                finishedHere(r);
            }
        }
    }

    /** Hands r to librbd; 0, or -errno if librbd refused it (then no callback comes). */
    private int start(IoRequest r) {
        int tag = r.engineTag;
        long completion;
        try {
            int rc = (int) Librbd.AIO_CREATE_COMPLETION.invokeExact(((long) slot << 32) | tag, CALLBACK, completionOut);
            if (rc < 0) {
                return rc;
            }
            completion = completionOut.get(ValueLayout.JAVA_LONG, 0);
            synchronized (doneLock) {
                inLibrbd++;
            }
            rc = switch (r.op) {
                case IoRequest.READV -> (int) Librbd.AIO_READV.invokeExact(r.image, r.iov.address(), r.iovEnd, r.offset, completion);
                case IoRequest.WRITEV -> (int) Librbd.AIO_WRITEV.invokeExact(r.image, r.iov.address(), r.iovEnd, r.offset, completion);
                case IoRequest.FDATASYNC -> (int) Librbd.AIO_FLUSH.invokeExact(r.image, completion);
                case IoRequest.FALLOCATE -> (r.fallocMode & LibC.FALLOC_FL_PUNCH_HOLE) != 0
                        ? (int) Librbd.AIO_DISCARD.invokeExact(r.image, r.offset, r.length, completion)
                        : (int) Librbd.AIO_WRITE_ZEROES.invokeExact(r.image, r.offset, r.length, completion, 0, 0);
                default -> -Errno.EINVAL;
            };
            if (rc < 0) {
                Librbd.AIO_RELEASE.invokeExact(completion);
                synchronized (doneLock) {
                    inLibrbd--;
                }
            }
            return rc;
        } catch (Throwable t) {
            throw new IllegalStateException("librbd call failed", t);
        }
    }

    /** librbd finished the request with tag (on one of its threads): onto the done list, the queue thread woken. */
    private void librbdFinished(int tag, long result) {
        synchronized (doneLock) {
            inLibrbd--;
            if (closed) {
                if (inLibrbd == 0) {
                    freeSlot(slot);
                }
                return;
            }
            boolean wasEmpty = doneCount == 0;
            results[tag] = result;
            doneTags[doneCount++] = tag;
            signalLocked(wasEmpty);
        }
    }

    /** The completion callback (an upcall on a librbd thread): never throws into native code. */
    private static void librbdCompleted(long completion, long arg) {
        try {
            long result = (long) Librbd.AIO_GET_RETURN_VALUE.invokeExact(completion);
            Librbd.AIO_RELEASE.invokeExact(completion);
            RbdEngine e = slots[(int) (arg >>> 32)];
            if (e != null) {
                e.librbdFinished((int) arg, result);
            }
        } catch (Throwable t) {
            // an upcall that throws ends the process; nothing here should, and losing one completion is the
            // lesser harm (its request stays in flight)
        }
    }

    @Override
    public int reap(IoCompletionSink sink) {
        int n = 0;
        if (anyDone()) {
            int count;
            synchronized (doneLock) {
                count = doneCount;
                System.arraycopy(doneTags, 0, reaping, 0, count);
                doneCount = 0;
                takenLocked();
            }
            for (int i = 0; i < count; i++) {
                int tag = reaping[i];
                IoRequest r = tagged(tag);
                if (r == null) {
                    continue;
                }
                long res = results[tag];
                untag(r);
                r.result = res >= 0 ? 0 : (int) res;
                if (r.result < 0 && r.fallback != null) {
                    r.result = r.fallback.failed(r, r.result);
                }
                deliver(r, sink);
                n++;
            }
        }
        n += deliverReady(sink);
        submit(); // the next steps the sink queued
        return n;
    }

    /** A request librbd still holds keeps the slot until its callback (see the class comment). */
    @Override
    void closedLocked() {
        if (inLibrbd == 0) {
            freeSlot(slot);
        }
    }
}

package dev.vhostappliance.block.io;

/**
 * What every engine keeps: its capacity and in-flight count, the requests finished without I/O
 * ({@link #completeNow}), and for engines whose kernel interface carries a 64-bit cookie (io_uring's
 * user_data, an iocb's aio_data), a table from tags to requests with the free tags on a stack.
 */
abstract class AbstractIoEngine implements IoEngine {
    private final int capacity;
    private int inFlight;
    private final RequestList ready = new RequestList();
    private final IoRequest[] byTag;
    private final int[] freeTags;
    private int freeTop;
    /** Requests other threads resumed ({@link #resumeFromAnyThread}): guarded by resumedLock. */
    private final Object resumedLock = new Object();
    private final RequestList resumed = new RequestList();
    private volatile boolean anyResumed;
    private volatile Runnable waker = () -> { };

    AbstractIoEngine(int capacity, boolean tagged) {
        this.capacity = capacity;
        this.byTag = tagged ? new IoRequest[capacity] : null;
        this.freeTags = tagged ? new int[capacity] : null;
        for (int i = 0; tagged && i < capacity; i++) {
            freeTags[i] = capacity - 1 - i;
        }
        this.freeTop = tagged ? capacity : 0;
    }

    @Override
    public final int capacity() {
        return capacity;
    }

    @Override
    public final int inFlight() {
        return inFlight;
    }

    @Override
    public final void completeNow(IoRequest r, int result) {
        inFlight++;
        r.result = result;
        ready.add(r);
    }

    /** A request enters the engine (not a resubmission of one already in it). */
    final void entered() {
        inFlight++;
    }

    /** A request already in the engine finished on this thread: it waits with the others to be reaped. */
    final void finishedHere(IoRequest r) {
        ready.add(r);
    }

    @Override
    public final void resumeFromAnyThread(IoRequest r) {
        synchronized (resumedLock) {
            resumed.add(r);
            anyResumed = true;
        }
        waker.run();
    }

    @Override
    public final void setWaker(Runnable waker) {
        this.waker = waker;
    }

    /** r finished: it leaves the engine and goes to sink, unless its continuation takes it further. */
    final void deliver(IoRequest r, IoCompletionSink sink) {
        inFlight--;
        IoContinuation next = r.then;
        if (next != null) {
            r.then = null;
            if (!next.resume(this, r)) {
                return;
            }
        }
        sink.completed(r);
    }

    /**
     * Delivers the requests finished without I/O and those other threads resumed, including what their
     * continuations finish in turn; returns how many.
     */
    final int deliverReady(IoCompletionSink sink) {
        int n = 0;
        while (true) {
            IoRequest r = ready.poll();
            if (r == null && anyResumed) {
                synchronized (resumedLock) {
                    r = resumed.poll();
                    anyResumed = !resumed.isEmpty();
                }
                if (r != null) {
                    inFlight++; // it comes back into this engine
                }
            }
            if (r == null) {
                return n;
            }
            deliver(r, sink);
            n++;
        }
    }

    final boolean hasReady() {
        return !ready.isEmpty() || anyResumed;
    }

    /** The tag of r, given one (and counted in flight) the first time it enters the engine. */
    final int tag(IoRequest r) {
        if (r.engineTag < 0) {
            if (freeTop == 0) {
                throw new IllegalStateException(name() + " engine full: " + capacity + " requests in flight");
            }
            r.engineTag = freeTags[--freeTop];
            byTag[r.engineTag] = r;
            inFlight++;
        }
        return r.engineTag;
    }

    /** The request with tag, or null for a tag the kernel made up. */
    final IoRequest tagged(long tag) {
        return tag >= 0 && tag < byTag.length ? byTag[(int) tag] : null;
    }

    /** r is done with the kernel: its tag is free again. */
    final void untag(IoRequest r) {
        byTag[r.engineTag] = null;
        freeTags[freeTop++] = r.engineTag;
        r.engineTag = -1;
    }
}

package dev.vhostappliance.block.io;


/**
 * {@code aio=threads}: synchronous system calls (preadv/pwritev/fdatasync/fallocate) on a small pool of
 * threads shared by every queue of the process, as QEMU's thread pool does for it: a queue thread hands a
 * whole batch over at once and goes on; finished requests come back on a list and an eventfd the queue thread
 * sleeps on. Requests travel through lists linked in the requests themselves and the locks are monitors, so
 * no thread allocates per request.
 */
public final class ThreadPoolEngine extends ForeignCompletionEngine {
    private final RequestList batch = new RequestList();
    /** Finished by the pool, not reaped yet: guarded by doneLock. */
    private final RequestList done = new RequestList();

    private ThreadPoolEngine(int capacity) throws IoEngineUnavailableException {
        super(capacity, false);
    }

    public static ThreadPoolEngine open(int capacity) throws IoEngineUnavailableException {
        return new ThreadPoolEngine(capacity);
    }

    @Override
    public String name() {
        return "threads";
    }

    @Override
    public void queue(IoRequest r) {
        entered();
        r.pool = this;
        batch.add(r);
    }

    @Override
    public void submit() {
        if (!batch.isEmpty()) {
            Pool.INSTANCE.run(batch.first(), batch.last());
            batch.clear();
        }
    }

    /** A pool thread finished r: onto the done list, and the queue thread is woken if the list was empty. */
    void finished(IoRequest r) {
        synchronized (doneLock) {
            if (closed) {
                return;
            }
            boolean wasEmpty = done.isEmpty();
            done.add(r);
            signalLocked(wasEmpty);
        }
    }

    @Override
    public int reap(IoCompletionSink sink) {
        IoRequest first = null;
        if (anyDone()) {
            synchronized (doneLock) {
                first = done.first();
                done.clear();
                takenLocked();
            }
        }
        int n = 0;
        while (first != null) {
            IoRequest r = first;
            first = r.next;
            r.next = null;
            r.pool = null;
            deliver(r, sink);
            n++;
        }
        n += deliverReady(sink);
        submit(); // the next steps the sink queued
        return n;
    }

    /** The process's I/O threads: started on demand up to {@link #MAX_THREADS}, ended after a quiet while. */
    static final class Pool {
        static final Pool INSTANCE = new Pool();
        /** Like QEMU's thread pool (max 64), smaller: one process serves many devices on few cores. */
        static final int MAX_THREADS = Integer.getInteger("vhost.aio-threads", 16);
        private static final long IDLE_MILLIS = 10_000;
        private IoRequest head;
        private IoRequest tail;
        private int threads;
        private int idle;
        private int queued;

        synchronized void run(IoRequest first, IoRequest last) {
            int n = 0;
            for (IoRequest r = first; r != null; r = r.next) {
                n++;
            }
            if (tail == null) {
                head = first;
            } else {
                tail.next = first;
            }
            tail = last;
            queued += n;
            int wake = Math.min(idle, n);
            for (int i = 0; i < wake; i++) {
                notify();
            }
            while (queued > idle && threads < MAX_THREADS) {
                threads++;
                idle++; // counted as waiting until it takes work
                Thread.ofPlatform().name("aio-worker-" + threads).daemon(true).start(this::work);
            }
        }

        private void work() {
            while (true) {
                IoRequest r;
                synchronized (this) {
                    long until = System.currentTimeMillis() + IDLE_MILLIS;
                    while (head == null) {
                        long left = until - System.currentTimeMillis();
                        if (left <= 0) {
                            threads--;
                            idle--;
                            return;
                        }
                        try {
                            wait(left);
                        } catch (InterruptedException e) {
                            threads--;
                            idle--;
                            return;
                        }
                    }
                    r = head;
                    head = r.next;
                    if (head == null) {
                        tail = null;
                    }
                    r.next = null;
                    queued--;
                    idle--;
                }
                r.runToCompletion();
                ThreadPoolEngine owner = r.pool;
                synchronized (this) {
                    idle++;
                }
                owner.finished(r);
            }
        }
    }
}

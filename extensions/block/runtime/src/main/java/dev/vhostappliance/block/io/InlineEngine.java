package dev.vhostappliance.block.io;

/**
 * Every request runs as a synchronous system call on the queue thread when it is submitted
 * (preadv/pwritev/fdatasync/fallocate), then is reaped like an asynchronous one: the engine of nodes that do
 * no I/O of their own (null-co completes at once), and what a queue runs when the kernel refuses the engine
 * it asked for and no eventfd can be had for the thread pool either.
 */
public final class InlineEngine extends AbstractIoEngine {
    private final RequestList queued = new RequestList();

    public InlineEngine(int capacity) {
        super(capacity, false);
    }

    @Override
    public String name() {
        return "inline";
    }

    @Override
    public void queue(IoRequest r) {
        entered();
        queued.add(r);
    }

    @Override
    public void submit() {
        for (IoRequest r = queued.poll(); r != null; r = queued.poll()) {
            r.runToCompletion();
            finishedHere(r);
        }
    }

    @Override
    public int reap(IoCompletionSink sink) {
        int n = 0;
        do {
            submit(); // what the sink queued (the next step of a request) runs now
            n += deliverReady(sink);
        } while (!queued.isEmpty());
        return n;
    }

    @Override
    public int completionFd() {
        return -1;
    }

    @Override
    public boolean hasCompletions() {
        return hasReady() || !queued.isEmpty();
    }

    @Override
    public void close() {
    }
}

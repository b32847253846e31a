package dev.vhostappliance.block.io;

/**
 * Every request runs as a synchronous system call on the queue thread when it is submitted
 * (preadv/pwritev/fdatasync/fallocate), then is reaped like an asynchronous one: the engine of nodes that do
 * no I/O of their own (null-co completes at once), and what a queue runs when the kernel refuses the engine
 * it asked for and no eventfd can be had for the thread pool either.
 */
public final class InlineEngine implements IoEngine {
    private final int capacity;
    private final ReadyList ready = new ReadyList();
    private IoRequest queuedHead;
    private IoRequest queuedTail;
    private int inFlight;

    public InlineEngine(int capacity) {
        this.capacity = capacity;
    }

    @Override
    public String name() {
        return "inline";
    }

    @Override
    public int capacity() {
        return capacity;
    }

    @Override
    public int inFlight() {
        return inFlight;
    }

    @Override
    public void queue(IoRequest r) {
        inFlight++;
        r.next = null;
        if (queuedTail == null) {
            queuedHead = r;
        } else {
            queuedTail.next = r;
        }
        queuedTail = r;
    }

    @Override
    public void completeNow(IoRequest r, int result) {
        inFlight++;
        ready.add(r, result);
    }

    @Override
    public void submit() {
        while (queuedHead != null) {
            IoRequest r = queuedHead;
            queuedHead = r.next;
            if (queuedHead == null) {
                queuedTail = null;
            }
            while (!r.answered(r.runSynchronously())) {
                // the rest of a short transfer, or a retry after EINTR/EAGAIN
            }
            ready.add(r, r.result);
        }
    }

    @Override
    public int reap(IoCompletionSink sink) {
        int n = 0;
        while (true) {
            submit(); // what the sink queued (the next step of a request) runs now
            IoRequest r = ready.poll();
            if (r == null) {
                return n;
            }
            inFlight--;
            n++;
            sink.completed(r);
        }
    }

    @Override
    public int completionFd() {
        return -1;
    }

    @Override
    public boolean hasCompletions() {
        return !ready.isEmpty() || queuedHead != null;
    }

    @Override
    public void close() {
    }
}

package dev.vhostappliance.block.io;

import dev.vhostappliance.libc.NativeCallException;
import dev.vhostappliance.server.Poll;

/**
 * The asynchronous I/O of one queue thread: requests are queued, handed to the kernel together by
 * {@link #submit()}, and come back, in any order, through {@link #reap}. One engine serves one thread;
 * nothing here is thread-safe and nothing allocates per request. The queue thread waits for completions on
 * {@link #completionFd()} next to its virtqueue's kick.
 */
public interface IoEngine extends AutoCloseable {

    /** The engine's name as qemu-storage-daemon spells the aio= option ({@code io_uring}, {@code native}, ...). */
    String name();

    /** Requests this engine can have in flight at once (queued, submitted or ready to reap). */
    int capacity();

    /** Requests queued, in the kernel, or ready to reap. */
    int inFlight();

    /** Queues a prepared request; it reaches the kernel at the latest with the next {@link #submit()}. */
    void queue(IoRequest request);

    /** Finishes a request without I/O (null-co, a refused request): it is reaped like any other. */
    void completeNow(IoRequest request, int result);

    /** Hands every queued request to the kernel (one system call where the engine allows). */
    void submit();

    /** Delivers every finished request to sink; returns how many. Resubmissions are queued and submitted. */
    int reap(IoCompletionSink sink);

    /** Readable while completions wait to be reaped; -1 if completions only ever come from completeNow. */
    int completionFd();

    /** True if {@link #reap} would deliver something (one memory read where the engine allows). */
    boolean hasCompletions();

    /**
     * From any thread: r, which a node held back (a write waiting for a cluster another queue is allocating),
     * comes back to this engine's thread, where its continuation runs at the next {@link #reap}. The engine's
     * waker tells the thread to reap.
     */
    void resumeFromAnyThread(IoRequest r);

    /** How another thread makes this engine's queue thread reap ({@link #resumeFromAnyThread}); from any thread. */
    void setWaker(Runnable waker);

    /**
     * Submits what is queued and reaps into sink until nothing is in flight, waiting on {@link #completionFd()}
     * with poll (the caller's, reused) in between; gives up at deadline (System.nanoTime(), Long.MAX_VALUE:
     * never). True when idle. For a caller that waits for its requests (one at a time, or all at its end).
     */
    default boolean awaitIdle(IoCompletionSink sink, Poll poll, long deadline) throws NativeCallException {
        submit();
        while (inFlight() > 0) {
            if (deadline != Long.MAX_VALUE && System.nanoTime() - deadline >= 0) {
                return false;
            }
            if (!hasCompletions() && completionFd() >= 0) {
                poll.clear().add(completionFd());
                poll.await(10);
            }
            reap(sink);
        }
        return true;
    }

    /** Releases the kernel's resources; requests still in flight are abandoned. */
    @Override
    void close();
}

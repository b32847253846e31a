package dev.vhostappliance.block.io;

import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.NativeCallException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * An engine whose requests finish on other threads (a thread pool's, librbd's): they put what finished on a
 * list of the subclass's under {@link #doneLock} and wake the queue thread through an eventfd, written when the
 * list turns non-empty and cleared when the queue thread takes the list. Nothing allocates per request.
 */
abstract class ForeignCompletionEngine extends AbstractIoEngine {
    private static final MemorySegment ONE = Arena.global().allocate(8, 8);

    static {
        ONE.set(ValueLayout.JAVA_LONG, 0, 1L);
    }

    /** Guards the subclass's list of finished requests, and {@link #closed}. */
    final Object doneLock = new Object();
    private final int eventFd;
    private final MemorySegment drained = Arena.ofAuto().allocate(8, 8);
    /** Set under doneLock, read without it. */
    private volatile boolean anyDone;
    /** Under doneLock: after {@link #close()} nothing is signalled again. */
    boolean closed;

    ForeignCompletionEngine(int capacity, boolean tagged) throws IoEngineUnavailableException {
        super(capacity, tagged);
        try {
            this.eventFd = LibC.eventfd(0, LibC.EFD_NONBLOCK | LibC.EFD_CLOEXEC);
        } catch (NativeCallException e) {
            throw new IoEngineUnavailableException("eventfd failed: " + e.getMessage());
        }
    }

    /** Under doneLock, on the finishing thread, after adding to the list: wakes the queue thread if it was empty. */
    final void signalLocked(boolean wasEmpty) {
        anyDone = true;
        if (wasEmpty) {
            LibC.writeWord(eventFd, ONE);
        }
    }

    /** Under doneLock, on the queue thread, as it takes the whole list: the wake-up is consumed. */
    final void takenLocked() {
        anyDone = false;
        LibC.readWord(eventFd, drained); // clears the counter (non-blocking)
    }

    /** True while finished requests wait on the list (read without the lock). */
    final boolean anyDone() {
        return anyDone;
    }

    @Override
    public final int completionFd() {
        return eventFd;
    }

    @Override
    public final boolean hasCompletions() {
        return anyDone || hasReady();
    }

    /** Closes the eventfd once, under doneLock; then {@link #closedLocked()} runs (still under it). */
    @Override
    public final void close() {
        synchronized (doneLock) {
            if (!closed) {
                closed = true; // what finishes later goes nowhere: the fd is never written again
                LibC.close(eventFd);
                closedLocked();
            }
        }
    }

    /** What the subclass releases as it closes, under doneLock. */
    void closedLocked() {
    }
}

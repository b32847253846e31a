package dev.vhostappliance.protocol;

import dev.vhostappliance.device.VirtioDevice;
import dev.vhostappliance.libc.Errno;
import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.NativeCallException;
import dev.vhostappliance.server.Poll;
import dev.vhostappliance.server.Wakeup;
import dev.vhostappliance.virtqueue.SplitVirtqueue;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.ReentrantLock;
import org.jboss.logging.Logger;

/**
 * The thread that serves one started virtqueue: waits for a kick (or a control wake-up), then lets the
 * device handle the queue. The protocol thread never waits on device I/O; it only pauses a worker
 * ({@link #pause()}, which waits for the current batch to end) to change what the worker uses (memory
 * table, call fd), and stops it for GET_VRING_BASE, reset and disconnect.
 */
final class QueueWorker implements Runnable {
    private static final Logger LOG = Logger.getLogger(QueueWorker.class);
    /** With no kick fd (the NOFD flag), the queue is polled at this interval. */
    private static final int NOFD_POLL_MILLIS = 1;
    /**
     * How long a worker keeps looking at its ring after it ran empty before sleeping in poll(2) (like
     * QEMU's iothread poll-max-ns, same default): waking a sleeping thread costs far more than that on
     * virtual machines. 0 disables polling. System property {@code vhost.poll-ns}.
     */
    static final long POLL_NANOS = Long.getLong("vhost.poll-ns", 32_768);
    /**
     * Poll also while the device's requests wait on a device outside the process (a disk, the network), which a
     * spinning thread only slows down ({@code -Dvhost.poll-in-flight=true}: an A/B switch; README
     * "Benchmark: against qemu-storage-daemon").
     */
    static final boolean POLL_IN_FLIGHT = Boolean.getBoolean("vhost.poll-in-flight");
    /** Workers polling now, over all devices of the process. */
    private static final AtomicInteger POLLING = new AtomicInteger();
    /**
     * With as many pollers as CPUs, each one yields its CPU every fourth look: the clients' threads (and the
     * kernel's work) would otherwise wait for a poller's time slice to end ({@code -Dvhost.poll-yield=false}:
     * an A/B switch; README "Benchmark: against qemu-storage-daemon").
     */
    private static final boolean YIELD = Boolean.parseBoolean(System.getProperty("vhost.poll-yield", "true"));
    private static final int CPUS = Runtime.getRuntime().availableProcessors();

    private final VirtioDevice device;
    private final int index;
    private final ReentrantLock lock = new ReentrantLock();
    private final Wakeup control;
    private final Thread thread;
    private final SplitVirtqueue queue;
    private volatile int kickFd;
    private volatile boolean enabled;
    private volatile boolean stopping;
    /** How the ring stops: with drain its completions still reach the guest, without they are dropped. */
    private volatile boolean drainOnStop;
    /** Guards the control fd against a wake-up from a device thread racing its close (the number may be reused). */
    private final Object controlLock = new Object();
    /** The current polling window (ns), adapted after every wait; -1 until first used. */
    private long adaptivePollNanos = -1;
    private boolean controlClosed;

    QueueWorker(VirtioDevice device, int index, SplitVirtqueue queue, int kickFd, boolean enabled)
            throws NativeCallException {
        this.device = device;
        this.index = index;
        this.queue = queue;
        this.kickFd = kickFd;
        this.enabled = enabled;
        this.control = new Wakeup();
        this.thread = Thread.ofPlatform().name("vq-" + index).daemon(true).unstarted(this);
    }

    void start() {
        thread.start();
    }

    SplitVirtqueue queue() {
        return queue;
    }

    /** Waits until the worker is between batches and keeps it there until {@link #resume()}. */
    void pause() {
        SplitVirtqueue q = queue;
        q.requestYield(true); // a guest that keeps the queue busy must not keep us waiting
        lock.lock();
        q.requestYield(false);
    }

    /** Lets the worker run again and makes it look at the queue once (buffers may have come meanwhile). */
    void resume() {
        lock.unlock();
        poke();
    }

    void setEnabled(boolean on) {
        enabled = on;
        poke();
    }

    /** Makes the worker run the queue once more; from any thread. Nothing is missed across pause/enable. */
    void poke() {
        synchronized (controlLock) {
            if (!stopping && !controlClosed) {
                control.poke();
            }
        }
    }

    /** Requests in flight on other threads get this long to complete when the ring stops. */
    static final long DRAIN_MILLIS = 30_000;

    /**
     * Stops the thread. With drain (GET_VRING_BASE, reset) it then waits, bounded, for requests the device
     * still completes on other threads, so the index returned is final; on a disconnect it does not wait
     * (each request in flight keeps its guest memory mapped until it completes). Later completions are
     * dropped. The kick fd is the caller's to close.
     */
    void stop(boolean drain) {
        drainOnStop = drain;
        stopping = true;
        control.signal();
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        queue.stop(drain ? DRAIN_MILLIS : 0);
        synchronized (controlLock) {
            controlClosed = true;
            control.close();
        }
    }

    @Override
    public void run() {
        Poll poll = new Poll(3);
        MemorySegment drain = Arena.ofAuto().allocate(8, 8);
        boolean pending = true; // look once at start: buffers may be there already (reconnect, late enable)
        long idleSince = -1;
        try {
            lock.lock();
            try {
                queue.notifyDriverOnStart();
            } finally {
                lock.unlock();
            }
            while (!stopping) {
                if (pending) {
                    runQueue();
                    idleSince = System.nanoTime();
                    pending = !sleepsForDevice() && pollRing(pollWindow());
                    if (pending) {
                        continue; // buffers arrived as the kicks were turned back on: no kick will come for them
                    }
                }
                int kfd = kickFd;
                poll.clear();
                int kickSlot = kfd >= 0 ? poll.add(kfd) : -1;
                int controlSlot = poll.add(control.fd());
                int cfd = device.completionFd(index);
                int completionSlot = cfd >= 0 ? poll.add(cfd) : -1;
                int ready = poll.await(kfd >= 0 ? -1 : NOFD_POLL_MILLIS);
                if (stopping) {
                    break;
                }
                if (idleSince >= 0) {
                    adjustPolling(System.nanoTime() - idleSince);
                    idleSince = -1;
                }
                if (kfd < 0) {
                    pending = true;
                }
                if (completionSlot >= 0 && poll.ready(completionSlot)) {
                    pending = true;
                }
                if (ready > 0 && poll.ready(controlSlot)) {
                    control.drain(drain);
                    pending = true;
                }
                if (kickSlot >= 0 && poll.ready(kickSlot)) {
                    long n = LibC.readWordHot(kfd, drain);
                    if (n == 0 || (n < 0 && -n != Errno.EAGAIN && -n != Errno.EINTR)) {
                        // Not an eventfd we can use (closed, a file at EOF...): stop watching it, poll instead.
                        LOG.warnf("vq %d: kick fd %d unusable (%s); polling the queue instead", index, kfd,
                                n == 0 ? "end of file" : Errno.describe((int) -n));
                        kickFd = -1;
                    }
                    pending = true;
                }
            }
            settle(poll);
        } catch (Throwable t) {
            LOG.errorf(t, "vq %d worker failed", index);
        }
    }

    /**
     * The ring stops: requests the device still has in flight on this thread (asynchronous I/O) are
     * collected before the thread ends, bounded, so no I/O outlives the ring into guest memory. Without drain
     * (a disconnect) the queue is stopped first: completions then only release their memory.
     */
    private void settle(Poll poll) throws NativeCallException {
        if (device.completionFd(index) < 0) {
            return;
        }
        if (!drainOnStop) {
            queue.stop(0);
        }
        long deadline = System.nanoTime() + DRAIN_MILLIS * 1_000_000;
        while (queue.inFlight() > 0 && System.nanoTime() < deadline) {
            int cfd = device.completionFd(index);
            if (cfd < 0) {
                return;
            }
            poll.clear();
            poll.add(cfd);
            poll.await(10);
            lock.lock();
            try {
                device.handleCompletions(index, queue);
            } finally {
                lock.unlock();
            }
        }
        if (queue.inFlight() > 0) {
            LOG.warnf("vq %d: %d request(s) still in flight after %d ms", index, queue.inFlight(), DRAIN_MILLIS);
        }
    }

    /**
     * Adaptive polling: after a batch, watch the avail ring and the device's completions for up to the poll
     * window, serving what arrives, and restart the window each time something did. The driver's kicks are
     * off meanwhile (it would otherwise pay a system call per request for a worker that is looking anyway),
     * and on again before the worker sleeps. Checks run under the queue lock, so a paused worker never reads
     * a ring being remapped; if the protocol thread holds the lock, stop polling. Returns true if buffers came
     * as the kicks were turned on again: the caller must serve them instead of sleeping. Polling ends early once
     * what was served waits on a device ({@link #sleepsForDevice}); with as many pollers as CPUs, a poller yields.
     */
    private boolean pollRing(long window) {
        if (window <= 0) {
            return false;
        }
        POLLING.incrementAndGet();
        try {
            return pollRingCounted(window);
        } finally {
            POLLING.decrementAndGet();
        }
    }

    /** True while the queue's requests wait on a device outside the process: sleep on them, do not poll. */
    private boolean sleepsForDevice() {
        return !POLL_IN_FLIGHT && device.awaitsCompletions(index);
    }

    private boolean pollRingCounted(long window) {
        if (!lock.tryLock()) {
            return false;
        }
        try {
            queue.setNotification(false);
        } finally {
            lock.unlock();
        }
        long deadline = System.nanoTime() + window;
        int spins = 0;
        while (!stopping) {
            // the clock is slow to read on virtual machines: look at it every few spins only
            if ((++spins & 7) == 0 && System.nanoTime() >= deadline) {
                break;
            }
            boolean work;
            if (!lock.tryLock()) {
                break;
            }
            try {
                work = (enabled && queue.hasAvailable()) || device.hasCompletions(index);
            } finally {
                lock.unlock();
            }
            if (work) {
                runQueue();
                if (sleepsForDevice()) {
                    break; // what it started waits on the device: sleep on its completions
                }
                deadline = System.nanoTime() + window;
            } else if (YIELD && (spins & 3) == 0 && POLLING.get() >= CPUS) {
                Thread.yield();
            } else {
                Thread.onSpinWait();
            }
        }
        lock.lock();
        try {
            queue.setNotification(true);
            return enabled && queue.hasAvailable();
        } finally {
            lock.unlock();
        }
    }

    /** The polling window now: adapted to how long the worker actually waits, at most the configured one. */
    private long pollWindow() {
        long max = maxPollNanos();
        if (adaptivePollNanos < 0 || adaptivePollNanos > max) {
            adaptivePollNanos = max;
        }
        return adaptivePollNanos;
    }

    private long maxPollNanos() {
        return device.pollNanos() >= 0 ? device.pollNanos() : POLL_NANOS;
    }

    /** Adapt the window to the waits as QEMU does ({@code -Dvhost.poll-adaptive=true}), or poll the whole window (default). */
    static final boolean ADAPTIVE = Boolean.parseBoolean(System.getProperty("vhost.poll-adaptive", "false"));
    /** Where polling starts again after it was given up (QEMU's 4 µs). */
    private static final long POLL_GROW_START = 4_000;

    /**
     * QEMU's adaptive polling (aio-posix adjust_polling_time), after a wait that outlasted the window and
     * slept: blockNanos is the whole wait, polling included. Waits longer than the maximum window could not
     * have been polled away: stop polling (the CPU is worth more to the client, as at queue depth 1 on a
     * disk); shorter ones could have: poll longer, doubling from 4 µs up to the maximum.
     */
    private void adjustPolling(long blockNanos) {
        if (!ADAPTIVE) {
            return;
        }
        long max = maxPollNanos();
        long now = adaptivePollNanos;
        if (blockNanos <= now) {
            return;
        }
        if (blockNanos > max) {
            adaptivePollNanos = 0;
        } else if (now < max) {
            adaptivePollNanos = Math.min(max, now == 0 ? POLL_GROW_START : now * 2);
        }
    }

    private void runQueue() {
        lock.lock();
        try {
            SplitVirtqueue q = queue;
            if (enabled && !q.isBroken()) {
                device.handleQueue(index, q);
            } else {
                device.handleCompletions(index, q); // I/O in flight still completes (and releases its memory)
            }
        } catch (RuntimeException e) {
            LOG.errorf(e, "vq %d: device failed handling the queue", index);
        } finally {
            lock.unlock();
        }
    }
}

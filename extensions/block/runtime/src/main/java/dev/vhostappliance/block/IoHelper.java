package dev.vhostappliance.block;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.locks.LockSupport;

/**
 * A second thread for one queue worker: takes the upper half of a large transfer so two cores move data
 * at once. Handed work through volatile fields and park/unpark: nothing is allocated per request.
 */
final class IoHelper implements Runnable {
    /** iovecs of the upper half: at most all of the worker's (IOV_MAX) plus the cut one. */
    final MemorySegment iov = Arena.ofAuto().allocate(16L * 1025, 8);
    private final BlockNode node;
    private final Thread thread;
    private volatile Thread owner;
    private boolean write;
    private int count;
    private long offset;
    private long length;
    private long result;
    private volatile boolean pending;

    IoHelper(BlockNode node, String name) {
        this.node = node;
        this.thread = Thread.ofPlatform().name(name).daemon(true).start(this);
    }

    void submit(boolean write, int count, long offset, long length) {
        this.owner = Thread.currentThread();
        this.write = write;
        this.count = count;
        this.offset = offset;
        this.length = length;
        pending = true; // publishes the fields above
        LockSupport.unpark(thread);
    }

    /** Spin this long before parking: a wake-up costs more than that on virtual machines. */
    private static final long SPIN_NANOS = 50_000;

    /** Waits for the submitted half; 0, -errno, or 1 at end of file. */
    long await() {
        long until = System.nanoTime() + SPIN_NANOS;
        while (pending) {
            if (System.nanoTime() < until) {
                Thread.onSpinWait();
            } else {
                LockSupport.park(this);
            }
        }
        return result;
    }

    @Override
    public void run() {
        long idleSince = System.nanoTime();
        while (true) {
            if (!pending) {
                if (System.nanoTime() - idleSince < SPIN_NANOS) {
                    Thread.onSpinWait();
                } else {
                    LockSupport.park(this);
                }
                continue;
            }
            result = BlkQueueWorker.transfer(node, write, iov, count, offset, length);
            pending = false; // publishes result
            LockSupport.unpark(owner);
            idleSince = System.nanoTime();
        }
    }
}

package dev.vhostappliance.device;

/**
 * Lets a device have one of its queues served without a driver kick, for work that arrives from outside the
 * guest (an input event, a completed display update). Callable from any thread; a queue that is not running
 * ignores it, and its worker looks at the queue anyway when it starts.
 */
@FunctionalInterface
public interface QueueWaker {
    QueueWaker NONE = queueIndex -> {
    };

    /** Makes the queue's worker call {@link VirtioDevice#handleQueue} soon. */
    void wake(int queueIndex);
}

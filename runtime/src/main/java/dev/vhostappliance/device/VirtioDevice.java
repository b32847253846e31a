package dev.vhostappliance.device;

import dev.vhostappliance.virtqueue.Virtqueue;

/**
 * The device side of a vhost-user backend. Devices never see a protocol message: the core owns the socket,
 * features negotiation, memory table and rings, and calls into this small, mostly defaulted interface.
 * A device that needs nothing special implements the five abstract methods.
 */
public interface VirtioDevice {

    /** virtio device id (virtio_ids.h): 2 block, 16 gpu, 18 input. */
    int virtioId();

    /**
     * Device feature bits offered to the driver, including the transport/ring bits the device supports
     * (VERSION_1, RING_INDIRECT_DESC, RING_EVENT_IDX). The core adds VHOST_USER_F_PROTOCOL_FEATURES.
     */
    long features();

    /** Number of virtqueues (also GET_QUEUE_NUM). */
    int numQueues();

    /** Largest queue size this device accepts (a power of two, at most 32768). */
    default int maxQueueSize() {
        return 1024;
    }

    /** Serves the requests of one queue; called on that queue's worker thread when it was kicked. */
    void handleQueue(int queueIndex, Virtqueue queue);

    /**
     * For devices whose requests complete asynchronously on the queue's own thread (block I/O through
     * io_uring): an fd that becomes readable when queue queueIndex has completions to collect, or -1. The
     * queue's worker waits on it together with the kick, and calls {@link #handleQueue} when it is ready.
     */
    default int completionFd(int queueIndex) {
        return -1;
    }

    /** True if queue queueIndex has completions waiting (a cheap look, for the worker's polling window). */
    default boolean hasCompletions(int queueIndex) {
        return false;
    }

    /**
     * True while requests of queue queueIndex wait on a device outside this process (a disk's I/O in the
     * kernel): the worker then sleeps on {@link #completionFd} instead of polling, since a spinning thread only
     * takes the CPU the client, the kernel's completion work and, on a virtual machine, the host's emulation of
     * the disk need (measured: README "Benchmark: against qemu-storage-daemon").
     */
    default boolean awaitsCompletions(int queueIndex) {
        return false;
    }

    /**
     * Collects the completions of queue queueIndex without taking new requests: the worker calls this while
     * the ring stops, until nothing of the queue is in flight.
     */
    default void handleCompletions(int queueIndex, Virtqueue queue) {
    }

    /**
     * How long (ns) a queue's worker keeps looking at its ring and completions after it ran empty before it
     * sleeps; -1 for the process default (system property {@code vhost.poll-ns}), 0 never polls.
     */
    default long pollNanos() {
        return -1;
    }

    /** Protocol features this device needs on top of the core's (e.g. CONFIG for a config space). */
    default long protocolFeatures() {
        return 0;
    }

    /** The config space: a copy of at most {@code size} bytes from {@code offset}, or null if out of range. */
    default byte[] readConfig(int offset, int size) {
        return null;
    }

    /** A driver write to the config space; return false to refuse it. */
    default boolean writeConfig(int offset, byte[] data) {
        return false;
    }

    /** The features the driver acknowledged (SET_FEATURES). */
    default void featuresAcked(long features) {
    }

    /**
     * The frontend stopped queue index (GET_VRING_BASE, a reset, a disconnect): its worker has ended and what it
     * had in flight has drained (as far as the bounded wait allowed). Before {@link #reset} where both happen.
     */
    default void queueStopped(int index) {
    }

    /** All queues stopped and the device is back to its initial state (RESET_OWNER / RESET_DEVICE / disconnect). */
    default void reset() {
    }

    /** Backend-to-frontend channel for config-change notifications etc.; null when not negotiated. */
    default void setFrontendChannel(FrontendChannel channel) {
    }

    /** Called once by the core: how the device gets a queue served when work arrives from outside the guest. */
    default void setQueueWaker(QueueWaker waker) {
    }

    /** Device counters for monitoring (names in QMP style: "read-bytes"), in a stable order; none by default. */
    default java.util.Map<String, Long> counters() {
        return java.util.Map.of();
    }

    /** The process is ending: release files, locks, memory. */
    default void close() {
    }

    /** VHOST_USER_GPU_SET_SOCKET: the device takes ownership of fd. Return false if it has no use for one. */
    default boolean setGpuSocket(int fd) {
        return false;
    }
}

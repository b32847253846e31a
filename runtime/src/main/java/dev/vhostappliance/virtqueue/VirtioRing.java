package dev.vhostappliance.virtqueue;

/** Split-ring constants (virtio_ring.h) and feature bits the core needs (virtio_config.h). */
public final class VirtioRing {
    public static final int DESC_F_NEXT = 1;
    public static final int DESC_F_WRITE = 2;
    public static final int DESC_F_INDIRECT = 4;
    public static final int AVAIL_F_NO_INTERRUPT = 1;
    public static final int USED_F_NO_NOTIFY = 1;

    public static final int F_NOTIFY_ON_EMPTY = 24;
    public static final int F_ANY_LAYOUT = 27;
    public static final int F_RING_INDIRECT_DESC = 28;
    public static final int F_RING_EVENT_IDX = 29;
    public static final int F_VERSION_1 = 32;
    /** What every device here offers of the transport: VERSION_1, indirect descriptors, event index. */
    public static final long STANDARD_FEATURES = (1L << F_VERSION_1) | (1L << F_RING_INDIRECT_DESC) | (1L << F_RING_EVENT_IDX);

    /** Largest split queue the virtio spec allows. */
    public static final int MAX_QUEUE_SIZE = 32768;
    /** Largest indirect table accepted, in descriptors (QEMU accepts at most this many too). */
    public static final int MAX_INDIRECT = 1024;
    public static final int DESC_SIZE = 16;

    private VirtioRing() {
    }

    public static long bit(int feature) {
        return 1L << feature;
    }

    public static long descTableBytes(int size) {
        return (long) DESC_SIZE * size;
    }

    /** flags + idx + ring[size] + used_event. */
    public static long availBytes(int size) {
        return 4L + 2L * size + 2;
    }

    /** flags + idx + ring[size] of {id, len} + avail_event. */
    public static long usedBytes(int size) {
        return 4L + 8L * size + 2;
    }
}

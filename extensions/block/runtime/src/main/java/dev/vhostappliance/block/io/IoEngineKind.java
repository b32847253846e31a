package dev.vhostappliance.block.io;

import org.jboss.logging.Logger;

/** qemu-storage-daemon's {@code aio=} choices, and how an engine of each kind is made. */
public enum IoEngineKind {
    /** Synchronous system calls on a pool of threads. */
    THREADS("threads"),
    /** Linux AIO (O_DIRECT only). */
    NATIVE("native"),
    IO_URING("io_uring"),
    /** Not an aio= value: the engine of nodes without I/O of their own (null-co), on the queue thread. */
    INLINE("inline"),
    /** Not an aio= value: librbd's asynchronous calls (rbd nodes). */
    RBD("rbd");

    private static final Logger LOG = Logger.getLogger(IoEngineKind.class);
    private final String option;

    IoEngineKind(String option) {
        this.option = option;
    }

    /** The value of the aio= option. */
    public String option() {
        return option;
    }

    /** The kind an aio= value names, or null. */
    public static IoEngineKind fromOption(String value) {
        for (IoEngineKind k : values()) {
            if (k != INLINE && k != RBD && k.option.equals(value)) {
                return k;
            }
        }
        return null;
    }

    /**
     * An engine of this kind for capacity requests, on the file fd (registered where the engine can). When
     * the kernel refuses io_uring or AIO (disabled by sysctl, filtered by seccomp, too old), the queue runs
     * with {@code threads} instead and says so in one log line: never a failed device.
     */
    public IoEngine open(int capacity, int fd, String who) {
        try {
            return switch (this) {
                case THREADS -> ThreadPoolEngine.open(capacity);
                case NATIVE -> LinuxAioEngine.open(capacity);
                case IO_URING -> IoUringEngine.open(capacity, fd);
                case INLINE -> new InlineEngine(capacity);
                case RBD -> RbdEngine.open(capacity);
            };
        } catch (IoEngineUnavailableException e) {
            LOG.warnf("%s: aio=%s unavailable (%s); using aio=threads", who, option, e.getMessage());
            try {
                return ThreadPoolEngine.open(capacity);
            } catch (IoEngineUnavailableException again) {
                return new InlineEngine(capacity);
            }
        }
    }
}

package dev.vhostappliance.block.io;

import org.jboss.logging.Logger;

/** qemu-storage-daemon's {@code aio=} choices, and how an engine of each kind is made. */
public enum IoEngineKind {
    /** Synchronous system calls on the queue thread. */
    THREADS("threads"),
    /** Linux AIO (O_DIRECT only). */
    NATIVE("native"),
    IO_URING("io_uring");

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
            if (k.option.equals(value)) {
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
                case THREADS -> new InlineEngine(capacity);
                case NATIVE -> LinuxAioEngine.open(capacity);
                case IO_URING -> IoUringEngine.open(capacity, fd);
            };
        } catch (IoEngineUnavailableException e) {
            LOG.warnf("%s: aio=%s unavailable (%s); using aio=threads", who, option, e.getMessage());
            return new InlineEngine(capacity);
        }
    }
}

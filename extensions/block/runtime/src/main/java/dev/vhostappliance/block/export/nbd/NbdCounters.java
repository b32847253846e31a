package dev.vhostappliance.block.export.nbd;

import java.util.concurrent.atomic.LongAdder;

/** What an export's connections did, summed over them (monitoring; query-vhost-stats style). */
public final class NbdCounters {
    final LongAdder reads = new LongAdder();
    final LongAdder readBytes = new LongAdder();
    final LongAdder writes = new LongAdder();
    final LongAdder writeBytes = new LongAdder();
    final LongAdder flushes = new LongAdder();
    final LongAdder trims = new LongAdder();
    final LongAdder zeroes = new LongAdder();
    final LongAdder blockStatus = new LongAdder();
    final LongAdder errors = new LongAdder();
    final LongAdder connections = new LongAdder();

    public long reads() {
        return reads.sum();
    }

    public long writes() {
        return writes.sum();
    }

    public long readBytes() {
        return readBytes.sum();
    }

    public long writeBytes() {
        return writeBytes.sum();
    }

    public long flushes() {
        return flushes.sum();
    }

    public long errors() {
        return errors.sum();
    }

    /** Connections that reached the transmission phase on this export, ever. */
    public long connections() {
        return connections.sum();
    }
}

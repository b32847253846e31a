package dev.vhostappliance.gpu;

/** Counters of one gpu device, for logs, tests and the monitor. */
public record GpuStats(long commands, long errors, long resources, long resourceBytes, long updatesSent,
        long updateBytesSent, long cursorUpdates, long cursorMoves, long malformed) {
}

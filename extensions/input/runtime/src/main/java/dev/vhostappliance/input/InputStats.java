package dev.vhostappliance.input;

/** Counters of one input device, for logs, tests and the monitor. */
public record InputStats(long eventsDelivered, long batchesDropped, long eventsDropped,
        long eventsWithoutDriver, long statusEvents,
        long malformedBuffers, int backlog) {
}

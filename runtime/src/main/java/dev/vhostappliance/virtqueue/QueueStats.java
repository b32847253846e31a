package dev.vhostappliance.virtqueue;

/**
 * What one running virtqueue has done since it started: requests completed, requests in flight, interrupts
 * sent to the driver and those the driver's event index or NO_INTERRUPT flag made unnecessary, bytes written
 * into guest buffers, and whether the ring is broken.
 */
public record QueueStats(int index, long requests, int inFlight, long notifications, long suppressed,
        long bytesToGuest, boolean broken) {
}

package dev.vhostappliance.virtqueue;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * The device side of kick suppression (the worker turns the driver's kicks off while it polls the ring),
 * and a driver reusing a head that is still in flight.
 */
class RingNotificationTest {

    @Test
    void withEventIdxAvailEventStaysBehindWhileKicksAreOffAndCatchesUpWhenTheyAreOn() throws Exception {
        try (HotPathHarness h = new HotPathHarness(64, false, true)) {
            h.publish(h.head(0));
            assertEquals(Virtqueue.POPPED, h.queue.pop(h.chain));
            assertEquals(1, h.availEvent(), "kicks on: avail_event follows every pop");
            h.queue.setNotification(false);
            h.publish(h.head(1));
            h.publish(h.head(2));
            assertEquals(Virtqueue.POPPED, h.queue.pop(h.chain));
            assertEquals(Virtqueue.POPPED, h.queue.pop(h.chain));
            assertEquals(Virtqueue.EMPTY, h.queue.pop(h.chain));
            assertEquals(1, h.availEvent(), "kicks off: avail_event left behind, the driver stops kicking");
            h.queue.setNotification(true);
            assertEquals(3, h.availEvent(), "kicks on again: the next buffer is kicked");
        }
    }

    @Test
    void withoutEventIdxTheNoNotifyFlagIsSetWhileKicksAreOff() throws Exception {
        try (HotPathHarness h = new HotPathHarness(64, false, false)) {
            assertEquals(0, h.usedFlags());
            h.queue.setNotification(false);
            assertEquals(VirtioRing.USED_F_NO_NOTIFY, h.usedFlags());
            h.queue.setNotification(true);
            assertEquals(0, h.usedFlags());
        }
    }

    @Test
    void aHeadMadeAvailableAgainWhileInFlightBreaksTheQueue() throws Exception {
        try (HotPathHarness h = new HotPathHarness(64, false, true)) {
            h.publish(h.head(0));
            assertEquals(Virtqueue.POPPED, h.queue.pop(h.chain));
            h.publish(h.head(0)); // not pushed yet
            assertEquals(Virtqueue.BROKEN, h.queue.pop(h.chain));
            assertTrue(h.queue.isBroken());
            assertTrue(h.queue.brokenReason().contains("still in flight"), h.queue.brokenReason());
            assertEquals(1, h.queue.inFlight(), "the first request still holds its memory, once");
        }
    }
}

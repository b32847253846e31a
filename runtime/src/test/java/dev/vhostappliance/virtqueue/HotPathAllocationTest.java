package dev.vhostappliance.virtqueue;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The hot path allocates nothing per request in steady state: popping (direct and indirect chains), pushing
 * and notifying, including the eventfd write through FFM. Measured with the thread's allocated-bytes
 * counter, after a warm-up that lets the JIT compile the loop. No timing is asserted.
 */
class HotPathAllocationTest {

    @ParameterizedTest
    @CsvSource({"false,false", "false,true", "true,false", "true,true"})
    void noAllocationPerRequestInSteadyState(boolean indirect, boolean eventIdx) throws Exception {
        var mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        try (HotPathHarness h = new HotPathHarness(256, indirect, eventIdx)) {
            for (int i = 0; i < 300_000; i++) {
                h.round(32);
            }
            // Three windows: a per-request allocation shows in every window (at least 16 bytes x requests);
            // a one-off event (a deoptimization materialising an object) shows in one at most.
            long quietest = Long.MAX_VALUE;
            for (int w = 0; w < 3; w++) {
                long requests = 0;
                long before = mx.getCurrentThreadAllocatedBytes();
                for (int i = 0; i < 20_000; i++) {
                    requests += h.round(32);
                }
                long allocated = mx.getCurrentThreadAllocatedBytes() - before;
                System.out.printf("indirect=%s eventIdx=%s window %d: %d bytes over %d requests%n", indirect, eventIdx,
                        w, allocated, requests);
                assertEquals(640_000, requests);
                assertTrue(allocated < requests, allocated + " bytes over " + requests + " requests");
                quietest = Math.min(quietest, allocated);
            }
            assertEquals(0, quietest, "a steady-state window allocates nothing");
        }
    }
}

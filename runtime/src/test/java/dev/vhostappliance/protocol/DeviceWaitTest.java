package dev.vhostappliance.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostappliance.server.Wakeup;
import dev.vhostappliance.testing.DriverQueue;
import dev.vhostappliance.testing.DriverQueue.Buf;
import dev.vhostappliance.testing.EchoDevice;
import dev.vhostappliance.testing.GuestRam;
import dev.vhostappliance.testing.TestFrontend;
import dev.vhostappliance.virtqueue.DescriptorChain;
import dev.vhostappliance.virtqueue.Virtqueue;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * While a device's requests wait on a device outside the process ({@code awaitsCompletions}), the queue's worker
 * sleeps on the completion fd instead of polling for them; otherwise it polls its window first.
 */
class DeviceWaitTest {
    private static final long MIB = 1 << 20;

    /** Holds every request until the test "completes" them through the completion fd. */
    static final class HeldDevice extends EchoDevice {
        final Wakeup done;
        final boolean deviceBound;
        final ArrayDeque<DescriptorChain> held = new ArrayDeque<>(); // worker thread only
        final AtomicInteger popped = new AtomicInteger();
        /** How often the worker looked for completions (each look of its polling loop). */
        final AtomicInteger looks = new AtomicInteger();
        /** looks when the last request was taken. */
        volatile int looksAtPop;
        volatile boolean released;
        private final MemorySegment scratch = Arena.ofAuto().allocate(8, 8);

        final long pollNanos;

        HeldDevice(boolean deviceBound, long pollNanos) throws Exception {
            super(1);
            this.deviceBound = deviceBound;
            this.pollNanos = pollNanos;
            this.done = new Wakeup();
        }

        @Override
        public long pollNanos() {
            return pollNanos;
        }

        @Override
        public void handleQueue(int queueIndex, Virtqueue queue) {
            while (true) {
                DescriptorChain chain = queue.newChain(); // one per request held (test code)
                if (queue.pop(chain) != Virtqueue.POPPED) {
                    break;
                }
                held.add(chain);
                looksAtPop = looks.get();
                popped.incrementAndGet();
            }
            if (released && !held.isEmpty()) {
                done.drain(scratch);
                while (!held.isEmpty()) {
                    queue.push(held.poll().head(), 0);
                }
                queue.notifyDriver();
            }
        }

        @Override
        public int completionFd(int queueIndex) {
            return done.fd();
        }

        @Override
        public boolean hasCompletions(int queueIndex) {
            looks.incrementAndGet();
            return released && !held.isEmpty();
        }

        @Override
        public boolean awaitsCompletions(int queueIndex) {
            return deviceBound && !held.isEmpty();
        }
    }

    /**
     * With the default window the kick finds the worker asleep; with a 10 s window it finds it polling, and the
     * request taken from the ring while polling ends the polling.
     */
    @ParameterizedTest(name = "device-bound {0}, poll window {1} ns")
    @CsvSource({"true, -1", "false, -1", "true, 10000000000", "false, 10000000000"})
    void theWorkerSleepsWhileTheDeviceWorksAndPollsOtherwise(boolean deviceBound, long pollNanos) throws Exception {
        HeldDevice dev = new HeldDevice(deviceBound, pollNanos);
        try (GuestRam ram = new GuestRam(new long[] {0}, new long[] {4 * MIB});
                TestFrontend fe = TestFrontend.connect(dev)) {
            DriverQueue q = fe.ready(ram, EchoDevice.FEATURES, 1, 32)[0];
            long b = ram.alloc(64, 8);
            Thread.sleep(50); // the set-up's last wake-up is served: the worker now polls its window or sleeps
            q.addDirect(new Buf(b, 8, false), new Buf(b + 32, 8, true));
            q.kick();
            long deadline = System.currentTimeMillis() + 5000;
            while (dev.popped.get() < 1 && System.currentTimeMillis() < deadline) {
                Thread.sleep(1);
            }
            assertEquals(1, dev.popped.get());
            try {
                Thread.sleep(100);
                int looks = dev.looks.get() - dev.looksAtPop;
                if (deviceBound) {
                    assertEquals(0, looks, "no polling while the request waits on the device");
                } else {
                    assertTrue(looks > 0, "the worker polls its window for completions");
                }
            } finally {
                dev.released = true;
                dev.done.poke(); // the device finished: the completion fd wakes the worker
            }
            assertNotNull(q.awaitUsed(5000), "completed after the worker woke on the completion fd");
        } finally {
            dev.done.close();
        }
    }
}

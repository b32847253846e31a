package dev.vhostappliance.protocol;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostappliance.testing.DriverQueue;
import dev.vhostappliance.testing.DriverQueue.Buf;
import dev.vhostappliance.testing.EchoDevice;
import dev.vhostappliance.testing.GuestRam;
import dev.vhostappliance.testing.TestFrontend;
import dev.vhostappliance.virtqueue.DescriptorChain;
import dev.vhostappliance.virtqueue.Virtqueue;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** Devices may complete requests on their own threads: memory and ring state stay safe. */
class AsyncCompletionTest {
    private static final long MIB = 1 << 20;

    /** Takes requests on the worker thread, completes them on a pool once {@link #gate} opens. */
    static final class AsyncDevice extends EchoDevice {
        final ExecutorService pool = Executors.newFixedThreadPool(2);
        volatile CountDownLatch gate = new CountDownLatch(1);
        final AtomicInteger popped = new AtomicInteger();

        AsyncDevice() {
            super(1);
        }

        @Override
        public void handleQueue(int queueIndex, Virtqueue queue) {
            while (true) {
                DescriptorChain chain = queue.newChain(); // one per request in flight (test code)
                if (queue.pop(chain) != Virtqueue.POPPED) {
                    return;
                }
                popped.incrementAndGet();
                CountDownLatch g = gate;
                pool.execute(() -> {
                    try {
                        g.await();
                    } catch (InterruptedException e) {
                        return;
                    }
                    // readable buffer 0 -> writable buffer 1, through the mapping held for this request
                    MemorySegment in = chain.region(0);
                    MemorySegment out = chain.region(1);
                    MemorySegment.copy(in, chain.offset(0), out, chain.offset(1), chain.length(0));
                    queue.push(chain.head(), chain.length(0));
                    queue.notifyDriver();
                });
            }
        }
    }

    private static long mappingsOf(String marker) throws Exception {
        return Files.readAllLines(Path.of("/proc/self/maps")).stream().filter(l -> l.contains(marker)).count();
    }

    @Test
    void removedRegionStaysMappedUntilItsRequestsCompleteAndGetVringBaseWaits() throws Exception {
        AsyncDevice dev = new AsyncDevice();
        // Rings in region 0; data buffers in region 1 (its own memfd, recognisable in /proc/self/maps).
        try (GuestRam ram = new GuestRam(new long[] {0, 16 * MIB}, new long[] {2 * MIB, 2 * MIB});
                TestFrontend fe = TestFrontend.connect(dev)) {
            DriverQueue q = fe.ready(ram, EchoDevice.FEATURES, 1, 32)[0];
            GuestRam.Region data = ram.regions().get(1);
            long mapsBefore = mappingsOf("guest-ram");
            int n = 8;
            for (int i = 0; i < n; i++) {
                long b = 16 * MIB + 4096L * i;
                ram.write(b, new byte[] {(byte) i, 1, 2, 3, 4, 5, 6, (byte) (100 + i)});
                q.addDirect(new Buf(b, 8, false), new Buf(b + 2048, 8, true));
            }
            q.kick();
            long deadline = System.currentTimeMillis() + 5000;
            while (dev.popped.get() < n && System.currentTimeMillis() < deadline) {
                Thread.sleep(5);
            }
            assertEquals(n, dev.popped.get());
            // The frontend removes the region the in-flight buffers live in.
            assertEquals(0, fe.memReg(VhostUserRequest.REM_MEM_REG, data));
            assertEquals(mapsBefore, mappingsOf("guest-ram"), "still mapped: requests in flight use it");
            dev.gate.countDown(); // the device now writes into the removed region: must not fault
            for (int i = 0; i < n; i++) {
                assertNotNull(q.awaitUsed(5000), "completion " + i);
            }
            for (int i = 0; i < n; i++) {
                long b = 16 * MIB + 4096L * i;
                assertArrayEquals(ram.read(b, 8), ram.read(b + 2048, 8), "echo " + i);
            }
            deadline = System.currentTimeMillis() + 5000;
            while (mappingsOf("guest-ram") >= mapsBefore && System.currentTimeMillis() < deadline) {
                Thread.sleep(5);
            }
            assertEquals(mapsBefore - 1, mappingsOf("guest-ram"), "unmapped once its last request completed");

            // GET_VRING_BASE waits for requests still in flight on the device's threads.
            dev.gate = new CountDownLatch(1);
            long b = ram.alloc(64, 8);
            for (int i = 0; i < 4; i++) {
                q.addDirect(new Buf(b, 8, false), new Buf(b + 32, 8, true));
            }
            q.kick();
            deadline = System.currentTimeMillis() + 5000;
            while (dev.popped.get() < n + 4 && System.currentTimeMillis() < deadline) {
                Thread.sleep(5);
            }
            CompletableFuture<Integer> base = CompletableFuture.supplyAsync(() -> {
                try {
                    return fe.getVringBase(0);
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
            Thread.sleep(300);
            assertFalse(base.isDone(), "GET_VRING_BASE waits for the 4 requests in flight");
            dev.gate.countDown();
            assertEquals(n + 4, base.get(10, TimeUnit.SECONDS));
            int completed = 0;
            while (q.pollUsed() != null) {
                completed++;
            }
            assertEquals(4, completed, "all four completed before the base was returned");
        } finally {
            dev.pool.shutdownNow();
            assertTrue(dev.pool.awaitTermination(5, TimeUnit.SECONDS));
        }
    }
}

package dev.vhostappliance.protocol;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostappliance.testing.DriverQueue;
import dev.vhostappliance.testing.DriverQueue.Buf;
import dev.vhostappliance.testing.EchoDevice;
import dev.vhostappliance.testing.GuestRam;
import dev.vhostappliance.testing.TestFrontend;
import dev.vhostappliance.virtqueue.VirtioRing;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class VhostUserBackendTest {
    private static final long MIB = 1 << 20;

    private static byte[] pattern(int len, int seed) {
        byte[] b = new byte[len];
        new Random(seed).nextBytes(b);
        return b;
    }

    @Test
    void negotiatesFeaturesAndProtocolFeatures() throws Exception {
        EchoDevice dev = new EchoDevice(2);
        try (TestFrontend fe = TestFrontend.connect(dev)) {
            long features = fe.getU64(VhostUserRequest.GET_FEATURES);
            assertEquals(EchoDevice.FEATURES | ProtocolFeature.bit(ProtocolFeature.F_PROTOCOL_FEATURES)
                    | ProtocolFeature.bit(ProtocolFeature.F_LOG_ALL), features);
            long pf = fe.getU64(VhostUserRequest.GET_PROTOCOL_FEATURES);
            assertEquals(VhostUserBackend.CORE_PROTOCOL_FEATURES, pf, "CONFIG is only offered to devices asking for it");
            fe.negotiate(EchoDevice.FEATURES);
            assertEquals(2, fe.getU64(VhostUserRequest.GET_QUEUE_NUM));
            assertEquals(509, fe.getU64(VhostUserRequest.GET_MAX_MEM_SLOTS));
            // Features never offered are refused...
            assertNotEquals(0, fe.setU64Acked(VhostUserRequest.SET_FEATURES, 1L << 41));
            // ...except VIRTIO_F_RING_RESET, which QEMU 10 passes on to devices that never offered it (vhost-user-gpu)
            assertEquals(0, fe.setU64Acked(VhostUserRequest.SET_FEATURES, fe.features | 1L << 40));
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void directAndIndirectChainsAreServedInPlace(boolean indirect) throws Exception {
        EchoDevice dev = new EchoDevice(1);
        try (GuestRam ram = GuestRam.single(4 * MIB); TestFrontend fe = TestFrontend.connect(dev)) {
            DriverQueue q = fe.ready(ram, EchoDevice.FEATURES, 1, 64)[0];
            byte[] data = pattern(3000, 1);
            long in1 = ram.alloc(1000, 8);
            long in2 = ram.alloc(2000, 8);
            long out1 = ram.alloc(1500, 8);
            long out2 = ram.alloc(1500, 8);
            ram.write(in1, java.util.Arrays.copyOfRange(data, 0, 1000));
            ram.write(in2, java.util.Arrays.copyOfRange(data, 1000, 3000));
            Buf[] bufs = {new Buf(in1, 1000, false), new Buf(in2, 2000, false), new Buf(out1, 1500, true),
                    new Buf(out2, 1500, true)};
            int head = indirect ? q.addIndirect(bufs) : q.addDirect(bufs);
            q.kick();
            DriverQueue.Used u = q.awaitUsed(5000);
            assertNotNull(u, "request completed");
            assertEquals(head, u.head());
            assertEquals(3000, u.len());
            byte[] got = new byte[3000];
            System.arraycopy(ram.read(out1, 1500), 0, got, 0, 1500);
            System.arraycopy(ram.read(out2, 1500), 0, got, 1500, 1500);
            assertArrayEquals(data, got);
        }
    }

    @Test
    void bufferSpanningTwoRegionsIsSplit() throws Exception {
        EchoDevice dev = new EchoDevice(1);
        // Two regions adjacent in guest-physical space (as hot-plugged DIMMs can be), separate memfds.
        try (GuestRam ram = new GuestRam(new long[] {0, 2 * MIB}, new long[] {2 * MIB, 2 * MIB});
                TestFrontend fe = TestFrontend.connect(dev)) {
            DriverQueue q = fe.ready(ram, EchoDevice.FEATURES, 1, 16)[0];
            long in = 2 * MIB - 100; // 100 bytes in region 0, 100 in region 1
            byte[] data = pattern(200, 2);
            ram.write(in - 0, java.util.Arrays.copyOfRange(data, 0, 100));
            ram.write(2 * MIB, java.util.Arrays.copyOfRange(data, 100, 200));
            long out = 3 * MIB;
            q.addDirect(new Buf(in, 200, false), new Buf(out, 200, true));
            q.kick();
            DriverQueue.Used u = q.awaitUsed(5000);
            assertNotNull(u);
            assertEquals(200, u.len());
            assertArrayEquals(data, ram.read(out, 200));
        }
    }

    /**
     * The driver behaves like Linux's: it kicks only when avail_event (or NO_NOTIFY) says so and sleeps only
     * on the call eventfd, re-arming used_event before it sleeps. A lost kick or a lost interrupt on either
     * side therefore stalls the loop and fails the test.
     */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void noNotificationIsLostUnderStress(boolean eventIdx) throws Exception {
        EchoDevice dev = new EchoDevice(1);
        long features = eventIdx ? EchoDevice.FEATURES
                : EchoDevice.FEATURES & ~VirtioRing.bit(VirtioRing.F_RING_EVENT_IDX);
        try (GuestRam ram = GuestRam.single(8 * MIB); TestFrontend fe = TestFrontend.connect(dev)) {
            int size = 32;
            DriverQueue q = fe.ready(ram, features, 1, size)[0];
            long buf = ram.alloc(64L * size, 8);
            Random rnd = new Random(3);
            int total = 20_000;
            int submitted = 0;
            int completed = 0;
            int kicks = 0;
            while (completed < total) {
                int batch = Math.min(1 + rnd.nextInt(size), Math.min(q.freeCount() / 2, total - submitted));
                int oldAvail = q.availIdx();
                for (int i = 0; i < batch; i++) {
                    long b = buf + 64L * (submitted % size);
                    q.addDirect(new Buf(b, 8, false), new Buf(b + 32, 8, true));
                    submitted++;
                }
                if (batch > 0 && q.kickIfNeeded(oldAvail, eventIdx)) {
                    kicks++;
                }
                while (q.pollUsed() != null) {
                    completed++;
                }
                if (completed < submitted && rnd.nextBoolean()) {
                    // Sleep until interrupted: ask for a call at the next completion, re-check, then block.
                    q.setUsedEvent(q.usedIdx());
                    java.lang.invoke.VarHandle.fullFence();
                    if (q.usedIdx() == completedIdx(completed)) {
                        assertTrue(q.awaitCall(5000), "interrupt lost after " + completed + " of " + submitted);
                    }
                    while (q.pollUsed() != null) {
                        completed++;
                    }
                }
            }
            assertEquals(total, completed);
            assertEquals(total, dev.handled.get());
            if (eventIdx) {
                assertTrue(kicks < total, "EVENT_IDX suppressed some kicks: " + kicks);
            }
        }
    }

    private static int completedIdx(int completed) {
        return completed & 0xffff;
    }

    @Test
    void getVringBaseReturnsTheNextAvailIndexAndStopsTheRing() throws Exception {
        EchoDevice dev = new EchoDevice(1);
        try (GuestRam ram = GuestRam.single(4 * MIB); TestFrontend fe = TestFrontend.connect(dev)) {
            DriverQueue q = fe.ready(ram, EchoDevice.FEATURES, 1, 8)[0];
            long b = ram.alloc(64, 8);
            for (int i = 0; i < 21; i++) { // wraps the 8-entry ring several times
                q.addDirect(new Buf(b, 8, false), new Buf(b + 32, 8, true));
                q.kick();
                assertNotNull(q.awaitUsed(5000));
            }
            assertEquals(21, fe.getVringBase(0));
            // Stopped: a new request is not served until the ring is started again.
            q.addDirect(new Buf(b, 8, false), new Buf(b + 32, 8, true));
            q.kick();
            assertEquals(null, q.awaitUsed(300));
            assertEquals(21, dev.handled.get());
        }
    }

    /**
     * A ring started again over used entries (what a migration destination or a reconnect sees) gets one
     * interrupt at start, with no request: a completion whose interrupt the previous owner lost is then seen.
     * A new ring (used idx 0) gets none.
     */
    @Test
    void aRingRestartedOverUsedEntriesInterruptsTheDriverOnce() throws Exception {
        EchoDevice dev = new EchoDevice(1);
        try (GuestRam ram = GuestRam.single(4 * MIB); TestFrontend fe = TestFrontend.connect(dev)) {
            DriverQueue q = fe.ready(ram, EchoDevice.FEATURES, 1, 8)[0];
            assertFalse(q.awaitCall(300), "a new ring: no interrupt at start");
            long b = ram.alloc(64, 8);
            for (int i = 0; i < 3; i++) {
                q.addDirect(new Buf(b, 8, false), new Buf(b + 32, 8, true));
                q.kick();
                assertNotNull(q.awaitUsed(5000));
            }
            q.setUsedEvent(q.usedIdx() + 100); // EVENT_IDX alone would suppress every interrupt for a while
            assertEquals(3, fe.getVringBase(0));
            while (q.takeCall()) {
                // calls of the requests above
            }
            fe.startQueue(ram, 0, q, 3);
            assertTrue(q.awaitCall(5000), "the restarted ring interrupts once");
            assertFalse(q.awaitCall(300), "and only once");
            assertEquals(3, dev.handled.get());
        }
    }

    @Test
    void memoryTableChangeDuringTrafficLosesNothing() throws Exception {
        EchoDevice dev = new EchoDevice(1);
        try (GuestRam ram = GuestRam.single(4 * MIB); TestFrontend fe = TestFrontend.connect(dev)) {
            DriverQueue q = fe.ready(ram, EchoDevice.FEATURES, 1, 64)[0];
            long b = ram.alloc(64 * 64, 8);
            int submitted = 0;
            int completed = 0;
            for (int round = 0; round < 50; round++) {
                for (int i = 0; i < 16; i++) {
                    long x = b + 64L * (submitted % 64);
                    q.addDirect(new Buf(x, 8, false), new Buf(x + 32, 8, true));
                    submitted++;
                }
                q.kick();
                // The same memory again, as QEMU re-sends it whenever guest memory changes.
                assertEquals(0, fe.setMemTable(ram));
                while (completed < submitted) {
                    assertNotNull(q.awaitUsed(5000), "request lost across a memory table change");
                    completed++;
                }
            }
            assertEquals(submitted, dev.handled.get());
        }
    }

    @Test
    void addAndRemoveMemoryRegions() throws Exception {
        EchoDevice dev = new EchoDevice(1);
        try (GuestRam ram = new GuestRam(new long[] {0}, new long[] {2 * MIB}); TestFrontend fe = TestFrontend.connect(dev)) {
            fe.negotiate(EchoDevice.FEATURES);
            GuestRam.Region r0 = ram.regions().get(0);
            assertEquals(0, fe.memReg(VhostUserRequest.ADD_MEM_REG, r0, r0.fd()));
            DriverQueue q = fe.startQueue(ram, 0, 16);
            GuestRam.Region r1 = ram.addRegion(16 * MIB, 1 * MIB);
            assertEquals(0, fe.memReg(VhostUserRequest.ADD_MEM_REG, r1, r1.fd()));
            long in = ram.alloc(16, 8);
            byte[] data = pattern(16, 4);
            ram.write(in, data);
            q.addDirect(new Buf(in, 16, false), new Buf(16 * MIB + 100, 16, true));
            q.kick();
            DriverQueue.Used u = q.awaitUsed(5000);
            assertNotNull(u);
            assertEquals(16, u.len());
            assertArrayEquals(data, ram.read(16 * MIB + 100, 16));
            // Removing the region makes buffers in it invalid: the queue breaks, the backend lives on.
            assertEquals(0, fe.memReg(VhostUserRequest.REM_MEM_REG, r1));
            assertNotEquals(0, fe.memReg(VhostUserRequest.REM_MEM_REG, r1), "already removed");
            q.addDirect(new Buf(in, 16, false), new Buf(16 * MIB + 100, 16, true));
            q.kick();
            assertEquals(null, q.awaitUsed(300));
            assertTrue(fe.alive());
        }
    }
}

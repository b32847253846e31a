package dev.vhostappliance.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostappliance.device.VirtioDevice;
import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.UnixSockets;
import dev.vhostappliance.server.BackendServer;
import dev.vhostappliance.server.Poll;
import dev.vhostappliance.testing.DriverQueue;
import dev.vhostappliance.testing.DriverQueue.Buf;
import dev.vhostappliance.testing.EchoDevice;
import dev.vhostappliance.testing.GuestRam;
import dev.vhostappliance.testing.TestFrontend;
import dev.vhostappliance.virtqueue.DescriptorChain;
import dev.vhostappliance.virtqueue.Virtqueue;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Connections coming and going: reconnects, inflight recovery, client mode, and nothing leaked. */
class ConnectionLifecycleTest {
    private static final long MIB = 1 << 20;

    @TempDir
    Path dir;

    /** Pops every request but completes only those whose arrival number is in {@code complete}. */
    static final class HoldingDevice extends EchoDevice {
        final Set<Integer> complete;
        final List<Integer> popped = new ArrayList<>();

        HoldingDevice(Set<Integer> complete) {
            super(1);
            this.complete = complete;
        }

        @Override
        public void handleQueue(int queueIndex, Virtqueue queue) {
            DescriptorChain chain = queue.newChain();
            while (queue.pop(chain) == Virtqueue.POPPED) {
                int n = popped.size();
                popped.add(chain.head());
                if (complete.contains(n)) {
                    queue.push(chain.head(), 0);
                }
            }
            queue.notifyDriver();
        }
    }

    @Test
    void inflightRequestsAreResubmittedAfterABackendRestart() throws Exception {
        int size = 16;
        try (GuestRam ram = GuestRam.single(4 * MIB)) {
            DriverQueue q;
            int inflightFd;
            long inflightSize;
            List<Integer> heads = new ArrayList<>();
            // First backend: takes three requests, completes only the second, then "dies".
            HoldingDevice first = new HoldingDevice(Set.of(1));
            try (TestFrontend fe = TestFrontend.connect(first)) {
                fe.negotiate(EchoDevice.FEATURES);
                assertEquals(0, fe.setMemTable(ram));
                inflightFd = fe.getInflightFd(1, size);
                inflightSize = fe.inflightSize;
                assertEquals(0, fe.setInflightFd(inflightFd, inflightSize, 1, size));
                q = fe.startQueue(ram, 0, size);
                long b = ram.alloc(256, 8);
                for (int i = 0; i < 3; i++) {
                    heads.add(q.addDirect(new Buf(b + 64L * i, 8, false), new Buf(b + 64L * i + 32, 8, true)));
                }
                q.kick();
                DriverQueue.Used u = q.awaitUsed(5000);
                assertNotNull(u);
                assertEquals(heads.get(1), u.head());
                assertNull(q.awaitUsed(200), "the other two stay in flight");
            }
            // Second backend: QEMU hands the inflight buffer back and, not knowing better, base = used idx (1).
            EchoDevice second = new EchoDevice(1);
            try (TestFrontend fe = TestFrontend.connect(second)) {
                fe.negotiate(EchoDevice.FEATURES);
                assertEquals(0, fe.setMemTable(ram));
                assertEquals(0, fe.setInflightFd(inflightFd, inflightSize, 1, size));
                fe.startQueue(ram, 0, q, 1);
                Set<Integer> done = new HashSet<>();
                for (int i = 0; i < 2; i++) {
                    DriverQueue.Used u = q.awaitUsed(5000);
                    assertNotNull(u, "in-flight request " + i + " resubmitted");
                    assertTrue(done.add(u.head()));
                }
                assertEquals(Set.of(heads.get(0), heads.get(2)), done, "exactly the two in-flight requests");
                assertNull(q.awaitUsed(200), "nothing completed twice");
                assertEquals(2, second.handled.get());
                // The ring goes on normally after the resubmission.
                long b = ram.alloc(64, 8);
                q.addDirect(new Buf(b, 8, false), new Buf(b + 32, 8, true));
                q.kick();
                assertNotNull(q.awaitUsed(5000));
                assertEquals(4, fe.getVringBase(0), "avail index after 3 + 1 requests");
            }
            LibC.close(inflightFd);
        }
    }

    @Test
    void clientModeConnectsToTheFrontendAndReconnects() throws Exception {
        Path path = dir.resolve("frontend.sock");
        int listen = UnixSockets.listen(path.toString(), 1);
        EchoDevice dev = new EchoDevice(1);
        BackendServer server = BackendServer.client(path, 1);
        VhostUserBackend backend = new VhostUserBackend(dev);
        Thread t = Thread.ofPlatform().daemon(true).start(() -> {
            try {
                server.serve(backend::serve);
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
        try (GuestRam ram = GuestRam.single(2 * MIB)) {
            for (int round = 0; round < 3; round++) {
                Poll poll = new Poll(1);
                poll.add(listen);
                assertEquals(1, poll.await(10_000), "backend (re)connected, round " + round);
                int conn = LibC.rawAccept4(listen, LibC.SOCK_CLOEXEC);
                assertTrue(conn >= 0);
                try (TestFrontend fe = TestFrontend.attach(conn)) {
                    DriverQueue q = fe.ready(ram, EchoDevice.FEATURES, 1, 8)[0];
                    long b = ram.alloc(64, 8);
                    q.addDirect(new Buf(b, 8, false), new Buf(b + 32, 8, true));
                    q.kick();
                    assertNotNull(q.awaitUsed(5000), "served in round " + round);
                    q.close();
                }
            }
        } finally {
            server.stop();
            t.join(5000);
            assertTrue(!t.isAlive(), "client loop ends on stop");
            server.close();
            LibC.close(listen);
        }
        assertEquals(3, dev.handled.get());
    }

    @Test
    void clientModeWithoutReconnectFailsAtStartupWhenNobodyListens() {
        Path path = dir.resolve("nobody.sock");
        var e = org.junit.jupiter.api.Assertions.assertThrows(dev.vhostappliance.cli.StartupException.class,
                () -> BackendServer.client(path, 0));
        assertTrue(e.getMessage().contains("cannot connect"), e.getMessage());
    }

    /**
     * Mappings of memfds: the guest memory regions and inflight logs a connection maps. Not every mapping: the
     * JVM's own (heap regions committed and uncommitted, code heap, the stacks of compiler threads it starts
     * and stops as compilation comes and goes) vary by a few dozen without any leak.
     */
    private static long mappings() throws Exception {
        return Files.readAllLines(Path.of("/proc/self/maps")).stream().filter(l -> l.contains("/memfd:")).count();
    }

    @Test
    void thousandConnectNegotiateDisconnectCyclesLeakNoFdAndNoMapping() throws Exception {
        VirtioDevice dev = new EchoDevice(2);
        try (GuestRam ram = new GuestRam(new long[] {0, 4 * MIB}, new long[] {2 * MIB, 2 * MIB})) {
            for (int i = 0; i < 20; i++) { // warm-up: lazily created JDK and JIT state is not a leak
                cycle(dev, ram);
            }
            int fds = TestFrontend.openFds();
            long maps = mappings();
            for (int i = 0; i < 1000; i++) {
                cycle(dev, ram);
            }
            int fdsAfter = TestFrontend.openFds();
            long mapsAfter = mappings();
            System.out.printf("1000 cycles: fds %d -> %d, mappings %d -> %d%n", fds, fdsAfter, maps, mapsAfter);
            assertEquals(fds, fdsAfter, "open fds");
            assertTrue(maps > 0, "the test frontend's guest memory is a memfd mapping");
            assertEquals(maps, mapsAfter, "memfd mappings");
        }
    }

    /** One full life: negotiate, memory, inflight, two queues, a request, disconnect. */
    private static void cycle(VirtioDevice dev, GuestRam ram) throws Exception {
        try (TestFrontend fe = TestFrontend.connect(dev)) {
            fe.negotiate(EchoDevice.FEATURES);
            assertEquals(0, fe.setMemTable(ram));
            int inflight = fe.getInflightFd(2, 8);
            LibC.close(inflight);
            DriverQueue q0 = fe.startQueue(ram, 0, 8);
            DriverQueue q1 = fe.startQueue(ram, 1, 8);
            long b = 4 * MIB + 64;
            q1.addDirect(new Buf(b, 8, false), new Buf(b + 32, 8, true));
            q1.kick();
            assertNotNull(q1.awaitUsed(5000));
            q0.close();
            q1.close();
        }
    }
}

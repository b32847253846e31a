package dev.vhostappliance.block.export.vhostuser;

import dev.vhostappliance.block.io.IoEngineKind;
import dev.vhostappliance.block.node.BlockNode;
import dev.vhostappliance.block.node.FileNode;
import dev.vhostappliance.block.node.NullNode;
import dev.vhostappliance.block.qcow2.Qcow2Image;
import dev.vhostappliance.block.qcow2.Qcow2Node;
import dev.vhostappliance.block.qcow2.Qcow2Options;
import dev.vhostappliance.block.request.VirtioBlk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostappliance.testing.DriverQueue;
import dev.vhostappliance.testing.DriverQueue.Buf;
import dev.vhostappliance.testing.GuestRam;
import dev.vhostappliance.testing.TestFrontend;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The whole request path of the block device allocates nothing per request in steady state: measured on
 * the queue's worker thread (ThreadMXBean allocated bytes) while a driver keeps it busy.
 */
class BlockAllocationTest {
    private static final long MIB = 1 << 20;

    @TempDir
    Path dir;

    private static Thread worker(String name) {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().equals(name)).findFirst()
                .orElseThrow(() -> new AssertionError("no thread " + name));
    }

    /** Bytes allocated so far by the aio=threads pool's threads (their ids stay valid while they run). */
    private static long poolAllocated(com.sun.management.ThreadMXBean mx) {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().startsWith("aio-worker-"))
                .mapToLong(t -> Math.max(0, mx.getThreadAllocatedBytes(t.threadId()))).sum();
    }

    /**
     * null-co, a file through each engine (Linux AIO with O_DIRECT, as it requires), a qcow2 image with its
     * clusters allocated (metadata lookups on the request path, then the file's engine), and a thin qcow2
     * image where every round allocates (writes to clusters a discard in the same batch gave back: allocating
     * writes in flight, discards held behind them, deferred frees), and an RBD image in the test cluster (librbd's
     * aio calls and its completion upcalls).
     */
    @ParameterizedTest
    @ValueSource(strings = {"null-co", "io_uring", "io_uring direct", "threads", "native direct", "qcow2", "qcow2 thin", "rbd"})
    void noAllocationPerRequest(String nodeType) throws Exception {
        BlockNode node;
        BlockNode under = null;
        boolean thin = nodeType.equals("qcow2 thin");
        if (nodeType.startsWith("qcow2")) {
            org.junit.jupiter.api.Assumptions.assumeTrue(java.nio.file.Files.isExecutable(Path.of("/usr/bin/qemu-img")));
            Path img = dir.resolve("a.qcow2");
            Process p = new ProcessBuilder("qemu-img", "create", "-q", "-f", "qcow2", "-o",
                    thin ? "cluster_size=8192" : "preallocation=metadata", img.toString(), Long.toString(8 * MIB))
                    .inheritIO().start();
            assertEquals(0, p.waitFor());
            under = FileNode.open("f", img, FileNode.Options.defaults(false));
            node = new Qcow2Node(Qcow2Image.open("q", under, Qcow2Options.defaults(false).withDiscard(true)));
        } else if (nodeType.equals("rbd")) {
            dev.vhostappliance.testing.CephCluster c = dev.vhostappliance.testing.CephCluster.shared();
            c.createImage("allocation", 8);
            node = dev.vhostappliance.block.rbd.RbdNode.open("r", new dev.vhostappliance.block.rbd.RbdOptions("rbd", null,
                    "allocation", null, c.conf().toString(), "admin", null, java.util.List.of(), java.util.List.of(), false, false,
                    true, true));
        } else if (!nodeType.equals("null-co")) {
            Path img = dir.resolve("a.img");
            try (var f = new java.io.RandomAccessFile(img.toFile(), "rw")) {
                f.setLength(8 * MIB);
            }
            node = FileNode.open("f", img, FileNode.Options.defaults(false)
                    .withAio(IoEngineKind.fromOption(nodeType.split(" ")[0])).withDirect(nodeType.endsWith("direct")));
        } else {
            node = new NullNode("n", 8 * MIB, true, false);
        }
        VirtioBlkDevice dev = new VirtioBlkDevice(node, true, 1, 512, false, null);
        var mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        try (GuestRam ram = GuestRam.single(16 * MIB); TestFrontend fe = TestFrontend.connect(dev)) {
            DriverQueue q = fe.ready(ram, dev.features(), 1, 128)[0];
            int slots = 32;
            long[] hdr = new long[slots];
            long data = ram.alloc(4096L * slots, 4096);
            long status = ram.alloc(slots, 8);
            long discards = ram.alloc(16L * slots, 8);
            for (int i = 0; i < slots; i++) {
                hdr[i] = ram.alloc(16, 8);
                boolean write = i % 2 == 0;
                // thin: request pair i/2 works on 8 KiB cluster i/2: a 4 KiB write into its second half (the first
                // copied on write), then its discard
                int type = write ? VirtioBlk.T_OUT : thin ? VirtioBlk.T_DISCARD : VirtioBlk.T_IN;
                long sector = thin ? (i / 2) * 16L + (write ? 8 : 0) : 8L * i;
                ram.write(hdr[i], ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putInt(type).putInt(0)
                        .putLong(thin ? (write ? sector : 0) : sector).array());
                ram.write(discards + 16L * i, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN)
                        .putLong((i / 2) * 16L).putInt(16).putInt(0).array());
            }
            if (nodeType.equals("rbd")) {
                // librbd's cache is writethrough until the first flush: after it, writeback (as a guest's first
                // flush makes it), so the rounds run at cache speed rather than at the test cluster's
                assertEquals(VirtioBlk.S_OK, VirtioBlkDeviceTest.request(q, ram, VirtioBlk.T_FLUSH, 0, null, 0).status());
            }
            Thread vq = null;
            long measured = -1;
            long poolBefore = 0;
            long served = 0;
            // The per-kick path (poll, kick read) runs once per round: it takes ~15000 rounds before the JIT has
            // compiled it (interpreted method-handle calls allocate); the per-request path much sooner.
            // rbd: a round waits for the test cluster (~8 ms), so fewer; its kick path is the same code, warmed by
            // the other node types when they ran first in this JVM
            int warmup = nodeType.equals("rbd") ? 3_000 : 15_000;
            for (int round = 0; round < warmup + 1000; round++) {
                if (round == warmup) { // after warm-up: measure the worker over the last 1000 rounds
                    vq = worker("vq-0");
                    measured = mx.getThreadAllocatedBytes(vq.threadId());
                    poolBefore = poolAllocated(mx);
                }
                for (int i = 0; i < slots; i++) {
                    boolean write = i % 2 == 0;
                    Buf payload = thin && !write ? new Buf(discards + 16L * i, 16, false)
                            : new Buf(data + 4096L * i, 4096, !write);
                    q.addDirect(new Buf(hdr[i], 16, false), payload, new Buf(status + i, 1, true));
                }
                q.kick();
                for (int i = 0; i < slots; i++) {
                    assertNotNull(q.awaitUsed(5000));
                    if (round >= warmup) {
                        served++;
                    }
                }
            }
            long allocated = mx.getThreadAllocatedBytes(vq.threadId()) - measured;
            long pool = poolAllocated(mx) - poolBefore;
            System.out.printf("%s: aio=threads pool threads allocated %d bytes%n", nodeType, pool);
            assertTrue(pool < served, "the I/O pool allocates nothing per request either: " + pool);
            if (nodeType.equals("threads")) {
                assertTrue(Thread.getAllStackTraces().keySet().stream().anyMatch(t -> t.getName().startsWith("aio-worker-")),
                        "aio=threads ran on the pool");
            }
            System.out.printf("%s: worker allocated %d bytes over %d requests%n", nodeType, allocated, served);
            assertEquals(32_000, served);
            assertTrue(allocated < served, "less than a byte per request (none per request): " + allocated);
            for (int i = 0; i < slots; i++) {
                assertEquals(0, ram.read(status + i, 1)[0], "request " + i + " succeeded");
            }
            if (thin) {
                var allocating = ((Qcow2Node) node).image().allocatingWritesCounters();
                assertTrue(allocating[0] >= served / 2, "every write allocated: " + java.util.Arrays.toString(allocating));
                assertTrue(allocating[1] > 0, "discards held behind allocating writes: " + java.util.Arrays.toString(allocating));
            }
        } finally {
            node.close();
            if (under != null) {
                under.close();
            }
        }
    }
}

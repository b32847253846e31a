package dev.vhostappliance.block.qcow2;

import static dev.vhostappliance.block.qcow2.QemuTools.checkClean;
import static dev.vhostappliance.block.qcow2.QemuTools.create;
import static dev.vhostappliance.block.qcow2.QemuTools.guestView;
import static dev.vhostappliance.block.qcow2.QemuTools.openQcow2;
import static dev.vhostappliance.block.qcow2.QemuTools.qemuIo;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostappliance.block.io.IoEngine;
import dev.vhostappliance.block.io.IoEngineKind;
import dev.vhostappliance.block.io.IoRequest;
import dev.vhostappliance.block.node.BlockNode;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.Future;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Allocating writes many at once, as a guest's queues send them to a thin image: every write of a batch is
 * in flight together on its queue's engine, several land in each new cluster (the first allocates, the
 * others must wait for it and then write into it, or the first's data or theirs is lost), and several
 * queues do this on the same clusters from their own threads. qemu-img is the referee: the guest's view
 * and a clean check.
 */
class Qcow2ParallelWritesTest extends QemuRefereeTest {
    private static final long SIZE = 16L << 20;
    private static final int BLOCK = 4096;
    /** 4 KiB blocks in the first 2 MiB (32 clusters of 64 KiB): many writes to each cluster. */
    private static final int BLOCKS = (2 << 20) / BLOCK;

    @ParameterizedTest
    @EnumSource(value = IoEngineKind.class, names = {"IO_URING", "THREADS"})
    void oneQueueWithEveryWriteInFlightAtOnce(IoEngineKind kind) throws Exception {
        Path base = dir.resolve("base.raw");
        Path img = dir.resolve("top.qcow2");
        QemuTools.run("qemu-img", "create", "-q", "-f", "raw", base.toString(), Long.toString(SIZE));
        qemuIo(base, "raw", "write -P 0x5a 0 " + SIZE);
        create(img, "cluster_size=65536,backing_file=" + base + ",backing_fmt=raw", SIZE);
        byte[] mirror = guestView(img, dir);
        BlockNode node = openQcow2(graph, "top", img);

        List<Integer> order = shuffledBlocks(new Random(1));
        try (Queue q = new Queue(node, kind, 256)) {
            for (int batch = 0; batch < order.size(); batch += 128) {
                for (int i = batch; i < Math.min(order.size(), batch + 128); i++) {
                    q.write(order.get(i), (byte) (i % 250 + 1), mirror);
                }
                q.runAll(); // all 128 queued before one submit: every conflict is a held request
            }
            assertEquals(0, q.flush());
        }
        long[] counters = ((Qcow2Node) node).image().allocatingWritesCounters();
        assertEquals(32, counters[0], "one allocating write per cluster, the others wrote into it");
        assertTrue(counters[1] > 0, "writes held behind an allocation of their cluster");
        assertTrue(counters[2] > 1, "allocating writes in flight at once: " + counters[2]);
        graph.close();
        checkClean(img);
        assertArrayEquals(mirror, guestView(img, dir), "every write and the backing file's data around them");
    }

    @ParameterizedTest
    @EnumSource(value = IoEngineKind.class, names = {"IO_URING", "THREADS"})
    void fourQueuesWritingIntoTheSameNewClusters(IoEngineKind kind) throws Exception {
        Path img = dir.resolve("thin.qcow2");
        create(img, "cluster_size=65536", SIZE);
        BlockNode node = openQcow2(graph, "thin", img);
        byte[] mirror = new byte[(int) SIZE];
        List<Integer> order = shuffledBlocks(new Random(2));
        int queues = 4;
        CyclicBarrier start = new CyclicBarrier(queues);
        AtomicInteger written = new AtomicInteger();
        ExecutorService threads = Executors.newFixedThreadPool(queues);
        try {
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < queues; t++) {
                int me = t;
                done.add(threads.submit(() -> {
                    try (Queue q = new Queue(node, kind, 64)) {
                        start.await();
                        // block i goes to queue i % 4: neighbours in one cluster come from different threads
                        for (int i = me; i < order.size(); i += queues * 32) {
                            for (int j = i; j < Math.min(order.size(), i + queues * 32); j += queues) {
                                q.write(order.get(j), (byte) (j % 250 + 1), mirror);
                            }
                            written.addAndGet(q.runAll());
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) {
                f.get(120, TimeUnit.SECONDS);
            }
        } finally {
            threads.shutdownNow();
        }
        assertEquals(BLOCKS, written.get());
        long[] counters = ((Qcow2Node) node).image().allocatingWritesCounters();
        assertEquals(32, counters[0], "one allocating write per cluster, the others wrote into it");
        assertTrue(counters[1] > 0, "writes held behind another queue's allocation");
        graph.close();
        checkClean(img);
        assertArrayEquals(mirror, guestView(img, dir), "every queue's writes");
    }

    private static List<Integer> shuffledBlocks(Random random) {
        List<Integer> order = new ArrayList<>();
        for (int b = 0; b < BLOCKS; b++) {
            order.add(b);
        }
        Collections.shuffle(order, random);
        return order;
    }

    /** One queue thread: its engine, a request per write in flight, and a buffer per request. */
    private static final class Queue implements AutoCloseable {
        private final BlockNode node;
        private final IoEngine io;
        private final Arena arena = Arena.ofConfined();
        private final List<IoRequest> started = new ArrayList<>();
        private final List<IoRequest> free = new ArrayList<>();
        private int completed;

        Queue(BlockNode node, IoEngineKind kind, int capacity) {
            this.node = node;
            this.io = kind.open(capacity, node.ioFd(), "test");
            for (int i = 0; i < capacity; i++) {
                free.add(new IoRequest());
            }
        }

        /** Queues a write of block b filled with value (not submitted yet) and records it in mirror. */
        void write(int b, byte value, byte[] mirror) {
            IoRequest r = free.removeLast();
            MemorySegment data = arena.allocate(BLOCK, 4096);
            data.fill(value);
            MemorySegment iov = arena.allocate(16, 8);
            iov.set(ValueLayout.JAVA_LONG, 0, data.address());
            iov.set(ValueLayout.JAVA_LONG, 8, BLOCK);
            node.write(io, r, iov, 1, (long) b * BLOCK, BLOCK);
            started.add(r);
            java.util.Arrays.fill(mirror, b * BLOCK, (b + 1) * BLOCK, value);
        }

        /** Submits what was queued and reaps until all of it completed; every result must be 0. */
        int runAll() {
            int want = started.size();
            completed = 0;
            io.submit();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (completed < want) {
                io.reap(r -> {
                    assertEquals(0, r.result(), "write at " + r.offset());
                    completed++;
                    free.add(r);
                });
                assertTrue(System.nanoTime() < deadline, "writes still in flight after 60 s: " + (want - completed));
                Thread.onSpinWait();
            }
            started.clear();
            return want;
        }

        int flush() {
            IoRequest r = free.removeLast();
            node.flush(io, r);
            started.add(r);
            runAll();
            return r.result();
        }

        @Override
        public void close() {
            io.close();
            arena.close();
        }
    }
}

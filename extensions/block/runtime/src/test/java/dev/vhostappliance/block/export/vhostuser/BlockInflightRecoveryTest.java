package dev.vhostappliance.block.export.vhostuser;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostappliance.block.io.IoEngine;
import dev.vhostappliance.block.io.IoRequest;
import dev.vhostappliance.block.node.BlockNode;
import dev.vhostappliance.block.node.NullNode;
import dev.vhostappliance.block.request.VirtioBlk;
import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.testing.DriverQueue;
import dev.vhostappliance.testing.DriverQueue.Buf;
import dev.vhostappliance.testing.GuestRam;
import dev.vhostappliance.testing.TestFrontend;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Many requests in flight, completed out of order, then the backend dies: the next backend, given QEMU's
 * inflight buffer back, resubmits exactly the requests that never completed, each once.
 */
class BlockInflightRecoveryTest {
    private static final long MIB = 1 << 20;
    private static final int SIZE = 128;
    private static final int IN_FLIGHT = 24;
    /** A write here completes the parked reads it names, in the order it names them. */
    private static final long CONTROL_SECTOR = 1000;

    /** Reads park until a control write completes them (on the queue thread, through the engine). */
    static final class GatedNode implements BlockNode {
        private final NullNode inner = new NullNode("gated", 4 * MIB, true, false);
        private final Deque<IoRequest> parked = new ArrayDeque<>();
        private final List<IoRequest> byOrder = new ArrayList<>();

        @Override
        public String name() {
            return "gated";
        }

        @Override
        public long size() {
            return inner.size();
        }

        @Override
        public boolean readOnly() {
            return false;
        }

        @Override
        public void read(IoEngine io, IoRequest r, MemorySegment iov, int iovCount, long offset, long length) {
            parked.add(r);
            byOrder.add(r);
        }

        @Override
        public void write(IoEngine io, IoRequest r, MemorySegment iov, int iovCount, long offset, long length) {
            if (offset == CONTROL_SECTOR * 512) {
                long buf = iov.get(java.lang.foreign.ValueLayout.JAVA_LONG, 0);
                for (int i = 0; i < length / 4; i++) {
                    int which = dev.vhostappliance.block.io.NativeMemory.ALL.get(
                            java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED, buf + 4L * i);
                    if (which >= 0 && which < byOrder.size() && parked.remove(byOrder.get(which))) {
                        io.completeNow(byOrder.get(which), 0);
                    }
                }
            }
            io.completeNow(r, 0);
        }

        @Override
        public void flush(IoEngine io, IoRequest r) {
            io.completeNow(r, 0);
        }

        @Override
        public void discard(IoEngine io, IoRequest r, long offset, long length) {
            io.completeNow(r, 0);
        }

        @Override
        public void writeZeroes(IoEngine io, IoRequest r, long offset, long length, boolean unmap) {
            io.completeNow(r, 0);
        }

        @Override
        public void close() {
        }
    }

    private static byte[] header(int type, long sector) {
        return ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putInt(type).putInt(0).putLong(sector).array();
    }

    private static int read(DriverQueue q, GuestRam ram, long sector) {
        long h = ram.alloc(16, 8);
        ram.write(h, header(VirtioBlk.T_IN, sector));
        return q.addDirect(new Buf(h, 16, false), new Buf(ram.alloc(4096, 512), 4096, true), new Buf(ram.alloc(1, 1), 1, true));
    }

    @Test
    void requestsInFlightWhenTheBackendDiesAreResubmittedExactlyOnce() throws Exception {
        try (GuestRam ram = GuestRam.single(8 * MIB)) {
            GatedNode gated = new GatedNode();
            VirtioBlkDevice first = new VirtioBlkDevice(gated, true, 1, 512, false, null);
            DriverQueue q;
            int inflightFd;
            long inflightSize;
            List<Integer> heads = new ArrayList<>();
            Set<Integer> completedFirst = new HashSet<>();
            // complete these, out of order; the rest stay in flight
            int[] complete = {17, 3, 22, 9, 0, 11, 5};
            try (TestFrontend fe = TestFrontend.connect(first)) {
                fe.negotiate(first.features());
                assertEquals(0, fe.setMemTable(ram));
                inflightFd = fe.getInflightFd(1, SIZE);
                inflightSize = fe.inflightSize;
                assertEquals(0, fe.setInflightFd(inflightFd, inflightSize, 1, SIZE));
                q = fe.startQueue(ram, 0, SIZE);
                for (int i = 0; i < IN_FLIGHT; i++) {
                    heads.add(read(q, ram, i));
                }
                q.kick();
                assertNull(q.awaitUsed(200), "every read is parked in flight");
                ByteBuffer order = ByteBuffer.allocate(512).order(ByteOrder.LITTLE_ENDIAN);
                for (int c : complete) {
                    order.putInt(c);
                }
                while (order.hasRemaining()) {
                    order.putInt(-1);
                }
                long h = ram.alloc(16, 8);
                ram.write(h, header(VirtioBlk.T_OUT, CONTROL_SECTOR));
                long d = ram.alloc(512, 512);
                ram.write(d, order.array());
                int control = q.addDirect(new Buf(h, 16, false), new Buf(d, 512, false), new Buf(ram.alloc(1, 1), 1, true));
                q.kick();
                List<Integer> usedOrder = new ArrayList<>();
                for (int i = 0; i < complete.length + 1; i++) {
                    DriverQueue.Used u = q.awaitUsed(5000);
                    assertNotNull(u, "completion " + i);
                    usedOrder.add(u.head());
                    completedFirst.add(u.head());
                }
                List<Integer> expected = new ArrayList<>();
                for (int c : complete) {
                    expected.add(heads.get(c));
                }
                expected.add(control);
                assertEquals(expected, usedOrder, "completed in the order the node finished them, not the order popped");
                // the backend dies here, with 17 reads in flight
            }
            // Second backend over a plain node: QEMU hands the inflight buffer back, base = used idx.
            VirtioBlkDevice second = new VirtioBlkDevice(new NullNode("n", 4 * MIB, true, false), true, 1, 512, false, null);
            try (TestFrontend fe = TestFrontend.connect(second)) {
                fe.negotiate(second.features());
                assertEquals(0, fe.setMemTable(ram));
                assertEquals(0, fe.setInflightFd(inflightFd, inflightSize, 1, SIZE));
                fe.startQueue(ram, 0, q, complete.length + 1);
                Set<Integer> resubmitted = new HashSet<>();
                for (int i = 0; i < IN_FLIGHT - complete.length; i++) {
                    DriverQueue.Used u = q.awaitUsed(5000);
                    assertNotNull(u, "in-flight request " + i + " resubmitted");
                    assertTrue(resubmitted.add(u.head()), "head " + u.head() + " resubmitted once");
                }
                Set<Integer> expected = new HashSet<>(heads);
                expected.removeAll(completedFirst);
                assertEquals(expected, resubmitted, "exactly the requests that were in flight");
                assertNull(q.awaitUsed(300), "nothing completed twice");
                // and the ring goes on
                read(q, ram, 1);
                q.kick();
                assertNotNull(q.awaitUsed(5000));
            }
            LibC.close(inflightFd);
        }
    }
}

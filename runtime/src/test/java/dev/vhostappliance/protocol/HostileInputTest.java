package dev.vhostappliance.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.testing.DriverQueue;
import dev.vhostappliance.testing.DriverQueue.Buf;
import dev.vhostappliance.testing.EchoDevice;
import dev.vhostappliance.testing.GuestRam;
import dev.vhostappliance.testing.TestFrontend;
import java.lang.foreign.MemorySegment;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Hostile frontends and guests, one case a row. Protocol cases: the request is refused (error reply or
 * REPLY_ACK failure) and the backend goes on answering. Ring cases: the malformed queue stops (broken),
 * while the device's other queue keeps serving. In every case no file descriptor is leaked.
 */
class HostileInputTest {
    private static final long MIB = 1 << 20;
    private static final int QSIZE = 16;

    /** What a case does, given the connected frontend, its RAM and two started queues. */
    interface Action {
        void run(TestFrontend fe, GuestRam ram, DriverQueue[] q) throws Exception;
    }

    static Arguments protocol(String name, Action a) {
        return Arguments.of(name, a, false);
    }

    static Arguments ring(String name, Action a) {
        return Arguments.of(name, a, true);
    }

    private static void refused(TestFrontend fe, int request, int flags, int size, java.util.function.Consumer<Message> fill,
            int... fds) throws Exception {
        fe.send(request, flags | Message.FLAG_NEED_REPLY, size, fill, fds);
        Message r = fe.receive();
        assertEquals(request, r.request());
        if (r.size() == 8) {
            assertNotEquals(0, r.u64(0), "refused with a non-zero REPLY_ACK");
        } else {
            assertEquals(0, r.size(), "refused with a zero-length reply");
        }
    }

    private static void memTable(TestFrontend fe, long[][] regions, int[] fds) throws Exception {
        refused(fe, VhostUserRequest.SET_MEM_TABLE, Message.VERSION, 8 + 32 * regions.length, m -> {
            m.setU32(0, regions.length);
            for (int i = 0; i < regions.length; i++) {
                for (int k = 0; k < 4; k++) {
                    m.setU64(8 + 32L * i + 8L * k, regions[i][k]);
                }
            }
        }, fds);
    }

    private static int memfd(long size) throws Exception {
        int fd = LibC.memfdCreate("hostile", LibC.MFD_CLOEXEC);
        LibC.ftruncate(fd, size);
        return fd;
    }

    /** A request whose chain is whatever the case wrote at head: published and kicked on queue 0. */
    private static void publishRaw(DriverQueue q, int head) {
        q.publish(head);
        q.kick();
    }

    /** A 2-entry indirect table at t whose second entry leads back to the first, as request 0 of q. */
    private static void loopingIndirectTable(GuestRam ram, DriverQueue q, long t) {
        long b = ram.alloc(64, 8);
        MemorySegment table = ram.at(t, 32);
        q.writeDesc(table, 0, b, 8, 1, 1);
        q.writeDesc(table, 1, b, 8, 1, 0);
        q.writeDesc(q.descTable(), 0, t, 32, 4, 0);
        publishRaw(q, 0);
    }

    static Stream<Arguments> cases() {
        return Stream.of(
                protocol("payload larger than any message", (fe, ram, q) -> {
                    fe.send(VhostUserRequest.SET_FEATURES, Message.VERSION | Message.FLAG_NEED_REPLY, 4000, null);
                    assertNotEquals(0, fe.ack(VhostUserRequest.SET_FEATURES));
                }),
                protocol("payload above the message buffer is drained", (fe, ram, q) -> {
                    // The header claims 6000 bytes and they follow: drained and refused, the stream stays in sync.
                    MemorySegment all = java.lang.foreign.Arena.ofAuto().allocate(12 + 6000);
                    all.set(java.lang.foreign.ValueLayout.JAVA_INT, 0, VhostUserRequest.SET_CONFIG);
                    all.set(java.lang.foreign.ValueLayout.JAVA_INT, 4, Message.VERSION | Message.FLAG_NEED_REPLY);
                    all.set(java.lang.foreign.ValueLayout.JAVA_INT, 8, 6000);
                    assertEquals(12 + 6000, fe.sendRaw(all));
                    assertNotEquals(0, fe.ack(VhostUserRequest.SET_CONFIG));
                }),
                protocol("SET_FEATURES with a short payload", (fe, ram, q) ->
                        refused(fe, VhostUserRequest.SET_FEATURES, Message.VERSION, 4, m -> m.setU32(0, 1))),
                protocol("features that were never offered", (fe, ram, q) ->
                        refused(fe, VhostUserRequest.SET_FEATURES, Message.VERSION, 8, m -> m.setU64(0, -1L))),
                protocol("protocol features that were never offered", (fe, ram, q) ->
                        refused(fe, VhostUserRequest.SET_PROTOCOL_FEATURES, Message.VERSION, 8, m -> m.setU64(0, 1L << 40))),
                protocol("unknown request", (fe, ram, q) -> refused(fe, 99, Message.VERSION, 0, null)),
                protocol("wrong protocol version", (fe, ram, q) -> refused(fe, VhostUserRequest.SET_OWNER, 0x2, 0, null)),
                protocol("GET_FEATURES with a payload", (fe, ram, q) ->
                        refused(fe, VhostUserRequest.GET_FEATURES, Message.VERSION, 8, m -> m.setU64(0, 0))),
                protocol("extra fds on a request that takes none", (fe, ram, q) -> {
                    int a = memfd(4096);
                    int b = memfd(4096);
                    refused(fe, VhostUserRequest.SET_OWNER, Message.VERSION, 0, null, a, b);
                    LibC.close(a);
                    LibC.close(b);
                }),
                protocol("more fds than any message carries", (fe, ram, q) -> {
                    int[] fds = new int[8];
                    for (int i = 0; i < fds.length; i++) {
                        fds[i] = memfd(4096);
                    }
                    memTable(fe, new long[][] {{0, 4096, 0x1000, 0}, {0x10000, 4096, 0x20000, 0}}, fds);
                    for (int fd : fds) {
                        LibC.close(fd);
                    }
                }),
                protocol("memory table with fewer fds than regions", (fe, ram, q) -> {
                    int fd = memfd(8192);
                    memTable(fe, new long[][] {{0, 4096, 0x1000, 0}, {0x10000, 4096, 0x20000, 0}}, new int[] {fd});
                    LibC.close(fd);
                }),
                protocol("memory table with zero regions", (fe, ram, q) -> memTable(fe, new long[0][], new int[0])),
                protocol("memory table with overlapping regions", (fe, ram, q) -> {
                    int a = memfd(2 * MIB);
                    int b = memfd(2 * MIB);
                    memTable(fe, new long[][] {{0, 2 * MIB, 0x7000_0000L, 0}, {MIB, 2 * MIB, 0x9000_0000L, 0}}, new int[] {a, b});
                    LibC.close(a);
                    LibC.close(b);
                }),
                protocol("memory region that wraps past 2^64", (fe, ram, q) -> {
                    int a = memfd(2 * MIB);
                    memTable(fe, new long[][] {{-MIB, 2 * MIB, 0x7000_0000L, 0}}, new int[] {a});
                    LibC.close(a);
                }),
                protocol("memory region larger than its fd", (fe, ram, q) -> {
                    int a = memfd(MIB);
                    memTable(fe, new long[][] {{0, 64 * MIB, 0x7000_0000L, 0}}, new int[] {a});
                    LibC.close(a);
                }),
                protocol("memory region with a huge mmap offset", (fe, ram, q) -> {
                    int a = memfd(MIB);
                    memTable(fe, new long[][] {{0, MIB, 0x7000_0000L, Long.MAX_VALUE - 10}}, new int[] {a});
                    LibC.close(a);
                }),
                protocol("memory region fd that is not memory", (fe, ram, q) -> {
                    int[] pair = dev.vhostappliance.libc.UnixSockets.pair();
                    memTable(fe, new long[][] {{0, MIB, 0x7000_0000L, 0}}, new int[] {pair[0]});
                    LibC.close(pair[0]);
                    LibC.close(pair[1]);
                }),
                protocol("queue size not a power of two", (fe, ram, q) ->
                        assertNotEquals(0, fe.vringState(VhostUserRequest.SET_VRING_NUM, 1, 100))),
                protocol("queue size above 32768", (fe, ram, q) ->
                        assertNotEquals(0, fe.vringState(VhostUserRequest.SET_VRING_NUM, 1, 65536))),
                protocol("queue size zero", (fe, ram, q) ->
                        assertNotEquals(0, fe.vringState(VhostUserRequest.SET_VRING_NUM, 1, 0))),
                protocol("vring index beyond the device's queues", (fe, ram, q) ->
                        assertNotEquals(0, fe.vringState(VhostUserRequest.SET_VRING_NUM, 7, 16))),
                protocol("GET_VRING_BASE of a queue that does not exist", (fe, ram, q) ->
                        refused(fe, VhostUserRequest.GET_VRING_BASE, Message.VERSION, 8, m -> m.setU32(0, -1))),
                protocol("ring addresses outside guest memory", (fe, ram, q) ->
                        refused(fe, VhostUserRequest.SET_VRING_ADDR, Message.VERSION, 40, m -> {
                            m.setU32(0, 1);
                            m.setU64(8, 0x4000_0000_0000L);
                            m.setU64(16, 0x4000_0001_0000L);
                            m.setU64(24, 0x4000_0002_0000L);
                        })),
                protocol("misaligned ring addresses", (fe, ram, q) ->
                        refused(fe, VhostUserRequest.SET_VRING_ADDR, Message.VERSION, 40, m -> {
                            m.setU32(0, 1);
                            m.setU64(8, ram.uvaOf(q[1].descGpa) + 8);
                            m.setU64(16, ram.uvaOf(q[1].usedGpa));
                            m.setU64(24, ram.uvaOf(q[1].availGpa));
                        })),
                protocol("kick fd flag with an fd count that does not match", (fe, ram, q) -> {
                    int a = LibC.eventfd(0, LibC.EFD_CLOEXEC);
                    int b = LibC.eventfd(0, LibC.EFD_CLOEXEC);
                    assertNotEquals(0, fe.setU64Acked(VhostUserRequest.SET_VRING_KICK, 1, a, b));
                    assertNotEquals(0, fe.setU64Acked(VhostUserRequest.SET_VRING_CALL, 1 | 0x100, a));
                    LibC.close(a);
                    LibC.close(b);
                }),
                protocol("reserved bits in a vring fd request", (fe, ram, q) -> {
                    int a = LibC.eventfd(0, LibC.EFD_CLOEXEC);
                    assertNotEquals(0, fe.setU64Acked(VhostUserRequest.SET_VRING_KICK, 1 | (1L << 40), a));
                    LibC.close(a);
                }),
                protocol("GET_CONFIG beyond the config space", (fe, ram, q) ->
                        refused(fe, VhostUserRequest.GET_CONFIG, Message.VERSION, 12 + 256, m -> {
                            m.setU32(0, 0x7fff_ff00);
                            m.setU32(4, 256);
                        })),
                protocol("GET_CONFIG size larger than the payload", (fe, ram, q) ->
                        refused(fe, VhostUserRequest.GET_CONFIG, Message.VERSION, 12 + 4, m -> m.setU32(4, 4096))),
                protocol("SET_VRING_ENABLE with a value other than 0 or 1", (fe, ram, q) ->
                        assertNotEquals(0, fe.vringState(VhostUserRequest.SET_VRING_ENABLE, 1, 7))),
                protocol("SET_LOG_BASE without its fd", (fe, ram, q) ->
                        refused(fe, VhostUserRequest.SET_LOG_BASE, Message.VERSION, 16, m -> m.setU64(0, 4096))),
                protocol("inflight buffer for more queues than exist", (fe, ram, q) ->
                        refused(fe, VhostUserRequest.GET_INFLIGHT_FD, Message.VERSION, 24, m -> m.setU32(16, 9 | (16 << 16)))),
                protocol("inflight buffer of a non power-of-two queue", (fe, ram, q) ->
                        refused(fe, VhostUserRequest.GET_INFLIGHT_FD, Message.VERSION, 24, m -> m.setU32(16, 1 | (3 << 16)))),
                protocol("gpu socket for a device that has none", (fe, ram, q) -> {
                    int a = memfd(4096);
                    refused(fe, VhostUserRequest.GPU_SET_SOCKET, Message.VERSION, 0, null, a);
                    LibC.close(a);
                }),

                ring("descriptor loop", (fe, ram, q) -> {
                    long b = ram.alloc(64, 8);
                    q[0].writeDesc(q[0].descTable(), 0, b, 8, 1, 1);
                    q[0].writeDesc(q[0].descTable(), 1, b, 8, 1, 0);
                    publishRaw(q[0], 0);
                }),
                ring("direct chain longer than the queue", (fe, ram, q) -> {
                    long b = ram.alloc(64, 8);
                    for (int i = 0; i < QSIZE; i++) {
                        q[0].writeDesc(q[0].descTable(), i, b, 8, 1, (i + 1) % QSIZE);
                    }
                    publishRaw(q[0], 3);
                }),
                ring("next index out of range", (fe, ram, q) -> {
                    long b = ram.alloc(64, 8);
                    q[0].writeDesc(q[0].descTable(), 0, b, 8, 1, 999);
                    publishRaw(q[0], 0);
                }),
                ring("head index out of range", (fe, ram, q) -> publishRaw(q[0], QSIZE + 5)),
                ring("avail index more than a queue ahead", (fe, ram, q) -> {
                    q[0].setAvailIdx(QSIZE + 3);
                    q[0].kick();
                }),
                ring("buffer outside every region", (fe, ram, q) -> {
                    q[0].writeDesc(q[0].descTable(), 0, 0x7_0000_0000L, 512, 0, 0);
                    publishRaw(q[0], 0);
                }),
                ring("buffer running past the end of guest memory", (fe, ram, q) -> {
                    q[0].writeDesc(q[0].descTable(), 0, 4 * MIB - 100, 4096, 2, 0);
                    publishRaw(q[0], 0);
                }),
                ring("buffer length above 4 GiB in total", (fe, ram, q) -> {
                    long b = ram.alloc(64, 8);
                    q[0].writeDesc(q[0].descTable(), 0, b, -1, 1, 1);
                    q[0].writeDesc(q[0].descTable(), 1, b, -1, 2, 0);
                    publishRaw(q[0], 0);
                }),
                ring("readable descriptor after a writable one", (fe, ram, q) -> {
                    long b = ram.alloc(64, 8);
                    q[0].writeDesc(q[0].descTable(), 0, b, 8, 2 | 1, 1);
                    q[0].writeDesc(q[0].descTable(), 1, b + 16, 8, 0, 0);
                    publishRaw(q[0], 0);
                }),
                ring("indirect inside indirect", (fe, ram, q) -> {
                    long t = ram.alloc(32, 16);
                    q[0].writeDesc(ram.at(t, 32), 0, t, 32, 4, 0);
                    q[0].writeDesc(q[0].descTable(), 0, t, 32, 4, 0);
                    publishRaw(q[0], 0);
                }),
                ring("zero-length indirect table", (fe, ram, q) -> {
                    long t = ram.alloc(32, 16);
                    q[0].writeDesc(q[0].descTable(), 0, t, 0, 4, 0);
                    publishRaw(q[0], 0);
                }),
                ring("indirect table length not a multiple of 16", (fe, ram, q) -> {
                    long t = ram.alloc(32, 16);
                    q[0].writeDesc(q[0].descTable(), 0, t, 20, 4, 0);
                    publishRaw(q[0], 0);
                }),
                ring("indirect table above 1024 entries", (fe, ram, q) -> {
                    long t = ram.alloc(16 * 1025, 16);
                    q[0].writeDesc(q[0].descTable(), 0, t, 16 * 1025, 4, 0);
                    publishRaw(q[0], 0);
                }),
                ring("indirect table outside guest memory", (fe, ram, q) -> {
                    q[0].writeDesc(q[0].descTable(), 0, 0x7_0000_0000L, 64, 4, 0);
                    publishRaw(q[0], 0);
                }),
                ring("indirect table that loops", (fe, ram, q) -> {
                    loopingIndirectTable(ram, q[0], ram.alloc(32, 16));
                }),
                ring("INDIRECT together with NEXT", (fe, ram, q) -> {
                    long t = ram.alloc(32, 16);
                    q[0].writeDesc(q[0].descTable(), 0, t, 32, 4 | 1, 1);
                    publishRaw(q[0], 0);
                }),
                ring("misaligned indirect table", (fe, ram, q) -> {
                    loopingIndirectTable(ram, q[0], ram.alloc(64, 16) + 3); // unaligned reads are fine; it loops
                }));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void hostileInputIsAnsweredAndServingGoesOn(String name, Action action, boolean breaksQueue0) throws Exception {
        int fdsBefore = TestFrontend.openFds();
        EchoDevice dev = new EchoDevice(2);
        try (GuestRam ram = GuestRam.single(4 * MIB)) {
            try (TestFrontend fe = TestFrontend.connect(dev)) {
                DriverQueue[] q = fe.ready(ram, EchoDevice.FEATURES, 2, QSIZE);
                int errFd = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
                assertEquals(0, fe.setU64Acked(VhostUserRequest.SET_VRING_ERR, 0, errFd));
                action.run(fe, ram, q);
                assertTrue(fe.alive(), "backend still answers after: " + name);
                dev.vhostappliance.server.Poll poll = new dev.vhostappliance.server.Poll(1);
                poll.add(errFd);
                if (breaksQueue0) {
                    // The backend saw the malformed ring and said so on the error fd; the request never completes.
                    assertEquals(1, poll.await(5000), "queue 0 error fd signalled for: " + name);
                    assertNull(q[0].pollUsed(), "malformed request must not complete");
                } else {
                    assertEquals(0, poll.await(50), "no queue error for a protocol-level refusal: " + name);
                }
                LibC.close(errFd);
                // ...and the other queue of the same device keeps serving.
                long b = ram.alloc(64, 8);
                ram.write(b, new byte[] {1, 2, 3, 4, 5, 6, 7, 8});
                q[1].addDirect(new Buf(b, 8, false), new Buf(b + 32, 8, true));
                q[1].kick();
                DriverQueue.Used u = q[1].awaitUsed(5000);
                assertNotNull(u, "queue 1 still served after: " + name);
                assertEquals(8, u.len());
                q[0].close();
                q[1].close();
            }
        }
        assertEquals(fdsBefore, TestFrontend.openFds(), "no fd leaked by: " + name);
    }
}

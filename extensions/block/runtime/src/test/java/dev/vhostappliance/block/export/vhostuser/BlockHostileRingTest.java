package dev.vhostappliance.block.export.vhostuser;

import dev.vhostappliance.block.node.FileNode;
import dev.vhostappliance.block.node.NullNode;
import dev.vhostappliance.block.request.VirtioBlk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostappliance.testing.DriverQueue;
import dev.vhostappliance.testing.DriverQueue.Buf;
import dev.vhostappliance.testing.GuestRam;
import dev.vhostappliance.testing.TestFrontend;
import java.io.RandomAccessFile;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Hostile guests against the real block device (beyond the runtime's ring table test): crafted rings and
 * requests on queue 0 of a two-queue device over a real image, guest memory in two regions with a hole
 * between them. For each attack: the backend keeps serving, the attacked queue answers with an error status
 * or is broken (needs reset), queue 1 keeps reading correctly, and the image is unchanged.
 */
class BlockHostileRingTest {
    static final long MIB = 1 << 20;
    static final long REGION2 = 64 * MIB; // second region at 64 MiB; 8..64 MiB is a hole

    @TempDir
    Path dir;

    /** An attack on q0; returns true if the queue must have answered (error statuses), false if it may be broken. */
    @FunctionalInterface
    interface Attack {
        void run(DriverQueue q0, GuestRam ram, TestFrontend fe) throws Exception;
    }

    static ByteBuffer header(int type, long sector) {
        return ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putInt(0, type).putLong(8, sector);
    }

    static long put(GuestRam ram, ByteBuffer b) {
        long gpa = ram.alloc(b.capacity(), 16);
        ram.write(gpa, b.array());
        return gpa;
    }

    static void loopChain(DriverQueue q, GuestRam ram) {
        long h = put(ram, header(VirtioBlk.T_IN, 0));
        MemorySegment t = q.descTable();
        q.writeDesc(t, 0, h, 16, 1, 1);
        q.writeDesc(t, 1, h, 16, 1 | 2, 0); // back to 0: a loop
        q.publish(0);
        q.kick();
    }

    static void indirect(DriverQueue q, GuestRam ram, int entries, boolean nested, long tableGpa) {
        long h = put(ram, header(VirtioBlk.T_IN, 0));
        long table = tableGpa != 0 ? tableGpa : ram.alloc(16L * entries, 16);
        if (tableGpa == 0) {
            MemorySegment t = ram.at(table, 16L * entries);
            for (int i = 0; i < entries; i++) {
                boolean last = i == entries - 1;
                q.writeDesc(t, i, h, 16, (last ? 0 : 1) | (nested && i == 0 ? 4 : 0), i + 1);
            }
        }
        q.writeDesc(q.descTable(), 0, table, 16 * entries, 4, 0);
        q.publish(0);
        q.kick();
    }

    static Stream<Arguments> attacks() {
        return Stream.of(
                Arguments.of("descriptor loop", (Attack) (q, ram, fe) -> loopChain(q, ram)),
                Arguments.of("indirect chain longer than the queue", (Attack) (q, ram, fe) -> indirect(q, ram, 200, false, 0)),
                Arguments.of("indirect table inside an indirect table", (Attack) (q, ram, fe) -> indirect(q, ram, 3, true, 0)),
                Arguments.of("indirect table outside guest memory", (Attack) (q, ram, fe) -> indirect(q, ram, 4, false, 32 * MIB)),
                Arguments.of("data buffer in the hole between regions", (Attack) (q, ram, fe) -> {
                    q.addDirect(new Buf(put(ram, header(VirtioBlk.T_IN, 0)), 16, false), new Buf(32 * MIB, 4096, true),
                            new Buf(ram.alloc(1, 1), 1, true));
                    q.kick();
                }),
                Arguments.of("data buffer across the end of a region", (Attack) (q, ram, fe) -> {
                    q.addDirect(new Buf(put(ram, header(VirtioBlk.T_IN, 0)), 16, false), new Buf(8 * MIB - 2048, 4096, true),
                            new Buf(ram.alloc(1, 1), 1, true));
                    q.kick();
                }),
                Arguments.of("more than 4 GiB of buffers", (Attack) (q, ram, fe) -> {
                    long d = ram.alloc(4096, 4096);
                    q.addDirect(new Buf(put(ram, header(VirtioBlk.T_IN, 0)), 16, false), new Buf(d, 0x7fff_ffff, true),
                            new Buf(d, 0x7fff_ffff, true), new Buf(d, 0x7fff_ffff, true), new Buf(ram.alloc(1, 1), 1, true));
                    q.kick();
                }),
                Arguments.of("status buffer read-only", (Attack) (q, ram, fe) -> {
                    q.addDirect(new Buf(put(ram, header(VirtioBlk.T_IN, 0)), 16, false), new Buf(ram.alloc(1, 1), 1, false));
                    q.kick();
                    assertEquals(0, q.awaitUsed(5000).len(), "no in-band answer possible");
                }),
                Arguments.of("status buffer of zero bytes", (Attack) (q, ram, fe) -> {
                    q.addDirect(new Buf(put(ram, header(VirtioBlk.T_OUT, 0)), 16, false), new Buf(ram.alloc(512, 512), 512, false),
                            new Buf(ram.alloc(1, 1), 0, true));
                    q.kick();
                    assertEquals(0, q.awaitUsed(5000).len());
                }),
                Arguments.of("header split over three buffers, write past the end", (Attack) (q, ram, fe) -> {
                    long h = put(ram, header(VirtioBlk.T_OUT, 2048)); // 1 MiB image: sector 2048 is its end
                    long st = ram.alloc(1, 1);
                    q.addDirect(new Buf(h, 5, false), new Buf(h + 5, 6, false), new Buf(h + 11, 5, false),
                            new Buf(ram.alloc(512, 512), 512, false), new Buf(st, 1, true));
                    q.kick();
                    assertEquals(1, q.awaitUsed(5000).len());
                    assertEquals(VirtioBlk.S_IOERR, ram.read(st, 1)[0]);
                }),
                Arguments.of("avail index 1000 ahead", (Attack) (q, ram, fe) -> {
                    q.setAvailIdx(q.availIdx() + 1000);
                    q.kick();
                }),
                Arguments.of("a flood of kicks with nothing new", (Attack) (q, ram, fe) -> {
                    for (int i = 0; i < 20_000; i++) {
                        q.kick();
                    }
                }));
    }

    private Path image() throws Exception {
        Path p = dir.resolve("disk.img");
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(MIB);
            f.seek(0);
            byte[] b = new byte[4096];
            for (int i = 0; i < b.length; i++) {
                b[i] = (byte) (i * 7);
            }
            f.write(b);
        }
        return p;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("attacks")
    void theAttackedQueueFailsAloneAndNothingElseChanges(String name, Attack attack) throws Exception {
        Path img = image();
        byte[] before = Files.readAllBytes(img);
        VirtioBlkDevice dev = new VirtioBlkDevice(FileNode.open("t", img, FileNode.Options.defaults(false)), true, 2, 512,
                false, null);
        try (GuestRam ram = new GuestRam(new long[] {0, REGION2}, new long[] {8 * MIB, 8 * MIB});
                TestFrontend fe = TestFrontend.connect(dev)) {
            DriverQueue[] q = fe.ready(ram, dev.features(), 2, 64);
            attack.run(q[0], ram, fe);
            Thread.sleep(50);
            // queue 1 still reads the image correctly
            VirtioBlkDeviceTest.Done r = VirtioBlkDeviceTest.request(q[1], ram, VirtioBlk.T_IN, 0, null, 4096);
            assertEquals(VirtioBlk.S_OK, r.status(), name + ": the other queue serves");
            byte[] data = ram.read(r.in(), 4096);
            for (int i = 0; i < 4096; i++) {
                assertEquals((byte) (i * 7), data[i]);
            }
            assertTrue(fe.alive(), name + ": backend alive");
            assertEquals(java.util.Arrays.hashCode(before), java.util.Arrays.hashCode(Files.readAllBytes(img)), name + ": image unchanged");
        } finally {
            dev.node().close();
        }
    }

    /** With O_DIRECT the reads are in the kernel (io_uring) while the table changes under them. */
    @ParameterizedTest(name = "O_DIRECT {0}")
    @org.junit.jupiter.params.provider.ValueSource(booleans = {false, true})
    void requestsRacingMemoryTableChangesAllComplete(boolean direct) throws Exception {
        Path img = image();
        VirtioBlkDevice dev = new VirtioBlkDevice(FileNode.open("t", img, FileNode.Options.defaults(false).withDirect(direct)),
                true, 2, 512, false, null);
        try (GuestRam ram = GuestRam.single(16 * MIB); TestFrontend fe = TestFrontend.connect(dev)) {
            DriverQueue[] q = fe.ready(ram, dev.features(), 2, 64);
            AtomicInteger ok = new AtomicInteger();
            AtomicInteger bad = new AtomicInteger();
            Thread io = Thread.ofPlatform().start(() -> {
                try {
                    for (int i = 0; i < 500; i++) {
                        int status = VirtioBlkDeviceTest.request(q[0], ram, VirtioBlk.T_IN, i % 8, null, 4096).status();
                        (status == VirtioBlk.S_OK ? ok : bad).incrementAndGet();
                    }
                } catch (Throwable t) {
                    bad.addAndGet(1000);
                }
            });
            for (int i = 0; i < 40; i++) {
                assertEquals(0, fe.setMemTable(ram), "SET_MEM_TABLE " + i);
            }
            io.join(60_000);
            assertEquals(500, ok.get(), "every request completed OK across " + 40 + " memory table changes; bad=" + bad.get());
            assertTrue(fe.alive());
        } finally {
            dev.node().close();
        }
    }
}

package dev.vhostappliance.block.export.vhostuser;

import dev.vhostappliance.block.node.FileNode;
import dev.vhostappliance.block.node.NullNode;
import dev.vhostappliance.block.request.VirtioBlk;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.UnixSockets;
import dev.vhostappliance.protocol.Message;
import dev.vhostappliance.protocol.MessageChannel;
import dev.vhostappliance.protocol.VhostUserRequest;
import dev.vhostappliance.testing.DriverQueue;
import dev.vhostappliance.testing.DriverQueue.Buf;
import dev.vhostappliance.testing.GuestRam;
import dev.vhostappliance.testing.TestFrontend;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import dev.vhostappliance.block.io.IoEngineKind;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

/** virtio-blk requests through the core's test frontend, against a real image file. */
class VirtioBlkDeviceTest {
    private static final long MIB = 1 << 20;

    @TempDir
    Path dir;

    private Path image(long size) throws Exception {
        Path p = dir.resolve("disk-" + size + ".img");
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(size);
        }
        return p;
    }

    private static FileNode file(Path img, boolean readOnly) throws Exception {
        return FileNode.open("test", img, FileNode.Options.defaults(readOnly));
    }

    private static FileNode file(Path img, String aio, boolean direct) throws Exception {
        return FileNode.open("test", img, FileNode.Options.defaults(false).withAio(IoEngineKind.fromOption(aio))
                .withDirect(direct));
    }

    private static byte[] header(int type, long sector) {
        return ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putInt(type).putInt(0).putLong(sector).array();
    }

    /** A completed request: its status byte, the used length, and where its data-in buffer is. */
    record Done(int status, int len, long in) {
    }

    /** Sends one request (header, optional data out, data-in room, status) and waits for it. */
    static Done request(DriverQueue q, GuestRam ram, int type, long sector, byte[] out, int inLen) throws Exception {
        long h = ram.alloc(16, 8);
        ram.write(h, header(type, sector));
        long status = ram.alloc(1, 1);
        ram.write(status, new byte[] {(byte) 0xee});
        java.util.List<Buf> bufs = new java.util.ArrayList<>();
        bufs.add(new Buf(h, 16, false));
        if (out != null) {
            long d = ram.alloc(out.length, 512);
            ram.write(d, out);
            bufs.add(new Buf(d, out.length, false));
        }
        long in = 0;
        if (inLen > 0) {
            in = ram.alloc(inLen, 512);
            bufs.add(new Buf(in, inLen, true));
        }
        bufs.add(new Buf(status, 1, true));
        q.addDirect(bufs.toArray(new Buf[0]));
        q.kick();
        DriverQueue.Used u = q.awaitUsed(5000);
        assertNotNull(u, "request completed");
        return new Done(ram.read(status, 1)[0], u.len(), in);
    }

    private static TestFrontend connect(VirtioBlkDevice dev) throws Exception {
        return TestFrontend.connect(dev);
    }

    @ParameterizedTest
    @ValueSource(strings = {"io_uring", "threads"})
    void writeThenReadBackThroughTheImage(String aio) throws Exception {
        Path img = image(MIB);
        VirtioBlkDevice dev = new VirtioBlkDevice(file(img, aio, false), true, 1, 512, false, "serial-1");
        try (GuestRam ram = GuestRam.single(4 * MIB); TestFrontend fe = connect(dev)) {
            DriverQueue q = fe.ready(ram, dev.features(), 1, 64)[0];
            byte[] data = new byte[8192];
            new Random(5).nextBytes(data);
            Done w = request(q, ram, VirtioBlk.T_OUT, 8, data, 0);
            assertEquals(VirtioBlk.S_OK, w.status());
            assertEquals(1, w.len(), "only the status byte is written for OUT");
            assertArrayEquals(data, Arrays.copyOfRange(Files.readAllBytes(img), 4096, 4096 + 8192), "data reached the file");
            Done r = request(q, ram, VirtioBlk.T_IN, 8, null, 8192);
            assertEquals(VirtioBlk.S_OK, r.status());
            assertEquals(8193, r.len());
            assertArrayEquals(data, ram.read(r.in(), 8192));
            assertEquals(VirtioBlk.S_OK, request(q, ram, VirtioBlk.T_FLUSH, 0, null, 0).status());
            assertFalse(dev.node().waitsOnDevice(), "buffered I/O is answered from the page cache: polled for");
            assertFalse(dev.awaitsCompletions(0), "nothing in flight");
            Done id = request(q, ram, VirtioBlk.T_GET_ID, 0, null, 20);
            assertEquals(VirtioBlk.S_OK, id.status());
            byte[] serial = ram.read(id.in(), 20);
            assertArrayEquals(Arrays.copyOf("serial-1".getBytes(), 20), serial);
        } finally {
            dev.node().close();
        }
    }

    @Test
    void badRequestsGetErrorStatuses() throws Exception {
        Path img = image(MIB);
        VirtioBlkDevice dev = new VirtioBlkDevice(file(img, false), true, 1, 4096, false, null);
        try (GuestRam ram = GuestRam.single(4 * MIB); TestFrontend fe = connect(dev)) {
            DriverQueue q = fe.ready(ram, dev.features(), 1, 64)[0];
            assertEquals(VirtioBlk.S_IOERR, request(q, ram, VirtioBlk.T_IN, MIB / 512, null, 4096).status(), "past capacity");
            assertEquals(VirtioBlk.S_IOERR, request(q, ram, VirtioBlk.T_IN, MIB / 512 - 1, null, 4096).status(), "straddles the end");
            assertEquals(VirtioBlk.S_IOERR, request(q, ram, VirtioBlk.T_IN, -1L, null, 4096).status(), "sector 2^64-1");
            assertEquals(VirtioBlk.S_IOERR, request(q, ram, VirtioBlk.T_IN, 0, null, 512).status(), "not a multiple of the 4096-byte block");
            assertEquals(VirtioBlk.S_IOERR, request(q, ram, VirtioBlk.T_OUT, 1, new byte[4096], 0).status(), "misaligned sector");
            assertEquals(VirtioBlk.S_UNSUPP, request(q, ram, 99, 0, null, 0).status(), "unknown type");
            assertEquals(VirtioBlk.S_OK, request(q, ram, VirtioBlk.T_IN, 0, null, 4096).status(), "a good request still works");
        } finally {
            dev.node().close();
        }
    }

    /** One IN or OUT request whose data buffer starts misalign bytes past a 4 KiB boundary. */
    private static Done rwAt(DriverQueue q, GuestRam ram, boolean write, long sector, byte[] data, int len, int misalign)
            throws Exception {
        long h = ram.alloc(16, 8);
        ram.write(h, header(write ? VirtioBlk.T_OUT : VirtioBlk.T_IN, sector));
        long buf = ram.alloc(len + 4096, 4096) + misalign;
        long status = ram.alloc(1, 1);
        if (write) {
            ram.write(buf, data);
            q.addDirect(new Buf(h, 16, false), new Buf(buf, len, false), new Buf(status, 1, true));
        } else {
            q.addDirect(new Buf(h, 16, false), new Buf(buf, len, true), new Buf(status, 1, true));
        }
        q.kick();
        DriverQueue.Used u = q.awaitUsed(5000);
        assertNotNull(u);
        return new Done(ram.read(status, 1)[0], u.len(), buf);
    }

    @ParameterizedTest
    @ValueSource(strings = {"io_uring", "native", "threads"})
    void directIoWithAlignedAndMisalignedGuestBuffers(String aio) throws Exception {
        Path img = image(4 * MIB);
        FileNode node = file(img, aio, true);
        assertEquals(512, node.memoryAlignment());
        assertTrue(node.waitsOnDevice(), "O_DIRECT I/O waits on the disk: queue threads sleep, not poll, for it");
        VirtioBlkDevice dev = new VirtioBlkDevice(node, true, 1, 512, false, null);
        try (GuestRam ram = GuestRam.single(16 * MIB); TestFrontend fe = connect(dev)) {
            DriverQueue q = fe.ready(ram, dev.features(), 1, 64)[0];
            Random rnd = new Random(9);
            // aligned (direct path), misaligned by 8 (bounce), and larger than the bounce buffer (chunked)
            int[][] cases = {{0, 8192}, {8, 8192}, {100, 512}, {8, (1 << 20) + 4096}};
            long sector = 16;
            for (int[] c : cases) {
                byte[] data = new byte[c[1]];
                rnd.nextBytes(data);
                assertEquals(VirtioBlk.S_OK, rwAt(q, ram, true, sector, data, c[1], c[0]).status(), "write " + c[0]);
                assertArrayEquals(data, Arrays.copyOfRange(Files.readAllBytes(img), (int) sector * 512, (int) sector * 512 + c[1]),
                        "in the file, misalign " + c[0]);
                Done r = rwAt(q, ram, false, sector, null, c[1], c[0] == 0 ? 0 : c[0] + 4);
                assertEquals(VirtioBlk.S_OK, r.status(), "read " + c[0]);
                assertArrayEquals(data, ram.read(r.in(), c[1]), "read back, misalign " + c[0]);
                sector += (c[1] + 511) / 512 + 8;
            }
        } finally {
            node.close();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"io_uring", "threads"})
    void largeRequestsInAnyBufferLayoutMoveEveryByte(String aio) throws Exception {
        Path img = image(4 * MIB);
        VirtioBlkDevice dev = new VirtioBlkDevice(file(img, aio, false), true, 1, 512, false, null);
        try (GuestRam ram = GuestRam.single(16 * MIB); TestFrontend fe = connect(dev)) {
            DriverQueue q = fe.ready(ram, dev.features(), 1, 64)[0];
            int[][] layouts = {{300 * 1024}, {100 * 1024, 100 * 1024, 100 * 1024}, {7 * 512, 250 * 1024, 43 * 512}};
            Random rnd = new Random(11);
            long sector = 8;
            for (int[] layout : layouts) {
                int total = Arrays.stream(layout).sum();
                byte[] data = new byte[total];
                rnd.nextBytes(data);
                // write through the given buffer layout
                long h = ram.alloc(16, 8);
                ram.write(h, header(VirtioBlk.T_OUT, sector));
                java.util.List<Buf> bufs = new java.util.ArrayList<>(java.util.List.of(new Buf(h, 16, false)));
                int at = 0;
                for (int len : layout) {
                    long b = ram.alloc(len, 512);
                    ram.write(b, Arrays.copyOfRange(data, at, at + len));
                    bufs.add(new Buf(b, len, false));
                    at += len;
                }
                long st = ram.alloc(1, 1);
                bufs.add(new Buf(st, 1, true));
                q.addDirect(bufs.toArray(new Buf[0]));
                q.kick();
                assertNotNull(q.awaitUsed(5000));
                assertEquals(VirtioBlk.S_OK, ram.read(st, 1)[0]);
                byte[] file = Files.readAllBytes(img);
                assertArrayEquals(data, Arrays.copyOfRange(file, (int) sector * 512, (int) sector * 512 + total));
                // read it back into one buffer
                Done r = request(q, ram, VirtioBlk.T_IN, sector, null, total);
                assertEquals(VirtioBlk.S_OK, r.status());
                assertArrayEquals(data, ram.read(r.in(), total));
                sector += total / 512 + 8;
            }
        } finally {
            dev.node().close();
        }
    }

    private static byte[] segment(long sector, int count, int flags) {
        return ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(sector).putInt(count).putInt(flags).array();
    }

    /** On the disk (ext4: punch hole and zero range) and on tmpfs (no zero range: zeroes are written). */
    @ParameterizedTest
    @CsvSource({"io_uring,disk", "threads,disk", "io_uring,tmpfs", "threads,tmpfs"})
    void discardAndWriteZeroes(String aio, String where) throws Exception {
        Path img = where.equals("disk") ? image(MIB) : Files.createTempFile(Path.of("/dev/shm"), "blk", ".img");
        byte[] ones = new byte[(int) MIB];
        Arrays.fill(ones, (byte) 0x5a);
        Files.write(img, ones);
        VirtioBlkDevice dev = new VirtioBlkDevice(file(img, aio, false), true, 1, 512, false, null);
        try (GuestRam ram = GuestRam.single(4 * MIB); TestFrontend fe = connect(dev)) {
            DriverQueue q = fe.ready(ram, dev.features(), 1, 64)[0];
            assertEquals(1L << VirtioBlk.F_DISCARD, dev.features() & (1L << VirtioBlk.F_DISCARD));
            // write zeroes without unmap, then with unmap: both read back as zeroes; the rest is untouched
            assertEquals(VirtioBlk.S_OK, request(q, ram, VirtioBlk.T_WRITE_ZEROES, 0, segment(8, 8, 0), 0).status());
            assertEquals(VirtioBlk.S_OK, request(q, ram, VirtioBlk.T_WRITE_ZEROES, 0, segment(64, 16, 1), 0).status());
            byte[] after = Files.readAllBytes(img);
            assertArrayEquals(new byte[4096], Arrays.copyOfRange(after, 4096, 8192));
            assertArrayEquals(new byte[8192], Arrays.copyOfRange(after, 32768, 40960));
            assertEquals(0x5a, after[4095]);
            assertEquals(0x5a, after[8192]);
            assertEquals(0x5a, after[40960]);
            // discard: succeeds (a hole where the file system can punch one)
            assertEquals(VirtioBlk.S_OK, request(q, ram, VirtioBlk.T_DISCARD, 0, segment(128, 8, 0), 0).status());
            // bad segments
            assertEquals(VirtioBlk.S_UNSUPP, request(q, ram, VirtioBlk.T_DISCARD, 0, segment(128, 8, 1), 0).status(), "discard flags");
            assertEquals(VirtioBlk.S_IOERR, request(q, ram, VirtioBlk.T_DISCARD, 0, segment(2047, 8, 0), 0).status(), "past the end");
            assertEquals(VirtioBlk.S_IOERR, request(q, ram, VirtioBlk.T_WRITE_ZEROES, 0, segment(0, 40000, 0), 0).status(), "above the limit");
            assertEquals(VirtioBlk.S_UNSUPP, request(q, ram, VirtioBlk.T_DISCARD, 0, new byte[12], 0).status(), "not a whole segment");
            byte[] two = new byte[32];
            System.arraycopy(segment(0, 8, 0), 0, two, 0, 16);
            System.arraycopy(segment(16, 8, 0), 0, two, 16, 16);
            assertEquals(VirtioBlk.S_UNSUPP, request(q, ram, VirtioBlk.T_DISCARD, 0, two, 0).status(), "more segments than advertised");
        } finally {
            dev.node().close();
            if (!where.equals("disk")) {
                Files.deleteIfExists(img);
            }
        }
    }

    @Test
    void growingTheImageNotifiesTheFrontendAndShowsInTheConfigSpace() throws Exception {
        Path img = image(MIB);
        VirtioBlkDevice dev = new VirtioBlkDevice(file(img, false), true, 1, 512, false, null);
        try (TestFrontend fe = connect(dev)) {
            fe.negotiate(dev.features());
            int[] pair = UnixSockets.pair();
            fe.send(VhostUserRequest.SET_SLAVE_REQ_FD,
                    Message.VERSION | Message.FLAG_NEED_REPLY, 0, null, pair[1]);
            assertEquals(0, fe.ack(VhostUserRequest.SET_SLAVE_REQ_FD));
            LibC.close(pair[1]);
            assertEquals(MIB / 512, capacity(fe));
            try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
                f.setLength(3 * MIB);
            }
            var refreshed = java.util.concurrent.CompletableFuture.supplyAsync(dev::refreshCapacity);
            var frontendSide = new MessageChannel(pair[0]);
            assertTrue(frontendSide.receive());
            assertEquals(VhostUserRequest.SLAVE_CONFIG_CHANGE_MSG, frontendSide.message().request());
            frontendSide.message().setHeader(VhostUserRequest.SLAVE_CONFIG_CHANGE_MSG,
                    Message.VERSION | Message.FLAG_REPLY, 8);
            frontendSide.message().setU64(0, 0);
            frontendSide.send();
            assertEquals(3 * MIB / 512, refreshed.get(5, java.util.concurrent.TimeUnit.SECONDS));
            assertEquals(3 * MIB / 512, capacity(fe), "GET_CONFIG shows the new capacity");
            frontendSide.close();
            LibC.close(pair[0]);
        } finally {
            dev.node().close();
        }
    }

    private static long capacity(TestFrontend fe) throws Exception {
        fe.send(VhostUserRequest.GET_CONFIG, Message.VERSION, 12 + 8,
                m -> {
                    m.setU32(0, 0);
                    m.setU32(4, 8);
                });
        var r = fe.receive();
        assertEquals(20, r.size());
        return r.u64(12);
    }

    @Test
    void malformedRequestsAreAnsweredWithoutStatusOrWithAnErrorAndServingGoesOn() throws Exception {
        Path img = image(MIB);
        VirtioBlkDevice dev = new VirtioBlkDevice(file(img, false), true, 1, 512, false, null);
        try (GuestRam ram = GuestRam.single(4 * MIB); TestFrontend fe = connect(dev)) {
            DriverQueue q = fe.ready(ram, dev.features(), 1, 64)[0];
            long h = ram.alloc(16, 8);
            ram.write(h, header(VirtioBlk.T_IN, 0));
            long data = ram.alloc(512, 512);
            // no status byte (nothing writable): completed with 0 bytes, nothing written anywhere
            q.addDirect(new Buf(h, 16, false), new Buf(data, 512, false));
            q.kick();
            DriverQueue.Used u = q.awaitUsed(5000);
            assertNotNull(u);
            assertEquals(0, u.len());
            // header shorter than 16 bytes
            long st = ram.alloc(1, 1);
            q.addDirect(new Buf(h, 8, false), new Buf(st, 1, true));
            q.kick();
            u = q.awaitUsed(5000);
            assertNotNull(u);
            assertEquals(0, u.len());
            // a header split over two buffers is fine (any layout is legal)
            long h1 = ram.alloc(8, 8);
            long h2 = ram.alloc(8, 8);
            byte[] hdr = header(VirtioBlk.T_IN, 2);
            ram.write(h1, Arrays.copyOfRange(hdr, 0, 8));
            ram.write(h2, Arrays.copyOfRange(hdr, 8, 16));
            long in = ram.alloc(512, 512);
            long st2 = ram.alloc(1, 1);
            ram.write(st2, new byte[] {(byte) 0xee});
            q.addDirect(new Buf(h1, 8, false), new Buf(h2, 8, false), new Buf(in, 512, true), new Buf(st2, 1, true));
            q.kick();
            u = q.awaitUsed(5000);
            assertNotNull(u);
            assertEquals(513, u.len());
            assertEquals(VirtioBlk.S_OK, ram.read(st2, 1)[0]);
            // an OUT whose data length is not a multiple of 512: an error status, the image untouched
            byte[] before = Files.readAllBytes(img);
            assertEquals(VirtioBlk.S_IOERR, request(q, ram, VirtioBlk.T_OUT, 0, new byte[100], 0).status());
            assertArrayEquals(before, Files.readAllBytes(img));
            // still serving
            assertEquals(VirtioBlk.S_OK, request(q, ram, VirtioBlk.T_FLUSH, 0, null, 0).status());
        } finally {
            dev.node().close();
        }
    }

    @Test
    void readOnlyExportRefusesWrites() throws Exception {
        Path img = image(MIB);
        VirtioBlkDevice dev = new VirtioBlkDevice(file(img, true), false, 1, 512, false, null);
        try (GuestRam ram = GuestRam.single(4 * MIB); TestFrontend fe = connect(dev)) {
            DriverQueue q = fe.ready(ram, dev.features(), 1, 64)[0];
            assertEquals(1L << VirtioBlk.F_RO, dev.features() & (1L << VirtioBlk.F_RO));
            byte[] data = new byte[512];
            Arrays.fill(data, (byte) 7);
            assertEquals(VirtioBlk.S_IOERR, request(q, ram, VirtioBlk.T_OUT, 0, data, 0).status());
            assertArrayEquals(new byte[512], Arrays.copyOf(Files.readAllBytes(img), 512), "image untouched");
        } finally {
            dev.node().close();
        }
    }
}

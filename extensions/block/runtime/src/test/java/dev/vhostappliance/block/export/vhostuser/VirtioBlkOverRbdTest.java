package dev.vhostappliance.block.export.vhostuser;

import static dev.vhostappliance.block.export.vhostuser.VirtioBlkDeviceTest.request;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostappliance.block.rbd.RbdNode;
import dev.vhostappliance.block.rbd.RbdOptions;
import dev.vhostappliance.block.request.VirtioBlk;
import dev.vhostappliance.cli.StartupException;
import dev.vhostappliance.testing.CephCluster;
import dev.vhostappliance.testing.DriverQueue;
import dev.vhostappliance.testing.DriverQueue.Buf;
import dev.vhostappliance.testing.GuestRam;
import dev.vhostappliance.testing.TestFrontend;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * virtio-blk over an rbd node, through the core's test frontend, against a real single-node Ceph cluster
 * ({@link CephCluster}): the data reaches the image (read back with {@code rbd export}), many requests in
 * flight, a resize made with the rbd tool reaches the device, the exclusive lock keeps a second writer out
 * until the first stops, an OSD killed and restarted stalls I/O without losing it, and what cannot be opened says why.
 */
class VirtioBlkOverRbdTest {
    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;

    private static RbdOptions options(CephCluster c, String image, String key, boolean exclusive) {
        return new RbdOptions("rbd", null, image, null, c.conf().toString(), "admin", key, List.of(), List.of(), false, false,
                true, exclusive);
    }

    private static RbdNode open(CephCluster c, String image) throws Exception {
        return RbdNode.open("rbd0", options(c, image, null, true));
    }

    /** The image as the rbd tool reads it. */
    private byte[] export(CephCluster c, String image) throws Exception {
        Path out = dir.resolve(image + ".raw");
        Files.deleteIfExists(out);
        c.rbd("export", "rbd/" + image, out.toString());
        return Files.readAllBytes(out);
    }

    private static byte[] header(int type, long sector) {
        return ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putInt(type).putInt(0).putLong(sector).array();
    }

    @Test
    void manyRequestsInFlightReachTheImageAndReadBack() throws Exception {
        CephCluster c = CephCluster.shared();
        c.createImage("inflight", 16);
        RbdNode node = open(c, "inflight");
        assertEquals(16L * MIB, node.size());
        VirtioBlkDevice dev = new VirtioBlkDevice(node, true, 1, 512, false, null);
        try (GuestRam ram = GuestRam.single(32 * MIB); TestFrontend fe = TestFrontend.connect(dev)) {
            DriverQueue q = fe.ready(ram, dev.features(), 1, 256)[0];
            int n = 48;
            int len = 64 * 1024;
            byte[][] data = new byte[n][len];
            long[] status = new long[n];
            Random rnd = new Random(17);
            for (int i = 0; i < n; i++) { // every write in one kick: all in flight in librbd at once
                rnd.nextBytes(data[i]);
                long h = ram.alloc(16, 8);
                ram.write(h, header(VirtioBlk.T_OUT, (long) i * 2 * len / 512)); // every other 64 KiB
                long d = ram.alloc(len, 512);
                ram.write(d, data[i]);
                status[i] = ram.alloc(1, 1);
                ram.write(status[i], new byte[] {(byte) 0xee});
                q.addDirect(new Buf(h, 16, false), new Buf(d, len, false), new Buf(status[i], 1, true));
            }
            q.kick();
            for (int i = 0; i < n; i++) {
                assertNotNull(q.awaitUsed(30_000), "write " + i + " completed");
            }
            for (int i = 0; i < n; i++) {
                assertEquals(VirtioBlk.S_OK, ram.read(status[i], 1)[0], "write " + i);
            }
            assertEquals(VirtioBlk.S_OK, request(q, ram, VirtioBlk.T_FLUSH, 0, null, 0).status());
            byte[] image = export(c, "inflight");
            for (int i = 0; i < n; i++) {
                int at = i * 2 * len;
                assertArrayEquals(data[i], Arrays.copyOfRange(image, at, at + len), "write " + i + " in the image");
                assertArrayEquals(new byte[len], Arrays.copyOfRange(image, at + len, at + 2 * len), "untouched after " + i);
            }
            for (int i = 0; i < n; i += 7) {
                var r = request(q, ram, VirtioBlk.T_IN, (long) i * 2 * len / 512, null, len);
                assertEquals(VirtioBlk.S_OK, r.status());
                assertArrayEquals(data[i], ram.read(r.in(), len), "read back " + i);
            }
            // WRITE_ZEROES over the first write, DISCARD over the second (discard=unmap): both read as zeroes
            assertEquals(VirtioBlk.S_OK, segmentRequest(q, ram, VirtioBlk.T_WRITE_ZEROES, 0, len / 512).status());
            assertEquals(VirtioBlk.S_OK, segmentRequest(q, ram, VirtioBlk.T_DISCARD, 2L * len / 512, len / 512).status());
            image = export(c, "inflight");
            assertArrayEquals(new byte[len], Arrays.copyOfRange(image, 0, len), "zeroed");
            assertArrayEquals(data[2], Arrays.copyOfRange(image, 4 * len, 5 * len), "the rest kept");
        } finally {
            node.close();
        }
    }

    /** DISCARD / WRITE_ZEROES with one segment. */
    private static VirtioBlkDeviceTest.Done segmentRequest(DriverQueue q, GuestRam ram, int type, long sector, int sectors)
            throws Exception {
        byte[] seg = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(sector).putInt(sectors).putInt(0).array();
        return request(q, ram, type, 0, seg, 0);
    }

    @Test
    void aResizeWithTheRbdToolReachesTheDevice() throws Exception {
        CephCluster c = CephCluster.shared();
        c.createImage("grows", 8);
        RbdNode node = open(c, "grows");
        VirtioBlkDevice dev = new VirtioBlkDevice(node, true, 1, 512, false, null);
        node.onResize(dev::refreshCapacity);
        try (GuestRam ram = GuestRam.single(4 * MIB); TestFrontend fe = TestFrontend.connect(dev)) {
            fe.ready(ram, dev.features(), 1, 16);
            assertEquals(8L * MIB / 512, capacity(fe));
            c.rbd("resize", "rbd/grows", "--size", "24M");
            long deadline = System.currentTimeMillis() + 20_000;
            while (capacity(fe) != 24L * MIB / 512 && System.currentTimeMillis() < deadline) {
                Thread.sleep(100);
            }
            assertEquals(24L * MIB / 512, capacity(fe), "the config space shows the new size");
            assertEquals(24L * MIB, node.size());
            node.resize(32L * MIB); // block_resize's path
            assertTrue(c.rbd("info", "rbd/grows").contains("size 32 MiB"), c.rbd("info", "rbd/grows"));
        } finally {
            node.close();
        }
    }

    private static long capacity(TestFrontend fe) throws Exception {
        return ByteBuffer.wrap(fe.getConfig(0, 8)).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    @Test
    void theExclusiveLockKeepsASecondWriterOutUntilTheFirstStops() throws Exception {
        CephCluster c = CephCluster.shared();
        c.createImage("locked", 8);
        RbdNode first = open(c, "locked");
        RbdNode second = open(c, "locked"); // another client of the cluster, as another host's appliance
        VirtioBlkDevice a = new VirtioBlkDevice(first, true, 1, 512, false, null);
        VirtioBlkDevice b = new VirtioBlkDevice(second, true, 1, 512, false, null);
        try (GuestRam ramA = GuestRam.single(4 * MIB); TestFrontend feA = TestFrontend.connect(a);
                GuestRam ramB = GuestRam.single(4 * MIB); TestFrontend feB = TestFrontend.connect(b)) {
            DriverQueue qa = feA.ready(ramA, a.features(), 1, 16)[0];
            DriverQueue qb = feB.ready(ramB, b.features(), 1, 16)[0];
            byte[] one = new byte[4096];
            Arrays.fill(one, (byte) 1);
            byte[] two = new byte[4096];
            Arrays.fill(two, (byte) 2);
            assertEquals(VirtioBlk.S_OK, request(qa, ramA, VirtioBlk.T_OUT, 0, one, 0).status(), "the first writer");
            assertEquals(VirtioBlk.S_IOERR, request(qb, ramB, VirtioBlk.T_OUT, 0, two, 0).status(), "the second is refused");
            var read = request(qb, ramB, VirtioBlk.T_IN, 0, null, 4096);
            assertEquals(VirtioBlk.S_OK, read.status(), "reading needs no lock");
            assertArrayEquals(one, ramB.read(read.in(), 4096));
            feA.getVringBase(0); // the first stops (a migration's source at its end)
            assertEquals(VirtioBlk.S_OK, request(qb, ramB, VirtioBlk.T_OUT, 0, two, 0).status(), "the second takes over");
            assertArrayEquals(two, Arrays.copyOf(export(c, "locked"), 4096));
        } finally {
            first.close();
            second.close();
        }
    }

    @Test
    void aKilledOsdStallsIoWhichCompletesWhenItIsBack() throws Exception {
        CephCluster c = CephCluster.shared();
        c.createImage("stall", 8);
        RbdNode node = open(c, "stall");
        VirtioBlkDevice dev = new VirtioBlkDevice(node, true, 1, 512, false, null);
        try (GuestRam ram = GuestRam.single(4 * MIB); TestFrontend fe = TestFrontend.connect(dev)) {
            DriverQueue q = fe.ready(ram, dev.features(), 1, 16)[0];
            byte[] data = new byte[8192];
            new Random(3).nextBytes(data);
            assertEquals(VirtioBlk.S_OK, request(q, ram, VirtioBlk.T_OUT, 64, new byte[8192], 0).status());
            c.killOsd();
            try {
                long h = ram.alloc(16, 8);
                ram.write(h, header(VirtioBlk.T_OUT, 64));
                long d = ram.alloc(data.length, 512);
                ram.write(d, data);
                long status = ram.alloc(1, 1);
                q.addDirect(new Buf(h, 16, false), new Buf(d, data.length, false), new Buf(status, 1, true));
                q.kick();
                assertNull(q.awaitUsed(2000), "no answer while the OSD is away");
                c.startOsd();
                assertNotNull(q.awaitUsed(60_000), "answered once it is back");
                assertEquals(VirtioBlk.S_OK, ram.read(status, 1)[0]);
            } finally {
                c.startOsdIfStopped();
            }
            var r = request(q, ram, VirtioBlk.T_IN, 64, null, data.length);
            assertArrayEquals(data, ram.read(r.in(), data.length), "nothing lost");
        } finally {
            node.close();
        }
    }

    @Test
    void whatCannotBeOpenedSaysWhy() throws Exception {
        CephCluster c = CephCluster.shared();
        c.createImage("present", 4);
        StartupException missingImage = assertThrows(StartupException.class, () -> open(c, "absent"));
        assertTrue(missingImage.getMessage().contains("cannot open image 'rbd/absent': does not exist"), missingImage.getMessage());
        StartupException missingPool = assertThrows(StartupException.class, () -> RbdNode.open("n",
                new RbdOptions("nopool", null, "present", null, c.conf().toString(), "admin", null, List.of(), List.of(), false,
                        false, false, true)));
        assertTrue(missingPool.getMessage().contains("cannot open pool 'nopool': does not exist"), missingPool.getMessage());
        String wrongKey = "AQBzTRRnAAAAABAAQ0bQu/PKkA8Ffq0pGOwvqw==";
        StartupException denied = assertThrows(StartupException.class,
                () -> RbdNode.open("n", options(c, "present", wrongKey, true)));
        assertTrue(denied.getMessage().contains("cannot connect to the Ceph cluster: permission denied"), denied.getMessage());
        StartupException snapshot = assertThrows(StartupException.class, () -> RbdNode.open("n",
                new RbdOptions("rbd", null, "present", "nosnap", c.conf().toString(), "admin", null, List.of(), List.of(), false,
                        false, false, true)));
        assertTrue(snapshot.getMessage().contains("cannot open image 'rbd/present@nosnap': does not exist"), snapshot.getMessage());
    }

    @Test
    void aClusterThatDoesNotAnswerIsAnErrorAfterTheConnectTimeout() throws Exception {
        CephCluster c = CephCluster.shared();
        Path conf = dir.resolve("unreachable.conf");
        // a monitor address where nothing listens (a port of this machine that was free a moment ago)
        int port;
        try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
            port = s.getLocalPort();
        }
        Files.writeString(conf, "[global]\nmon host = v2:127.0.0.1:" + port + "\nclient mount timeout = 3\n");
        long start = System.nanoTime();
        StartupException e = assertThrows(StartupException.class, () -> RbdNode.open("n",
                new RbdOptions("rbd", null, "present", null, conf.toString(), "admin", c.key(), List.of(), List.of(), false,
                        false, false, true)));
        assertTrue(e.getMessage().contains("cannot connect to the Ceph cluster"), e.getMessage());
        assertTrue(System.nanoTime() - start < 60_000_000_000L, "bounded by client_mount_timeout from the conf file");
    }
}

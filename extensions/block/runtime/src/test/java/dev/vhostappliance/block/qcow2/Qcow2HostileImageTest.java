package dev.vhostappliance.block.qcow2;

import static dev.vhostappliance.block.qcow2.QemuTools.create;
import static dev.vhostappliance.block.qcow2.QemuTools.openQcow2;
import static dev.vhostappliance.block.qcow2.QemuTools.qemuIo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostappliance.block.graph.OptionException;
import dev.vhostappliance.block.node.BlockNode;
import dev.vhostappliance.libc.Errno;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Images qemu-img made, then damaged the way a hostile or broken image is: refused at open with one
 * sentence, or answered with I/O errors; never a crash, and never a write outside the image.
 */
class Qcow2HostileImageTest extends QemuRefereeTest {
    /** A v3 image with 64 KiB clusters, data in its first and a compressed cluster; its layout is qemu-img's. */
    private Path image() {
        Path img = dir.resolve("victim.qcow2");
        create(img, "cluster_size=65536", 64L << 20);
        qemuIo(img, "qcow2", "write -P 0x11 0 128k", "write -c -P 0x22 1M 64k");
        return img;
    }

    private static long read8(Path p, long at) throws Exception {
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "r")) {
            f.seek(at);
            return f.readLong();
        }
    }

    /** Overwrites big-endian bytes of a field. */
    static void patch(Path p, long at, long value, int width) throws Exception {
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            ByteBuffer b = ByteBuffer.allocate(8).putLong(value);
            f.seek(at);
            f.write(b.array(), 8 - width, width);
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({
            "L1 table offset unaligned, 40, 8, 0x30200, L1 table offset",
            "L1 table past the end, 40, 8, 0x7fff0000, L1 table lies past the end",
            "L1 table over the header, 40, 8, 0, overlap the header",
            "huge L1 size, 36, 4, 0x7fffffff, L1 table too large",
            "L1 smaller than the disk, 36, 4, 0, too small for the virtual size",
            "refcount table offset unaligned, 48, 8, 0x10010, refcount table offset",
            "refcount table on the L1 table, 48, 8, 0x30000, overlap",
            "refcount table huge, 56, 4, 0x7fffffff, invalid refcount table size",
            "cluster size 4 MiB, 20, 4, 22, unsupported cluster size",
            "cluster size 256 bytes, 20, 4, 8, unsupported cluster size",
            "version 4, 4, 4, 4, unsupported qcow2 version",
            "unknown incompatible feature, 72, 8, 0x100, unsupported qcow2 feature",
            "refcount order 7, 96, 4, 7, invalid refcount order",
            "header length past the cluster, 100, 4, 0x20000, invalid header length",
            "backing file name outside the header cluster, 8, 8, 0xfff0, invalid backing file name",
            "encryption, 32, 4, 1, encrypted",
    })
    void aDamagedHeaderIsRefusedAtOpen(String what, long at, int width, String value, String message) throws Exception {
        Path img = image();
        if (what.startsWith("backing")) {
            patch(img, 16, 100, 4);
        }
        patch(img, at, Long.decode(value), width);
        OptionException e = assertThrows(OptionException.class, () -> openQcow2(graph, "h", img), what);
        assertTrue(e.getMessage().contains(message), what + ": " + e.getMessage());
        assertTrue(graph.isEmpty(), "nothing stays open");
    }

    @Test
    void l1AndRefcountTableEntriesThatPointOutsideOrAtMetadataAreRefused() throws Exception {
        Path img = image();
        long l1 = read8(img, 40);
        long reftable = read8(img, 48);
        patch(img, l1, 0x8000000000000000L | (1L << 40), 8); // an L2 table at 1 TiB
        OptionException e = assertThrows(OptionException.class, () -> openQcow2(graph, "h", img));
        assertTrue(e.getMessage().contains("L1 entry 0 is invalid"), e.getMessage());

        Path img2 = image();
        patch(img2, l1, 0x8000000000000000L | reftable, 8); // the L2 table is the refcount table
        e = assertThrows(OptionException.class, () -> openQcow2(graph, "h", img2));
        assertTrue(e.getMessage().contains("overlaps"), e.getMessage());

        Path img3 = image();
        patch(img3, reftable, l1, 8); // the refcount block is the L1 table
        e = assertThrows(OptionException.class, () -> openQcow2(graph, "h", img3));
        assertTrue(e.getMessage().contains("overlaps"), e.getMessage());
    }

    @Test
    void l2EntriesThatPointAtMetadataOrNowhereAreIoErrorsAndTheImageIsMarkedCorrupt() throws Exception {
        Path img = image();
        long l1 = read8(img, 40);
        long l2 = read8(img, l1) & Qcow2Image.OFFSET_MASK;
        long reftable = read8(img, 48);
        long fileSize = Files.size(img);
        patch(img, l2, 0x8000000000000000L | reftable, 8); // cluster 0 -> the refcount table
        patch(img, l2 + 8, 0x8000000000000000L | 0x1234, 8); // cluster 1 -> unaligned
        patch(img, l2 + 16 * 8, 0x4000000000000000L | (0x3fffL << 54 >>> 8), 8); // compressed, far outside
        BlockNode node = openQcow2(graph, "h", img);
        try (QemuTools.Driver d = new QemuTools.Driver(1 << 20)) {
            assertEquals(-Errno.EIO, d.read(node, 65536, new byte[4096]), "unaligned host offset");
            assertEquals(-Errno.EIO, d.read(node, 16 * 65536, new byte[4096]), "compressed cluster outside");
            assertEquals(-Errno.EIO, d.write(node, 0, new byte[4096]), "a data write onto the refcount table");
            assertEquals(-Errno.EIO, d.write(node, 10L << 20, new byte[4096]), "no more writes once corrupt");
            assertEquals(0, d.read(node, 5L << 20, new byte[4096]), "reads of good clusters go on");
        }
        graph.close();
        assertTrue(Files.size(img) <= fileSize + (1 << 20), "nothing written far outside the image");
        assertTrue(QemuTools.exec("qemu-img", "info", img.toString()).output().contains("corrupt: true"));
    }

    @Test
    void refcountsThatClaimEverythingNeverSendAllocationsPastTheEnd() throws Exception {
        Path img = image();
        long reftable = read8(img, 48);
        long block = read8(img, reftable);
        byte[] full = new byte[65536];
        java.util.Arrays.fill(full, (byte) 0xff); // every cluster the block covers "in use"
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.seek(block);
            f.write(full);
        }
        long fileSize = Files.size(img);
        BlockNode node = openQcow2(graph, "h", img);
        try (QemuTools.Driver d = new QemuTools.Driver(1 << 20)) {
            assertEquals(-Errno.EIO, d.write(node, 20L << 20, new byte[4096]));
        }
        graph.close();
        assertTrue(Files.size(img) <= fileSize, "no cluster allocated past the end: " + Files.size(img));
    }

    @Test
    void randomDamageToMetadataIsRefusedOrAnsweredNeverACrash() throws Exception {
        Path pristine = image();
        byte[] original = Files.readAllBytes(pristine);
        long l1 = read8(pristine, 40);
        long l2 = read8(pristine, l1) & Qcow2Image.OFFSET_MASK;
        long reftable = read8(pristine, 48);
        long block = read8(pristine, reftable);
        long[] areas = {0, l1, l2, reftable, block};
        Random random = new Random(7);
        int opened = 0;
        for (int round = 0; round < 60; round++) {
            byte[] damaged = original.clone();
            for (int k = 0; k < 1 + random.nextInt(8); k++) {
                long base = areas[random.nextInt(areas.length)];
                int at = (int) (base + random.nextInt(base == 0 ? 512 : 4096));
                damaged[at] = (byte) random.nextInt(256);
            }
            Path img = dir.resolve("damaged-" + round + ".qcow2");
            Files.write(img, damaged);
            BlockNode node;
            try {
                node = openQcow2(graph, "d" + round, img);
            } catch (OptionException refused) {
                assertTrue(refused.getMessage() != null && !refused.getMessage().isBlank());
                continue;
            }
            opened++;
            try (QemuTools.Driver d = new QemuTools.Driver(1 << 20)) {
                for (int op = 0; op < 20; op++) {
                    long offset = random.nextLong((node.size() - 65536) / 512) * 512;
                    int rc = random.nextBoolean() ? d.read(node, offset, new byte[65536]) : d.write(node, offset, new byte[4096]);
                    assertTrue(rc == 0 || rc == -Errno.EIO || rc == -Errno.ENOSPC || rc == -Errno.EFBIG, "result " + rc);
                }
                d.flush(node);
            }
            graph.delete("d" + round);
            assertTrue(Files.size(img) < original.length + (16L << 20), "round " + round + " grew the file to " + Files.size(img));
        }
        assertTrue(opened > 0, "some damage is survivable: the loop exercised the data path");
    }
}

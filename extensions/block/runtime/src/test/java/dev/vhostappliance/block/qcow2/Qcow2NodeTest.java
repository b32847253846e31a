package dev.vhostappliance.block.qcow2;

import static dev.vhostappliance.block.qcow2.QemuTools.checkClean;
import static dev.vhostappliance.block.qcow2.QemuTools.create;
import static dev.vhostappliance.block.qcow2.QemuTools.guestView;
import static dev.vhostappliance.block.qcow2.QemuTools.openQcow2;
import static dev.vhostappliance.block.qcow2.QemuTools.qemuIo;
import static dev.vhostappliance.block.qcow2.QemuTools.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostappliance.block.ExternalTools;
import dev.vhostappliance.block.graph.OptionException;
import dev.vhostappliance.block.node.BlockNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The qcow2 node against images qemu-img made and qemu-io filled, with QEMU's tools as the referee: what
 * qemu wrote reads back through the node, what the node wrote reads back through qemu-img, and qemu-img
 * check finds no error and no leak, for every layout the format has.
 */
class Qcow2NodeTest extends QemuRefereeTest {
    private static final long SIZE = 64L << 20;

    /** Layouts: version, cluster size, refcount width, extended L2 entries. */
    static Stream<String> layouts() {
        return Stream.of(
                "compat=0.10,cluster_size=65536",
                "compat=1.1,cluster_size=512,refcount_bits=1",
                "compat=1.1,cluster_size=4096,refcount_bits=8",
                "compat=1.1,cluster_size=65536,refcount_bits=16",
                "compat=1.1,cluster_size=2097152,refcount_bits=64",
                "compat=1.1,cluster_size=65536,extended_l2=on",
                "compat=1.1,cluster_size=32768,refcount_bits=4,extended_l2=on");
    }

    private Path qemuFilledImage(String layout) {
        Path img = dir.resolve("disk.qcow2");
        create(img, layout, SIZE);
        qemuIo(img, "qcow2",
                "write -P 0x11 0 1M",
                "write -P 0x22 3M 4k",
                "write -P 0x33 5243392 1536",
                "write -z 8M 256k",
                "write -P 0x44 10M 300k",
                "write -z 10420224 8192",
                "write -P 0x55 63M 1M");
        return img;
    }

    @ParameterizedTest
    @MethodSource("layouts")
    void readsWhatQemuWrote(String layout) throws Exception {
        Path img = qemuFilledImage(layout);
        byte[] expected = guestView(img, dir);
        BlockNode node = openQcow2(graph, "disk", img, "read-only", true);
        assertEquals(SIZE, node.size());
        assertArrayEquals(expected, readAll(node), layout);
    }

    @ParameterizedTest
    @MethodSource("layouts")
    void writesReadBackThroughQemuAndCheckClean(String layout) throws Exception {
        Path img = qemuFilledImage(layout);
        byte[] mirror = guestView(img, dir);
        BlockNode node = openQcow2(graph, "disk", img, "discard", "unmap");
        randomWorkload(node, mirror, new Random(layout.hashCode()), 400);
        assertArrayEquals(mirror, readAll(node), "the node reads back what it wrote");
        graph.close();
        checkClean(img);
        assertArrayEquals(mirror, guestView(img, dir), "qemu reads what the node wrote: " + layout);
    }

    /** O_DIRECT under the format: metadata, copy-on-write and slow-path transfers all stay aligned. */
    @ParameterizedTest
    @MethodSource("directLayouts")
    void withCacheDirectEveryPathStaysAligned(String layout) throws Exception {
        Path img = qemuFilledImage(layout);
        byte[] mirror = guestView(img, dir);
        BlockNode node = graph.add(new dev.vhostappliance.block.graph.OptionReader(dev.vhostappliance.block.Trees.tree("node-name", "d",
                "driver", "qcow2", "discard", "unmap", "file", dev.vhostappliance.block.Trees.tree("driver", "file", "filename", img.toString(),
                        "cache", dev.vhostappliance.block.Trees.tree("direct", true)))));
        assertEquals(512, node.memoryAlignment());
        assertArrayEquals(mirror, readAll(node));
        randomWorkload(node, mirror, new Random(8), 200);
        graph.close();
        checkClean(img);
        assertArrayEquals(mirror, guestView(img, dir), layout);
    }

    static Stream<String> directLayouts() {
        return Stream.of("compat=1.1,cluster_size=65536", "compat=1.1,cluster_size=512,refcount_bits=1",
                "compat=1.1,cluster_size=65536,extended_l2=on");
    }

    @Test
    void aChainOfRawBaseAndOverlaysOfOtherClusterSizesReadsAndWritesThrough() throws Exception {
        Path base = dir.resolve("base.raw");
        byte[] baseBytes = new byte[(int) SIZE];
        new Random(1).nextBytes(baseBytes);
        Files.write(base, baseBytes);
        Path mid = dir.resolve("mid.qcow2");
        create(mid, "cluster_size=2097152,backing_file=base.raw,backing_fmt=raw", SIZE);
        qemuIo(mid, "qcow2", "write -P 0x66 1M 3M", "write -z 20M 1M");
        Path top = dir.resolve("top.qcow2");
        create(top, "cluster_size=512,backing_file=" + mid + ",backing_fmt=qcow2", SIZE);
        qemuIo(top, "qcow2", "write -P 0x77 2M 4k");
        byte[] mirror = guestView(top, dir);

        BlockNode node = openQcow2(graph, "top", top, "discard", "unmap");
        assertEquals(5, graph.nodes().size(), "top, its file, mid and its file, base: " + graph.nodes().keySet());
        assertArrayEquals(mirror, readAll(node), "read through three layers");
        randomWorkload(node, mirror, new Random(2), 300);
        graph.close();
        checkClean(top);
        checkClean(mid);
        assertArrayEquals(mirror, guestView(top, dir));
        assertArrayEquals(baseBytes, Files.readAllBytes(base), "the base is never written");
    }

    @Test
    void backingNullAndAnExplicitBackingNodeOverrideTheHeader() throws Exception {
        Path base = dir.resolve("base.raw");
        byte[] baseBytes = new byte[1 << 20];
        Arrays.fill(baseBytes, (byte) 0x5a);
        Files.write(base, baseBytes);
        Path top = dir.resolve("top.qcow2");
        create(top, "backing_file=base.raw,backing_fmt=raw", 1 << 20);
        BlockNode none = openQcow2(graph, "none", top, "backing", "null", "read-only", true);
        byte[] got = new byte[4096];
        try (QemuTools.Driver d = new QemuTools.Driver(1 << 20)) {
            assertEquals(0, d.read(none, 0, got));
            assertArrayEquals(new byte[4096], got, "backing=null: no backing file");
            QemuTools.open(graph, "node-name", "b", "driver", "file", "filename", base.toString(), "read-only", true);
            BlockNode withB = openQcow2(graph, "withb", top, "backing", "b", "read-only", true);
            assertEquals(0, d.read(withB, 0, got));
            assertEquals(0x5a, got[100]);
        }
    }

    @Test
    void compressedClustersOfZlibAndZstdReadAndAreRewrittenOnWrite() throws Exception {
        Path raw = dir.resolve("plain.raw");
        byte[] data = new byte[(int) (8L << 20)];
        Random random = new Random(3);
        for (int i = 0; i < data.length; i += 4096) {
            if (random.nextInt(3) > 0) { // compressible text-like runs, some random, some zero
                byte b = (byte) random.nextInt(256);
                Arrays.fill(data, i, i + 4096, b);
                data[i + 17] = (byte) i;
            } else if (random.nextBoolean()) {
                byte[] r = new byte[4096];
                random.nextBytes(r);
                System.arraycopy(r, 0, data, i, 4096);
            }
        }
        Files.write(raw, data);
        for (String type : new String[] {"zlib", "zstd"}) {
            Path img = dir.resolve(type + ".qcow2");
            run("qemu-img", "convert", "-c", "-O", "qcow2", "-o", "compression_type=" + type + ",cluster_size=65536",
                    raw.toString(), img.toString());
            assertTrue(run("qemu-img", "info", img.toString()).contains("compression type: " + type));
            BlockNode node = openQcow2(graph, type, img);
            assertArrayEquals(data, readAll(node), type);
            byte[] mirror = data.clone();
            randomWorkload(node, mirror, new Random(4), 150);
            graph.close();
            checkClean(img);
            assertArrayEquals(mirror, guestView(img, dir), type);
        }
    }

    @Test
    void growingTheImageGrowsTheL1TableAndKeepsTheData() throws Exception {
        Path img = dir.resolve("grow.qcow2");
        create(img, "cluster_size=512", 1L << 20); // one L1 cluster covers 32 MiB at 512-byte clusters
        qemuIo(img, "qcow2", "write -P 0x42 0 64k");
        BlockNode node = openQcow2(graph, "g", img);
        node.resize(256L << 20);
        assertEquals(256L << 20, node.size());
        byte[] tail = new byte[8192];
        Arrays.fill(tail, (byte) 0x24);
        try (QemuTools.Driver d = new QemuTools.Driver(1 << 20)) {
            assertEquals(0, d.write(node, (256L << 20) - 8192, tail));
            assertEquals(0, d.flush(node));
        }
        assertThrows(dev.vhostappliance.cli.StartupException.class, () -> node.resize(1L << 20), "no shrinking");
        graph.close();
        checkClean(img);
        assertTrue(run("qemu-img", "info", img.toString()).contains("virtual size: 256 MiB"));
        qemuIo(img, "qcow2", "read -P 0x42 0 64k", "read -P 0x24 " + ((256L << 20) - 8192) + " 8192");
    }

    @Test
    void manyRefcountBlocksAndAGrownRefcountTableStayConsistent() throws Exception {
        // 512-byte clusters, 64-bit refcounts: a refcount block covers 64 clusters (32 KiB), a table cluster
        // 64 blocks (2 MiB); writing 16 MiB makes hundreds of blocks and grows the table several times
        Path img = dir.resolve("refs.qcow2");
        create(img, "cluster_size=512,refcount_bits=64", 32L << 20);
        BlockNode node = openQcow2(graph, "r", img);
        byte[] chunk = new byte[256 << 10];
        byte[] mirror = new byte[32 << 20];
        Random random = new Random(5);
        try (QemuTools.Driver d = new QemuTools.Driver(1 << 20)) {
            for (long at = 0; at < (16L << 20); at += chunk.length) {
                random.nextBytes(chunk);
                assertEquals(0, d.write(node, at, chunk));
                System.arraycopy(chunk, 0, mirror, (int) at, chunk.length);
            }
        }
        graph.close();
        String check = checkClean(img);
        assertFalse(check.contains("ERROR"), check);
        assertArrayEquals(mirror, guestView(img, dir));
    }

    @Test
    void lazyRefcountsMarkTheImageDirtyAndACrashedImageIsRepairedOnOpen() throws Exception {
        Path img = dir.resolve("lazy.qcow2");
        create(img, "lazy_refcounts=on,cluster_size=4096", 16L << 20);
        BlockNode node = openQcow2(graph, "l", img);
        byte[] data = new byte[64 << 10];
        new Random(6).nextBytes(data);
        Path crashed = dir.resolve("crashed.qcow2");
        try (QemuTools.Driver d = new QemuTools.Driver(1 << 20)) {
            assertEquals(0, d.write(node, 1 << 20, data));
            assertEquals(0, d.flush(node));
            assertEquals(0, d.write(node, 5 << 20, data)); // not flushed: its metadata may be lost
            Files.copy(img, crashed); // what the disk holds if the process dies now
        }
        assertTrue(dirtyBit(crashed), "an image written with lazy refcounts is marked dirty while open");
        graph.close();
        assertFalse(dirtyBit(img), "and clean after a clean close");
        checkClean(img);

        BlockNode repaired = openQcow2(graph, "c", crashed);
        try (QemuTools.Driver d = new QemuTools.Driver(1 << 20)) {
            byte[] got = new byte[data.length];
            assertEquals(0, d.read(repaired, 1 << 20, got));
            assertArrayEquals(data, got, "the flushed write survived the crash");
        }
        assertFalse(dirtyBit(crashed), "repaired on open");
        graph.close();
        checkClean(crashed);
    }

    @Test
    void anImageQemuLeftDirtyWithRefcountsMissingIsRepairedOnAWritableOpen() throws Exception {
        Path img = dir.resolve("aborted.qcow2");
        create(img, "lazy_refcounts=on,cluster_size=4096", 16L << 20);
        // qemu-io aborts after its writes: lazy refcounts never written, the dirty bit left set
        ExternalTools.Result aborted = QemuTools.exec("qemu-io", "-c", "write -P 0x61 0 1M", "-c", "write -P 0x62 8M 64k",
                "-c", "abort", img.toString());
        assertTrue(aborted.status() != 0, aborted.output());
        assertTrue(dirtyBit(img));
        Path copy = dir.resolve("copy.qcow2");
        Files.copy(img, copy);
        ExternalTools.Result before = QemuTools.exec("qemu-img", "check", copy.toString());
        assertTrue(before.output().contains("refcount=0 reference=1"), "the refcounts are really missing: " + before.output());

        BlockNode node = openQcow2(graph, "a", img);
        byte[] more = new byte[128 << 10];
        Arrays.fill(more, (byte) 0x63);
        try (QemuTools.Driver d = new QemuTools.Driver(1 << 20)) {
            assertEquals(0, d.write(node, 12L << 20, more)); // allocates: must not reuse the uncounted clusters
        }
        graph.close();
        assertFalse(dirtyBit(img));
        checkClean(img);
        qemuIo(img, "qcow2", "read -P 0x61 0 1M", "read -P 0x62 8M 64k", "read -P 0x63 12M 128k");
    }

    /** Incompatible feature bit 0 of a v3 header. */
    private static boolean dirtyBit(Path image) throws Exception {
        byte[] header = Files.readAllBytes(image);
        return (header[79] & 1) != 0;
    }

    @Test
    void imagesWeCannotWriteSafelyAreRefusedWithOneSentence() throws Exception {
        Path snap = dir.resolve("snap.qcow2");
        create(snap, "", 1 << 20);
        run("qemu-img", "snapshot", "-c", "s1", snap.toString());
        OptionException e = assertThrows(OptionException.class, () -> openQcow2(graph, "s", snap));
        assertTrue(e.getMessage().contains("internal snapshots"), e.getMessage());
        openQcow2(graph, "s", snap, "read-only", true); // read-only is fine

        Path bitmaps = dir.resolve("bitmaps.qcow2");
        create(bitmaps, "", 1 << 20);
        run("qemu-img", "bitmap", "--add", bitmaps.toString(), "b0");
        e = assertThrows(OptionException.class, () -> openQcow2(graph, "b", bitmaps));
        assertTrue(e.getMessage().contains("bitmaps"), e.getMessage());

        Path luks = dir.resolve("enc.qcow2");
        run("qemu-img", "create", "-q", "-f", "qcow2", "--object", "secret,id=sec0,data=123456",
                "-o", "encrypt.format=luks,encrypt.key-secret=sec0", luks.toString(), "1M");
        e = assertThrows(OptionException.class, () -> openQcow2(graph, "e", luks, "read-only", true));
        assertTrue(e.getMessage().contains("encrypted"), e.getMessage());

        Path external = dir.resolve("ext.qcow2");
        create(external, "data_file=" + dir.resolve("ext.data"), 1 << 20);
        e = assertThrows(OptionException.class, () -> openQcow2(graph, "x", external, "read-only", true));
        assertTrue(e.getMessage().contains("external data file"), e.getMessage());
        assertEquals(2, graph.nodes().size(), "failed opens leave no nodes behind: " + graph.nodes().keySet());
    }

    @ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource(delimiter = '|', value = {
        "discard|trim|Parameter 'discard' does not accept value 'trim'",
        "overlap-check|sometimes|Parameter 'overlap-check' does not accept value 'sometimes'",
        "data-file|x.data|Parameter 'data-file' is not supported (external data files)",
        "encrypt|on|Parameter 'encrypt' is not supported (encrypted images)",
        "l2-cache-entry-size|1000|l2-cache-entry-size must be a power of two between 512 and the cluster size",
        "cache-size|1M|l2-cache-size + refcount-cache-size must equal cache-size",
        "lazy-refcounts|maybe|Parameter 'lazy-refcounts'"})
    void badQcow2OptionsAreRefusedWithOneSentence(String key, String value, String message) throws Exception {
        Path img = dir.resolve("o.qcow2");
        create(img, "", 1 << 20);
        Object[] extra = key.equals("cache-size")
                ? new Object[] {"cache-size", value, "l2-cache-size", "512K", "refcount-cache-size", "256K"}
                : new Object[] {key, value};
        OptionException e = assertThrows(OptionException.class, () -> openQcow2(graph, "o", img, extra));
        assertTrue(e.getMessage().contains(message), e.getMessage());
        assertTrue(graph.isEmpty(), "the implicit file node went too: " + graph.nodes().keySet());
    }

    @Test
    void aBackingChainThatLoopsIsRefused() throws Exception {
        Path a = dir.resolve("a.qcow2");
        Path b = dir.resolve("b.qcow2");
        create(a, "", 1 << 20);
        create(b, "backing_file=a.qcow2,backing_fmt=qcow2", 1 << 20);
        run("qemu-img", "rebase", "-u", "-b", "b.qcow2", "-F", "qcow2", a.toString());
        OptionException e = assertThrows(OptionException.class, () -> openQcow2(graph, "a", a, "read-only", true));
        assertTrue(e.getMessage().contains("loops"), e.getMessage());
        assertTrue(graph.isEmpty());
    }

    // ------------------------------------------------------------------ helpers

    private byte[] readAll(BlockNode node) {
        byte[] all = new byte[(int) node.size()];
        int chunk = 192 << 10;
        try (QemuTools.Driver d = new QemuTools.Driver(chunk)) {
            for (long at = 0; at < all.length; at += chunk) {
                byte[] part = new byte[(int) Math.min(chunk, all.length - at)];
                assertEquals(0, d.read(node, at, part), "read at " + at);
                System.arraycopy(part, 0, all, (int) at, part.length);
            }
        }
        return all;
    }

    /**
     * Writes, zero writes and discards of random sizes at random sectors; mirror follows what the guest
     * must see (a discarded range reads as whatever the node then returns, which qemu must read too).
     */
    static void randomWorkload(BlockNode node, byte[] mirror, Random random, int ops) {
        long size = node.size();
        try (QemuTools.Driver d = new QemuTools.Driver(1 << 20)) {
            for (int i = 0; i < ops; i++) {
                int sectors = 1 + (random.nextInt(4) == 0 ? random.nextInt(512) : random.nextInt(16));
                long length = sectors * 512L;
                long offset = random.nextLong(size / 512 - sectors + 1) * 512;
                if (random.nextInt(8) == 0) {
                    // clustered near earlier writes so overwrites, COW and partial clusters all happen
                    offset = Math.min(offset % (4L << 20), size - length);
                }
                int op = random.nextInt(20);
                if (op < 15) {
                    byte[] data = new byte[(int) length];
                    random.nextBytes(data);
                    assertEquals(0, d.write(node, offset, data), "write " + offset + "+" + length);
                    System.arraycopy(data, 0, mirror, (int) offset, data.length);
                } else if (op < 18) {
                    assertEquals(0, d.writeZeroes(node, offset, length, op == 17), "write zeroes " + offset);
                    Arrays.fill(mirror, (int) offset, (int) (offset + length), (byte) 0);
                } else if (op == 18) {
                    assertEquals(0, d.discard(node, offset, length), "discard " + offset);
                    byte[] now = new byte[(int) length];
                    assertEquals(0, d.read(node, offset, now));
                    System.arraycopy(now, 0, mirror, (int) offset, now.length);
                } else {
                    assertEquals(0, d.flush(node), "flush");
                }
            }
            assertEquals(0, d.flush(node));
        }
    }
}

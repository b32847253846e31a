package dev.vhostappliance.block.export.fuse;

import static dev.vhostappliance.block.ExternalTools.exec;
import static dev.vhostappliance.block.ExternalTools.run;
import static dev.vhostappliance.block.Trees.tree;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.vhostappliance.block.ExternalTools;
import dev.vhostappliance.block.graph.BlockGraph;
import dev.vhostappliance.block.graph.OptionReader;
import dev.vhostappliance.block.node.BlockNode;
import dev.vhostappliance.cli.StartupException;
import dev.vhostappliance.libc.LibC;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The FUSE export mounted for real (root and /dev/fuse, as in CI) and used by tools that know nothing of it:
 * qemu-img, dd, cmp, truncate, fallocate, and SEEK_DATA/SEEK_HOLE; the mount goes when the export closes.
 */
class FuseExportTest {
    @TempDir
    Path dir;
    private final BlockGraph graph = new BlockGraph();
    private FuseExport export;
    private Path image;
    private Path mountpoint;

    @BeforeEach
    void prerequisites() throws Exception {
        boolean possible = Files.exists(Path.of("/dev/fuse")) && LibC.getuid() == 0
                && ExternalTools.available("qemu-img", "dd", "cmp", "truncate", "fallocate");
        assertTrue(possible || System.getenv("VHOST_E2E_REQUIRED") == null, "FUSE tests need root, /dev/fuse and the tools");
        assumeTrue(possible, "FUSE tests need root, /dev/fuse, qemu-img and coreutils");
        image = dir.resolve("disk.img");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(32 << 20);
        }
        mountpoint = Files.createFile(dir.resolve("export.raw"));
    }

    @AfterEach
    void stop() {
        if (export != null) {
            export.close();
        }
        graph.close();
    }


    private BlockNode fileNode(Object... extra) throws Exception {
        Map<String, Object> t = tree("driver", "file", "node-name", "disk", "filename", image.toString(), "discard", "unmap");
        for (int i = 0; i < extra.length; i += 2) {
            t.put((String) extra[i], extra[i + 1]);
        }
        return graph.add(new OptionReader(t));
    }

    private void mount(BlockNode node, boolean writable, boolean growable) throws Exception {
        export = FuseExport.mount("f0", "disk", node, mountpoint, writable, growable, "off");
        export.start();
    }

    private boolean mounted() throws Exception {
        return Files.readString(Path.of("/proc/self/mountinfo")).contains(" " + mountpoint + " ");
    }

    @Test
    void toolsReadAndWriteTheNodeThroughTheMountedFile() throws Exception {
        mount(fileNode(), true, false);
        assertTrue(mounted());
        assertEquals(32 << 20, Files.size(mountpoint));
        assertTrue(run("qemu-img", "info", "-f", "raw", mountpoint.toString()).contains("virtual size: 32 MiB"));
        byte[] data = new byte[3 << 20];
        new Random(1).nextBytes(data);
        Path src = Files.write(dir.resolve("src"), data);
        run("dd", "if=" + src, "of=" + mountpoint, "bs=64k", "seek=16", "conv=notrunc,fsync", "status=none");
        byte[] onDisk = Arrays.copyOfRange(Files.readAllBytes(image), 1 << 20, (1 << 20) + data.length);
        assertArrayEquals(data, onDisk, "what dd wrote through the mount is in the image");
        run("dd", "if=" + mountpoint, "of=" + dir.resolve("back"), "bs=1M", "skip=1", "count=3", "status=none");
        run("cmp", src.toString(), dir.resolve("back").toString());
        // unaligned reads and writes (FUSE passes them as they come)
        try (RandomAccessFile f = new RandomAccessFile(mountpoint.toFile(), "rw")) {
            f.seek(1000);
            f.write(new byte[] {1, 2, 3});
            byte[] b = new byte[5];
            f.seek(999);
            f.readFully(b);
            assertArrayEquals(new byte[] {0, 1, 2, 3, 0}, b);
        }
        run("fallocate", "--punch-hole", "--offset", String.valueOf(2 << 20), "--length", String.valueOf(1 << 20), mountpoint.toString());
        byte[] punched = Arrays.copyOfRange(Files.readAllBytes(mountpoint), 2 << 20, 3 << 20);
        assertArrayEquals(new byte[1 << 20], punched, "a punched range reads as zeroes");
        ExternalTools.Result grow = exec("truncate", "-s", "64M", mountpoint.toString());
        assertEquals(0, grow.status(), "a writable export may be truncated, as QEMU's: " + grow.output());
        assertEquals(64 << 20, Files.size(image));
        // past the end of a non-growable export a write takes what fits: nothing here
        ExternalTools.Result past = exec("dd", "if=" + src, "of=" + mountpoint, "bs=1M", "seek=64", "count=1", "conv=notrunc",
                "status=none");
        assertNotEquals(0, past.status(), past.output());
        export.close();
        export = null;
        assertFalse(mounted(), "closing the export unmounts it");
    }

    @Test
    void aGrowableExportGrowsWithWritesAndSeekDataFindsTheData() throws Exception {
        mount(fileNode(), true, true);
        byte[] data = new byte[1 << 20];
        new Random(2).nextBytes(data);
        Path src = Files.write(dir.resolve("src"), data);
        run("dd", "if=" + src, "of=" + mountpoint, "bs=1M", "seek=40", "conv=notrunc,fsync", "status=none");
        assertEquals(41 << 20, Files.size(image), "the write past the end grew the node");
        String seek = run("python3", "-c", "import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); "
                + "print(os.lseek(fd, 0, os.SEEK_DATA), os.lseek(fd, 40 << 20, os.SEEK_HOLE))", mountpoint.toString());
        assertEquals((40 << 20) + " " + (41 << 20), seek.strip());
    }

    @Test
    void aReadOnlyExportRefusesWritersAndABadMountpointIsOneSentence() throws Exception {
        BlockNode node = fileNode("read-only", true);
        mount(node, false, false);
        ExternalTools.Result w = exec("dd", "if=/dev/zero", "of=" + mountpoint, "bs=4k", "count=1", "conv=notrunc", "status=none");
        assertNotEquals(0, w.status(), "opening for writing is refused: " + w.output());
        assertTrue(run("qemu-img", "info", "-f", "raw", mountpoint.toString()).contains("32 MiB"));
        StartupException e = assertThrows(StartupException.class,
                () -> FuseExport.mount("f1", "disk", node, dir.resolve("missing"), false, false, "off"));
        assertTrue(e.getMessage().contains("does not exist"), e.getMessage());
        StartupException d = assertThrows(StartupException.class,
                () -> FuseExport.mount("f1", "disk", node, dir, false, false, "off"));
        assertTrue(d.getMessage().contains("must be a regular file"), d.getMessage());
    }
}

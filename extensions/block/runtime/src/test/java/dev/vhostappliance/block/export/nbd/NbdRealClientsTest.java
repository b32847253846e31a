package dev.vhostappliance.block.export.nbd;

import static dev.vhostappliance.block.ExternalTools.exec;
import static dev.vhostappliance.block.ExternalTools.run;
import static dev.vhostappliance.block.Trees.tree;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.vhostappliance.block.ExternalTools;
import dev.vhostappliance.block.graph.BlockGraph;
import dev.vhostappliance.block.graph.OptionReader;
import dev.vhostappliance.block.node.BlockNode;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The NBD server with clients we did not write: QEMU's (qemu-img, qemu-io: its NBD client) and libnbd's
 * (nbdinfo, nbdcopy). Data one writes the others read back; block status is the file's holes; over a Unix
 * socket and TCP. In CI the tools are installed (.ci/run); elsewhere the test is skipped without them.
 */
class NbdRealClientsTest {
    private static final long SIZE = 64L << 20;

    @TempDir
    Path dir;
    private final BlockGraph graph = new BlockGraph();
    private NbdServer unix;
    private NbdServer tcp;
    private Path socket;

    @BeforeEach
    void tools() {
        boolean required = System.getenv("VHOST_E2E_REQUIRED") != null;
        boolean present = ExternalTools.available("qemu-img", "qemu-io", "nbdinfo", "nbdcopy");
        assertTrue(present || !required, "qemu-utils and libnbd-bin are needed");
        assumeTrue(present, "qemu-utils and libnbd-bin are not installed");
    }

    @AfterEach
    void stop() {
        if (unix != null) {
            unix.close();
        }
        if (tcp != null) {
            tcp.close();
        }
        graph.close();
    }


    /** A raw file node (discard=unmap, so TRIM punches holes) served as name over a Unix socket and TCP. */
    private BlockNode serve(Path image, String name) throws Exception {
        BlockNode node = graph.add(new OptionReader(tree("driver", "file", "node-name", name, "filename", image.toString(),
                "discard", "unmap")));
        socket = dir.resolve("nbd.sock");
        unix = NbdServer.listenUnix(socket, 0);
        tcp = NbdServer.listenInet("127.0.0.1", 0, 0);
        new NbdExport("u-" + name, name, null, name, node, true, true).addTo(unix);
        new NbdExport("t-" + name, name, null, name, node, true, true).addTo(tcp);
        unix.start();
        tcp.start();
        return node;
    }

    private String unixUri(String name) {
        return "nbd+unix:///" + name + "?socket=" + socket;
    }

    private String tcpUri(String name) {
        return "nbd://127.0.0.1:" + tcp.port() + "/" + name;
    }

    private static Path sparse(Path p, long size) throws Exception {
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(size);
        }
        return p;
    }

    /** qemu-io's commands on a target; fails on any error or pattern mismatch it reports. */
    private static String qemuIo(String target, String... commands) {
        List<String> cmd = new java.util.ArrayList<>(List.of("qemu-io", "-f", "raw", "-d", "unmap"));
        for (String c : commands) {
            cmd.add("-c");
            cmd.add(c);
        }
        cmd.add(target);
        String out = run(cmd.toArray(String[]::new));
        if (out.contains("failed") || out.contains("error") || out.contains("invalid")) {
            throw new AssertionError("qemu-io: " + out);
        }
        return out;
    }

    @Test
    void whatEachClientWritesTheOthersReadBack() throws Exception {
        Path image = sparse(dir.resolve("disk.img"), SIZE);
        serve(image, "disk");
        Path mirror = sparse(dir.resolve("mirror.img"), SIZE);
        String[] writes = {"write -P 0xa1 0 1M", "write -f -P 0xb2 3M 64k", "write -P 0xc3 5000 3000", "flush",
            "write -z 512k 128k", "write -z -u 10M 1M", "discard 768k 256k"};
        qemuIo(unixUri("disk"), writes); // QEMU's NBD client over the Unix socket ...
        qemuIo(mirror.toString(), writes); // ... and the same on a local file
        assertTrue(run("qemu-img", "compare", "-f", "raw", "-F", "raw", mirror.toString(), tcpUri("disk"))
                .contains("identical"), "qemu-img over TCP sees what qemu-io wrote over the Unix socket");
        qemuIo(tcpUri("disk"), "read -P 0xb2 3M 64k", "read -P 0 512k 128k", "read -P 0xa1 8192 516096");

        Path copy = dir.resolve("copy.img");
        run("nbdcopy", unixUri("disk"), copy.toString()); // libnbd reads it
        assertArrayEquals(Files.readAllBytes(mirror), Files.readAllBytes(copy));

        Path source = sparse(dir.resolve("source.img"), SIZE);
        byte[] data = new byte[2 << 20];
        new Random(7).nextBytes(data);
        try (RandomAccessFile f = new RandomAccessFile(source.toFile(), "rw")) {
            f.seek(20L << 20);
            f.write(data);
        }
        run("nbdcopy", source.toString(), tcpUri("disk")); // libnbd writes it
        assertTrue(run("qemu-img", "compare", "-f", "raw", "-F", "raw", source.toString(), unixUri("disk"))
                .contains("identical"));
        assertArrayEquals(Files.readAllBytes(source), Files.readAllBytes(image), "the file holds what was written");
    }

    @Test
    void qemuImgConvertsIntoTheExportAndBlockStatusIsTheFilesHoles() throws Exception {
        Path image = sparse(dir.resolve("disk.img"), SIZE);
        serve(image, "disk");
        Path source = sparse(dir.resolve("source.img"), SIZE);
        byte[] data = new byte[1 << 20];
        new Random(8).nextBytes(data);
        try (RandomAccessFile f = new RandomAccessFile(source.toFile(), "rw")) {
            f.seek(4L << 20);
            f.write(data);
            f.seek(40L << 20);
            f.write(data);
        }
        run("qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", source.toString(), unixUri("disk"));
        assertTrue(run("qemu-img", "compare", "-f", "raw", "-F", "raw", source.toString(), tcpUri("disk")).contains("identical"));
        // qemu-img convert skips the zeroes, so the export's file has the source's holes; nbdinfo shows them.
        String map = run("nbdinfo", "--map", tcpUri("disk"));
        assertEquals(String.join("\n",
                mapLine(0, 4L << 20, 3, "hole,zero"),
                mapLine(4L << 20, 1 << 20, 0, "data"),
                mapLine(5L << 20, 35L << 20, 3, "hole,zero"),
                mapLine(40L << 20, 1 << 20, 0, "data"),
                mapLine(41L << 20, 23L << 20, 3, "hole,zero")), map.strip().replaceAll("[ \t]+", " ").replace("\n ", "\n"));
        String depth = run("nbdinfo", "--map=qemu:allocation-depth", unixUri("disk"));
        assertEquals(mapLine(0, SIZE, 1, "local"), depth.strip().replaceAll("[ \t]+", " ").replace("\n ", "\n"));
        String info = run("qemu-img", "info", "--output=json", tcpUri("disk"));
        assertTrue(info.contains("\"virtual-size\": " + SIZE), info);
    }

    private static String mapLine(long offset, long length, int type, String description) {
        return offset + " " + length + " " + type + " " + description;
    }

    @Test
    void aQcow2OverlaysAllocationDepthShowsWhichLayerHoldsWhat() throws Exception {
        Path base = dir.resolve("base.qcow2");
        run("qemu-img", "create", "-q", "-f", "qcow2", base.toString(), "4M");
        run("qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 1M", base.toString());
        Path top = dir.resolve("top.qcow2");
        run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "backing_file=base.qcow2,backing_fmt=qcow2", top.toString());
        run("qemu-io", "-f", "qcow2", "-c", "write -P 0x22 1M 1M", top.toString());
        Path view = dir.resolve("view.raw");
        run("qemu-img", "convert", "-O", "raw", top.toString(), view.toString());
        BlockNode node = graph.add(new OptionReader(tree("driver", "qcow2", "node-name", "top", "read-only", true,
                "file", tree("driver", "file", "filename", top.toString()))));
        socket = dir.resolve("nbd.sock");
        unix = NbdServer.listenUnix(socket, 0);
        new NbdExport("e", "top", null, "top", node, false, true).addTo(unix);
        unix.start();
        String depth = run("nbdinfo", "--map=qemu:allocation-depth", unixUri("top"));
        assertEquals(String.join("\n", mapLine(0, 1 << 20, 2, "backing depth 2"), mapLine(1 << 20, 1 << 20, 1, "local"),
                mapLine(2 << 20, 2 << 20, 0, "absent")), depth.strip().replaceAll("[ \t]+", " ").replace("\n ", "\n"));
        assertTrue(run("qemu-img", "compare", "-f", "raw", view.toString(), unixUri("top")).contains("identical"));
        ExternalTools.Result write = exec("qemu-io", "-f", "raw", "-c", "write 0 512", unixUri("top"));
        assertTrue(write.status() != 0 || write.output().contains("failed"), "a read-only export refuses writes: "
                + write.output());
    }
}

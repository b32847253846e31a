package dev.vhostappliance.block.export.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostappliance.block.node.FileNode;
import dev.vhostappliance.block.node.NullNode;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The NBD server against a client that writes the protocol's bytes by hand: the handshake's options and
 * their errors, requests in flight together, every check on a request, and hostile clients (bad magic,
 * floods, oversized lengths, disconnects mid-request, a thousand connections) that must not disturb others.
 */
class NbdServerTest {
    private static final long SIZE = 16L << 20;
    private static final Duration LIMIT = Duration.ofSeconds(30);

    @TempDir
    Path dir;
    private Path image;
    private Path socket;
    private FileNode node;
    private NbdServer server;
    private NbdExport export;

    @BeforeEach
    void start() throws Exception {
        image = dir.resolve("disk.img");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(SIZE);
        }
        node = FileNode.open("disk", image, FileNode.Options.defaults(false));
        socket = dir.resolve("nbd.sock");
        server = NbdServer.listenUnix(socket, 0);
        export = new NbdExport("e0", "disk0", "a test disk", "disk", node, true, true);
        export.addTo(server);
        server.start();
    }

    @AfterEach
    void stop() {
        server.close();
        node.close();
    }

    private RawNbdClient connect() throws IOException {
        return new RawNbdClient(socket).greet();
    }

    private static byte[] pattern(int length, long seed) {
        byte[] b = new byte[length];
        new Random(seed).nextBytes(b);
        return b;
    }

    // ------------------------------------------------------------------ handshake

    @Test
    void theHandshakeAnswersEachOptionAndItsErrors() throws Exception {
        assertTimeoutPreemptively(LIMIT, () -> {
            try (RawNbdClient c = connect()) {
                c.option(Nbd.OPT_LIST, new byte[0]);
                List<RawNbdClient.OptionReply> list = c.optionReplies();
                assertEquals(2, list.size());
                assertEquals(Nbd.REP_SERVER, list.get(0).type());
                assertEquals("disk0", list.get(0).text(4));
                c.option(Nbd.OPT_LIST, new byte[3]);
                assertEquals(Nbd.REP_ERR_INVALID, c.optionReply().type());
                c.option(Nbd.OPT_INFO, RawNbdClient.nameAndInfos("nope"));
                assertEquals(Nbd.REP_ERR_UNKNOWN, c.optionReply().type());
                c.option(Nbd.OPT_SET_META_CONTEXT, RawNbdClient.contextQuery("disk0", Nbd.BASE_ALLOCATION));
                assertEquals(Nbd.REP_ERR_INVALID, c.optionReply().type(), "contexts need structured replies first");
                c.option(Nbd.OPT_STARTTLS, new byte[0]);
                assertEquals(Nbd.REP_ERR_POLICY, c.optionReply().type(), "no TLS configured");
                c.option(77, new byte[5]);
                assertEquals(Nbd.REP_ERR_UNSUP, c.optionReply().type());
                // a name length that points past the option's data
                c.option(Nbd.OPT_GO, ByteBuffer.allocate(10).putInt(1000).array());
                assertEquals(Nbd.REP_ERR_INVALID, c.optionReply().type());
                c.option(Nbd.OPT_STRUCTURED_REPLY, new byte[0]);
                assertEquals(Nbd.REP_ACK, c.optionReply().type());
                c.option(Nbd.OPT_STRUCTURED_REPLY, new byte[0]);
                assertEquals(Nbd.REP_ERR_INVALID, c.optionReply().type(), "negotiated twice");
                c.option(Nbd.OPT_LIST_META_CONTEXT, RawNbdClient.contextQuery("disk0"));
                List<RawNbdClient.OptionReply> contexts = c.optionReplies();
                assertEquals(Set.of(Nbd.BASE_ALLOCATION, Nbd.QEMU_ALLOCATION_DEPTH),
                        Set.of(contexts.get(0).text(4), contexts.get(1).text(4)));
                c.option(Nbd.OPT_INFO, RawNbdClient.nameAndInfos("disk0", Nbd.INFO_DESCRIPTION, Nbd.INFO_NAME));
                List<RawNbdClient.OptionReply> info = c.optionReplies();
                assertTrue(info.stream().anyMatch(r -> r.type() == Nbd.REP_INFO && r.text(2).equals("a test disk")));
                long[] sizeFlags = c.go("disk0", false, Nbd.BASE_ALLOCATION);
                assertEquals(SIZE, sizeFlags[0]);
                assertTrue((sizeFlags[1] & Nbd.FLAG_SEND_FUA) != 0 && (sizeFlags[1] & Nbd.FLAG_READ_ONLY) == 0);
            }
        });
    }

    @Test
    void exportNameEndsTheHandshakeOrTheConnection() throws Exception {
        assertTimeoutPreemptively(LIMIT, () -> {
            try (RawNbdClient c = connect()) {
                c.option(Nbd.OPT_EXPORT_NAME, "disk0".getBytes(StandardCharsets.UTF_8));
                ByteBuffer b = c.read(10);
                assertEquals(SIZE, b.getLong());
                c.request(0, Nbd.CMD_READ, 1, 0, 512, null);
                assertEquals(0, c.reply(512).error());
            }
            try (RawNbdClient c = connect()) {
                c.option(Nbd.OPT_EXPORT_NAME, "unknown".getBytes(StandardCharsets.UTF_8));
                assertTrue(c.closedByServer());
            }
        });
    }

    // ------------------------------------------------------------------ transmission

    @Test
    void manyRequestsInFlightAreEachAnsweredWithTheirData() throws Exception {
        assertTimeoutPreemptively(LIMIT, () -> {
            byte[] data = pattern(4 << 20, 1);
            Files.write(image, data, java.nio.file.StandardOpenOption.WRITE);
            try (RawNbdClient c = connect()) {
                c.go("disk0", true);
                int n = 200; // more than the 64 a connection serves at once: the rest wait in the socket
                for (int i = 0; i < n; i++) {
                    c.request(0, Nbd.CMD_READ, 1000 + i, (long) i * 16384, 16384, null);
                }
                Set<Long> seen = new HashSet<>();
                for (int i = 0; i < n; i++) {
                    RawNbdClient.Reply r = c.reply(0);
                    assertEquals(Nbd.REPLY_TYPE_OFFSET_DATA, r.type());
                    assertEquals(Nbd.REPLY_FLAG_DONE, r.flags());
                    int k = (int) (r.handle() - 1000);
                    assertEquals((long) k * 16384, ByteBuffer.wrap(r.data()).getLong());
                    assertArrayEquals(java.util.Arrays.copyOfRange(data, k * 16384, k * 16384 + 16384),
                            java.util.Arrays.copyOfRange(r.data(), 8, r.data().length));
                    seen.add(r.handle());
                }
                assertEquals(n, seen.size());
            }
        });
    }

    @Test
    void writesWithFuaAndFlushReachTheFile() throws Exception {
        assertTimeoutPreemptively(LIMIT, () -> {
            byte[] a = pattern(65536, 2);
            byte[] b = pattern(1 << 20, 3);
            try (RawNbdClient c = connect()) {
                c.go("disk0", false);
                c.request(Nbd.CMD_FLAG_FUA, Nbd.CMD_WRITE, 1, 4096, a.length, a);
                assertEquals(0, c.reply(0).error());
                c.request(0, Nbd.CMD_WRITE, 2, 8 << 20, b.length, b);
                c.request(0, Nbd.CMD_FLUSH, 3, 0, 0, null);
                assertEquals(0, c.reply(0).error());
                assertEquals(0, c.reply(0).error());
                c.request(0, Nbd.CMD_READ, 4, 4096, a.length, null);
                assertArrayEquals(a, c.reply(a.length).data(), "simple reply carries the data");
                c.request(0, Nbd.CMD_DISC, 5, 0, 0, null);
                assertTrue(c.closedByServer());
            }
            byte[] onDisk = Files.readAllBytes(image);
            assertArrayEquals(a, java.util.Arrays.copyOfRange(onDisk, 4096, 4096 + a.length));
            assertArrayEquals(b, java.util.Arrays.copyOfRange(onDisk, 8 << 20, (8 << 20) + b.length));
            assertEquals(2, export.counters().writes());
        });
    }

    @Test
    void badRequestsGetErrorsAndTheConnectionGoesOn() throws Exception {
        assertTimeoutPreemptively(LIMIT, () -> {
            try (RawNbdClient c = connect()) {
                c.go("disk0", true);
                c.request(0, Nbd.CMD_READ, 1, SIZE - 512, 1024, null); // past the end
                assertEquals(Nbd.EINVAL, c.reply(0).error());
                c.request(0, Nbd.CMD_READ, 2, -4096, 512, null); // an offset beyond 2^63
                assertEquals(Nbd.EINVAL, c.reply(0).error());
                c.request(0, Nbd.CMD_READ, 3, 0, 64 << 20, null); // longer than the maximum payload
                assertEquals(Nbd.EINVAL, c.reply(0).error());
                c.request(1 << 9, Nbd.CMD_READ, 4, 0, 512, null); // an unknown flag
                assertEquals(Nbd.EINVAL, c.reply(0).error());
                c.request(0, 99, 5, 0, 512, null); // an unknown command
                assertEquals(Nbd.EINVAL, c.reply(0).error());
                c.request(0, Nbd.CMD_WRITE, 6, SIZE - 256, 512, new byte[512]); // a write past the end
                assertEquals(Nbd.ENOSPC, c.reply(0).error());
                c.request(0, Nbd.CMD_BLOCK_STATUS, 7, 0, 4096, null); // no context selected
                assertEquals(Nbd.EINVAL, c.reply(0).error());
                c.request(0, Nbd.CMD_WRITE_ZEROES, 8, SIZE, 1, null);
                assertEquals(Nbd.ENOSPC, c.reply(0).error());
                c.request(0, Nbd.CMD_READ, 9, 0, 512, null); // and it still reads
                RawNbdClient.Reply ok = c.reply(0);
                assertEquals(0, ok.error());
                assertEquals(9, ok.handle());
            }
        });
    }

    @Test
    void aReadOnlyExportRefusesWritesWithEperm() throws Exception {
        assertTimeoutPreemptively(LIMIT, () -> {
            NbdExport ro = new NbdExport("e1", "ro", null, "disk", node, false, false);
            ro.addTo(server);
            try (RawNbdClient c = connect()) {
                long[] sizeFlags = c.go("ro", false);
                assertTrue((sizeFlags[1] & Nbd.FLAG_READ_ONLY) != 0);
                c.request(0, Nbd.CMD_WRITE, 1, 0, 512, new byte[512]);
                assertEquals(Nbd.EPERM, c.reply(0).error());
                c.request(0, Nbd.CMD_TRIM, 2, 0, 512, null);
                assertEquals(Nbd.EPERM, c.reply(0).error());
                c.request(0, Nbd.CMD_FLUSH, 3, 0, 0, null);
                assertEquals(0, c.reply(0).error());
            }
        });
    }

    @Test
    void blockStatusFollowsTheFilesHolesAndReqOneGivesOneExtent() throws Exception {
        assertTimeoutPreemptively(LIMIT, () -> {
            try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
                f.seek(1 << 20);
                f.write(pattern(1 << 20, 4));
            }
            try (RawNbdClient c = connect()) {
                c.go("disk0", true, Nbd.BASE_ALLOCATION, Nbd.QEMU_ALLOCATION_DEPTH);
                c.request(0, Nbd.CMD_BLOCK_STATUS, 1, 0, 4 << 20, null);
                RawNbdClient.Reply first = c.reply(0);
                RawNbdClient.Reply second = c.reply(0);
                assertEquals(0, first.flags(), "the first of two chunks is not the last");
                assertEquals(Nbd.REPLY_FLAG_DONE, second.flags());
                RawNbdClient.Reply base = ByteBuffer.wrap(first.data()).getInt() == NbdSession.BASE_ALLOCATION_ID ? first : second;
                ByteBuffer e = ByteBuffer.wrap(base.data(), 4, base.data().length - 4);
                assertEquals(1 << 20, e.getInt());
                assertEquals(Nbd.STATE_HOLE | Nbd.STATE_ZERO, e.getInt());
                assertEquals(1 << 20, e.getInt());
                assertEquals(0, e.getInt());
                assertEquals(2 << 20, e.getInt());
                assertEquals(Nbd.STATE_HOLE | Nbd.STATE_ZERO, e.getInt());
                assertEquals(0, e.remaining());
                c.request(Nbd.CMD_FLAG_REQ_ONE, Nbd.CMD_BLOCK_STATUS, 2, 512, 8 << 20, null);
                for (RawNbdClient.Reply r : List.of(c.reply(0), c.reply(0))) {
                    assertEquals(4 + 8, r.data().length, "one extent per context");
                    boolean isBase = ByteBuffer.wrap(r.data()).getInt() == NbdSession.BASE_ALLOCATION_ID;
                    // the hole up to 1 MiB; the depth is 1 everywhere, so its extent is the whole request
                    assertEquals(isBase ? (1 << 20) - 512 : 8 << 20, ByteBuffer.wrap(r.data()).getInt(4));
                }
            }
        });
    }

    @Test
    void writeZeroesPunchesAndFastZeroIsRefusedWhereItWouldBeSlow() throws Exception {
        assertTimeoutPreemptively(LIMIT, () -> {
            Files.write(image, pattern(1 << 20, 5), java.nio.file.StandardOpenOption.WRITE);
            try (RawNbdClient c = connect()) {
                c.go("disk0", true);
                c.request(Nbd.CMD_FLAG_FAST_ZERO, Nbd.CMD_WRITE_ZEROES, 1, 0, 65536, null);
                assertEquals(0, c.reply(0).error());
                c.request(Nbd.CMD_FLAG_FAST_ZERO | Nbd.CMD_FLAG_NO_HOLE, Nbd.CMD_WRITE_ZEROES, 2, 65536, 65536, null);
                assertEquals(Nbd.ENOTSUP, c.reply(0).error(), "ZERO_RANGE may fall back to writing zeroes");
                c.request(Nbd.CMD_FLAG_NO_HOLE, Nbd.CMD_WRITE_ZEROES, 3, 65536, 65536, null);
                assertEquals(0, c.reply(0).error());
            }
            byte[] onDisk = Files.readAllBytes(image);
            assertArrayEquals(new byte[131072], java.util.Arrays.copyOfRange(onDisk, 0, 131072));
        });
    }

    // ------------------------------------------------------------------ hostile clients

    @Test
    void protocolViolationsCloseThatConnectionOnly() throws Exception {
        assertTimeoutPreemptively(LIMIT, () -> {
            try (RawNbdClient good = connect()) {
                good.go("disk0", true);
                try (RawNbdClient c = new RawNbdClient(socket)) { // unknown client flags
                    c.read(18);
                    c.write(ByteBuffer.allocate(4).putInt(0x80).flip());
                    assertTrue(c.closedByServer());
                }
                try (RawNbdClient c = connect()) { // an option without the magic
                    c.write(ByteBuffer.allocate(16).putLong(0x1234).putInt(Nbd.OPT_GO).putInt(0).flip());
                    assertTrue(c.closedByServer());
                }
                try (RawNbdClient c = connect()) { // a request without the magic
                    c.go("disk0", true);
                    c.write(ByteBuffer.allocate(28).putInt(0xdeadbeef).position(28).flip());
                    assertTrue(c.closedByServer());
                }
                try (RawNbdClient c = connect()) { // a write longer than the announced maximum
                    c.go("disk0", true);
                    c.request(0, Nbd.CMD_WRITE, 1, 0, 0xffffffffL, null);
                    assertTrue(c.closedByServer());
                }
                good.request(0, Nbd.CMD_READ, 7, 0, 4096, null);
                assertEquals(0, good.reply(0).error());
            }
        });
    }

    @Test
    void longOptionsAndOptionFloodsAreAnsweredAndTheHandshakeStillCompletes() throws Exception {
        assertTimeoutPreemptively(LIMIT, () -> {
            try (RawNbdClient c = connect()) {
                c.option(Nbd.OPT_INFO, new byte[200_000]); // skipped, answered TOO_BIG
                assertEquals(Nbd.REP_ERR_TOO_BIG, c.optionReply().type());
                byte[] longName = "x".repeat(5000).getBytes(StandardCharsets.UTF_8);
                c.option(Nbd.OPT_GO, RawNbdClient.nameAndInfos(new String(longName, StandardCharsets.UTF_8)));
                assertEquals(Nbd.REP_ERR_INVALID, c.optionReply().type());
                for (int i = 0; i < 10_000; i++) {
                    c.option(Nbd.OPT_LIST, new byte[0]);
                    c.optionReplies();
                }
                c.go("disk0", true);
                c.request(0, Nbd.CMD_READ, 1, 0, 512, null);
                assertEquals(0, c.reply(0).error());
            }
        });
    }

    @Test
    void aThousandConnectionsDroppedAtEveryStageLeaveNoFdBehind() throws Exception {
        assertTimeoutPreemptively(Duration.ofSeconds(120), () -> {
            int before = openFds();
            for (int i = 0; i < 1000; i++) {
                try (RawNbdClient c = new RawNbdClient(socket)) {
                    switch (i % 4) {
                        case 0 -> { } // connects and leaves before the greeting is read
                        case 1 -> c.greet(); // leaves while haggling
                        case 2 -> { // leaves with writes in flight (racing their I/O)
                            c.greet().go("disk0", true);
                            for (int k = 0; k < 32; k++) {
                                c.request(0, Nbd.CMD_WRITE, k, (long) k * 65536, 65536, new byte[65536]);
                            }
                        }
                        default -> { // leaves halfway through a write's payload
                            c.greet().go("disk0", true);
                            c.request(0, Nbd.CMD_WRITE, 1, 0, 1 << 20, new byte[1000]);
                        }
                    }
                }
            }
            long deadline = System.nanoTime() + 20_000_000_000L;
            while (openFds() > before + 2 && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            assertTrue(openFds() <= before + 2, "fds before " + before + ", after " + openFds());
            try (RawNbdClient c = connect()) {
                c.go("disk0", true);
                c.request(0, Nbd.CMD_READ, 1, 0, 512, null);
                assertEquals(0, c.reply(0).error());
            }
        });
    }

    private static int openFds() throws IOException {
        try (var s = Files.list(Path.of("/proc/self/fd"))) {
            return (int) s.count();
        }
    }

    // ------------------------------------------------------------------ server management

    @Test
    void maxConnectionsHoldsFurtherClientsUntilOneLeaves() throws Exception {
        assertTimeoutPreemptively(LIMIT, () -> {
            server.close();
            server = NbdServer.listenUnix(socket, 1);
            export = new NbdExport("e0", "disk0", null, "disk", node, true, false);
            export.addTo(server);
            server.start();
            RawNbdClient first = connect();
            RawNbdClient second = new RawNbdClient(socket); // connects: it waits in the backlog
            second.channel.configureBlocking(false);
            Thread.sleep(300);
            assertEquals(0, second.channel.read(ByteBuffer.allocate(18)), "no greeting while the first is connected");
            first.close();
            second.channel.configureBlocking(true);
            second.greet().go("disk0", true);
            second.close();
        });
    }

    @Test
    void removingAnExportSafelyIsRefusedWhileUsedAndHardDisconnects() throws Exception {
        assertTimeoutPreemptively(LIMIT, () -> {
            try (RawNbdClient c = connect()) {
                c.go("disk0", true);
                c.request(0, Nbd.CMD_READ, 1, 0, 512, null); // answered: the connection is in transmission
                assertEquals(0, c.reply(0).error());
                assertTrue(export.inUse());
                assertThrows(dev.vhostappliance.cli.StartupException.class, () -> export.delete(false));
                export.delete(true);
                assertTrue(c.closedByServer());
            }
            try (RawNbdClient c = connect()) {
                c.option(Nbd.OPT_INFO, RawNbdClient.nameAndInfos("disk0"));
                assertEquals(Nbd.REP_ERR_UNKNOWN, c.optionReply().type(), "gone for new clients");
            }
        });
    }

    @Test
    void aNullNodeServesWithoutFiles() throws Exception {
        assertTimeoutPreemptively(LIMIT, () -> {
            NbdExport n = new NbdExport("e2", "null", null, "n", new NullNode("n", 1 << 30, true, false), true, false);
            n.addTo(server);
            try (RawNbdClient c = connect()) {
                c.go("null", true);
                c.request(0, Nbd.CMD_WRITE, 1, 0, 4096, new byte[4096]);
                c.request(0, Nbd.CMD_READ, 2, 0, 4096, null);
                RawNbdClient.Reply a = c.reply(0);
                RawNbdClient.Reply b = c.reply(0);
                assertEquals(0, a.error());
                assertEquals(0, b.error());
            }
        });
    }
}

package dev.vhostappliance.block.export.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.vhostappliance.block.node.FileNode;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * The NBD server's parsers (options, then requests) on fuzzed client streams: a connection either haggles
 * with garbage, or goes to transmission and sends requests of fuzzed flags, types, offsets and lengths (with
 * the right magic, so they reach the checks). Whatever arrives, the server answers or closes within seconds,
 * fails nothing on its side, and keeps serving a good client.
 */
class NbdConnectionFuzzTest {
    private static final long SIZE = 4L << 20;
    private static Path dir;
    private static FileNode node;
    private static NbdServer server;
    private static Path socket;
    private static int inputs;

    @BeforeAll
    static void start() throws Exception {
        dir = Files.createTempDirectory("nbd-fuzz");
        Path image = dir.resolve("disk.img");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(SIZE);
            f.seek(1 << 20);
            f.write(new byte[65536]); // some data among the holes, for block status
        }
        node = FileNode.open("disk", image, FileNode.Options.defaults(false));
        socket = dir.resolve("nbd.sock");
        server = NbdServer.listenUnix(socket, 0);
        new NbdExport("e", "disk", "fuzzed", "disk", node, true, true).addTo(server);
        server.start();
    }

    @AfterAll
    static void stop() throws IOException {
        server.close();
        node.close();
        try (var files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    @FuzzTest(maxDuration = "60s")
    void anyClientStreamIsAnsweredOrClosedAndTheServerGoesOn(FuzzedDataProvider data) throws Exception {
        ByteBuffer out = ByteBuffer.allocate(1 << 20);
        boolean transmission = data.consumeBoolean();
        out.putInt(data.consumeBoolean() ? Nbd.FLAG_C_FIXED_NEWSTYLE | Nbd.FLAG_C_NO_ZEROES : data.consumeInt());
        if (!transmission) {
            out.put(data.consumeBytes(out.remaining())); // options: garbage, or now and then a real magic
        } else {
            option(out, Nbd.OPT_STRUCTURED_REPLY, new byte[0]);
            option(out, Nbd.OPT_SET_META_CONTEXT, RawNbdClient.contextQuery("disk", Nbd.BASE_ALLOCATION, Nbd.QEMU_ALLOCATION_DEPTH));
            option(out, Nbd.OPT_GO, RawNbdClient.nameAndInfos("disk"));
            int requests = data.consumeInt(0, 40);
            for (int i = 0; i < requests && out.remaining() > 100_000; i++) {
                int type = data.consumeInt(0, 9);
                long offset = data.pickValue(new long[] {0, 512, SIZE - 4096, SIZE - 1, SIZE, SIZE + 1, -1, Long.MIN_VALUE,
                    data.consumeLong()});
                long length = data.pickValue(new long[] {0, 1, 4096, 65536, 0xffffffffL, 33554432, 33554433,
                    data.consumeLong(0, 0xffffffffL)});
                out.putInt(Nbd.REQUEST_MAGIC).putShort(data.consumeShort()).putShort((short) type).putLong(i)
                        .putLong(offset).putInt((int) length);
                if (type == Nbd.CMD_WRITE) {
                    int payload = (int) Math.min(length, Math.min(out.remaining() - 50_000, data.consumeInt(0, 70_000)));
                    out.position(out.position() + Math.max(payload, 0));
                }
            }
            out.put(data.consumeBytes(Math.min(out.remaining(), 256))); // and a tail of anything
        }
        exchange(out.flip());
        if (++inputs % 200 == 0) {
            goodClientReads();
        }
        assertEquals(0, server.failures(), "the server failed on its side");
    }

    private static void option(ByteBuffer out, int option, byte[] data) {
        out.putLong(Nbd.IHAVEOPT).putInt(option).putInt(data.length).put(data);
    }

    /** Writes out while reading whatever comes back, until the server closes; 10 s without an end is a hang. */
    private static void exchange(ByteBuffer out) throws IOException {
        try (SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(socket)); Selector sel = Selector.open()) {
            ch.configureBlocking(false);
            SelectionKey key = ch.register(sel, SelectionKey.OP_READ | SelectionKey.OP_WRITE);
            ByteBuffer in = ByteBuffer.allocate(1 << 16);
            long deadline = System.nanoTime() + 10_000_000_000L;
            boolean shut = false;
            while (true) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("the server neither answered nor closed within 10 s");
                }
                sel.select(100);
                try {
                    if (out.hasRemaining()) {
                        ch.write(out);
                    } else if (!shut) {
                        ch.shutdownOutput(); // the end of the client's stream: the server finishes and closes
                        key.interestOps(SelectionKey.OP_READ);
                        shut = true;
                    }
                    in.clear();
                    if (ch.read(in) < 0) {
                        return;
                    }
                } catch (IOException e) {
                    return; // closed by the server while we wrote: a protocol violation ended it
                }
            }
        }
    }

    private static void goodClientReads() throws IOException {
        try (RawNbdClient c = new RawNbdClient(socket).greet()) {
            c.go("disk", true);
            c.request(0, Nbd.CMD_READ, 1, 0, 4096, null);
            assertEquals(0, c.reply(0).error());
        }
    }
}

package dev.vhostappliance.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.RandomAccessFile;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The QMP monitor of the qemu-storage-daemon mode (--chardev socket,... --monitor chardev=...), driven by
 * our test client and by socat with the raw JSON of qmp-spec.txt: capabilities negotiation, block nodes and
 * exports added and deleted live, safe versus hard deletion with a frontend connected, BLOCK_EXPORT_DELETED
 * to every client, block_resize, errors, quit.
 */
class QmpMonitorIT {
    @TempDir
    Path dir;
    Process daemon;

    @AfterEach
    void stop() {
        if (daemon != null) {
            daemon.destroyForcibly();
        }
    }

    private Path start(String... extra) throws Exception {
        Path qmp = dir.resolve("qmp.sock");
        List<String> args = new java.util.ArrayList<>(List.of("--chardev",
                "socket,id=mon0,path=" + qmp + ",server=on,wait=off", "--monitor", "chardev=mon0"));
        args.addAll(List.of(extra));
        daemon = Appliance.start(Appliance.command(null, args.toArray(new String[0])), dir.resolve("daemon.log"));
        assertTrue(Appliance.awaitFile(qmp, 30_000), "monitor listening: " + Files.readString(dir.resolve("daemon.log")));
        return qmp;
    }

    private Path image(String name, long size) throws Exception {
        Path p = dir.resolve(name);
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(size);
        }
        return p;
    }

    @Test
    void socatSpeaksTheSpecsExamples() throws Exception {
        Path qmp = start();
        Process socat = new ProcessBuilder("socat", "-t", "2", "-", "UNIX-CONNECT:" + qmp).start();
        socat.getOutputStream().write(String.join("\n",
                "{ \"execute\": \"query-version\" }",
                "{ \"execute\": \"qmp_capabilities\" }",
                "{ \"execute\": \"qmp_capabilities\" }",
                "{ \"execute\": \"query-version\", \"id\": \"example\" }",
                "{ 'execute': 'blockdev-add', 'arguments': { 'driver': 'null-co', 'node-name': 'n0', 'size': 1048576 } }",
                "{ \"execute\": \"no-such-command\" }",
                "{ \"execute\": ",
                "   \"query-named-block-nodes\" }", // spread over lines: still one command
                "[1, 2]",
                "").getBytes(StandardCharsets.UTF_8));
        socat.getOutputStream().close();
        List<String> lines = new String(socat.getInputStream().readAllBytes(), StandardCharsets.UTF_8).lines().toList();
        assertTrue(socat.waitFor(10, TimeUnit.SECONDS));
        System.out.println(String.join("\n", lines));
        assertTrue(lines.get(0).startsWith("{\"QMP\":{\"version\":{\"qemu\":{\"major\":0,\"minor\":1,\"micro\":0}"), lines.get(0));
        assertTrue(lines.get(0).endsWith(",\"capabilities\":[]}}"), lines.get(0));
        assertEquals("{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"Expecting capabilities negotiation with 'qmp_capabilities'\"}}",
                lines.get(1));
        assertEquals("{\"return\":{}}", lines.get(2));
        assertEquals("{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"Capabilities negotiation is already complete, command ignored\"}}",
                lines.get(3));
        assertTrue(lines.get(4).startsWith("{\"return\":{\"qemu\":") && lines.get(4).endsWith(",\"id\":\"example\"}"), lines.get(4));
        assertEquals("{\"return\":{}}", lines.get(5), "single quotes accepted, as QEMU does");
        assertEquals("{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"The command no-such-command has not been found\"}}",
                lines.get(6));
        assertTrue(lines.get(7).contains("\"node-name\":\"n0\",\"drv\":\"null-co\""), lines.get(7));
        assertEquals("{\"error\":{\"class\":\"GenericError\",\"desc\":\"QMP input must be a JSON object\"}}", lines.get(8));
    }

    /** A raw client that reads lines and keeps events it sees. */
    static final class Client implements AutoCloseable {
        final SocketChannel ch;
        final BufferedReader in;
        final List<String> events = new java.util.ArrayList<>();

        Client(Path sock) throws Exception {
            ch = SocketChannel.open(UnixDomainSocketAddress.of(sock));
            in = new BufferedReader(new InputStreamReader(Channels.newInputStream(ch), StandardCharsets.UTF_8));
            in.readLine();
            assertEquals("{\"return\":{}}", cmd("{\"execute\":\"qmp_capabilities\"}"));
        }

        String cmd(String json) throws Exception {
            ch.write(java.nio.ByteBuffer.wrap((json + "\n").getBytes(StandardCharsets.UTF_8)));
            for (String l = in.readLine(); l != null; l = in.readLine()) {
                if (l.startsWith("{\"event\"")) {
                    events.add(l);
                } else {
                    return l;
                }
            }
            return null;
        }

        String nextEvent() throws Exception {
            if (!events.isEmpty()) {
                return events.remove(0);
            }
            return in.readLine();
        }

        @Override
        public void close() throws Exception {
            ch.close();
        }
    }

    @Test
    void exportsAreAddedAndDeletedLiveSafeRefusesWhileAFrontendIsConnected() throws Exception {
        Path img = image("a.img", 8 << 20);
        Path qmp = start("--blockdev", "driver=file,node-name=disk0,filename=" + img);
        Path sock = dir.resolve("exp1.sock");
        try (Client a = new Client(qmp); Client b = new Client(qmp)) {
            assertTrue(a.cmd("{\"execute\":\"query-commands\"}").contains("{\"name\":\"block-export-add\"}"));
            assertEquals("{\"return\":[]}", a.cmd("{\"execute\":\"query-block-exports\"}"));
            assertEquals("{\"return\":{}}", a.cmd("{\"execute\":\"block-export-add\",\"arguments\":{\"type\":\"vhost-user-blk\","
                    + "\"id\":\"exp1\",\"node-name\":\"disk0\",\"writable\":true,\"num-queues\":2,\"logical-block-size\":4096,"
                    + "\"addr\":{\"type\":\"unix\",\"path\":\"" + sock + "\"}}}"));
            assertTrue(Files.exists(sock), "the new export listens");
            assertEquals("{\"return\":[{\"type\":\"vhost-user-blk\",\"id\":\"exp1\",\"node-name\":\"disk0\",\"shutting-down\":false}]}",
                    b.cmd("{\"execute\":\"query-block-exports\"}"));
            assertEquals("{\"error\":{\"class\":\"GenericError\",\"desc\":\"Block export id 'exp1' is already in use\"}}",
                    a.cmd("{\"execute\":\"block-export-add\",\"arguments\":{\"type\":\"vhost-user-blk\",\"id\":\"exp1\","
                            + "\"node-name\":\"disk0\",\"addr\":{\"type\":\"unix\",\"path\":\"" + sock + "2\"}}}"));
            assertEquals("{\"error\":{\"class\":\"GenericError\",\"desc\":\"Cannot find node 'nope'\"}}",
                    a.cmd("{\"execute\":\"block-export-add\",\"arguments\":{\"type\":\"vhost-user-blk\",\"id\":\"exp2\","
                            + "\"node-name\":\"nope\",\"addr\":{\"type\":\"unix\",\"path\":\"" + sock + "2\"}}}"));
            assertEquals("{\"error\":{\"class\":\"GenericError\",\"desc\":\"Node 'disk0' is busy: block device is in use by block export 'exp1'\"}}",
                    a.cmd("{\"execute\":\"blockdev-del\",\"arguments\":{\"node-name\":\"disk0\"}}"));
            // block_resize grows the image
            assertEquals("{\"return\":{}}", a.cmd("{\"execute\":\"block_resize\",\"arguments\":{\"node-name\":\"disk0\",\"size\":16777216}}"));
            assertEquals(16 << 20, Files.size(img));
            try (SocketChannel frontend = SocketChannel.open(UnixDomainSocketAddress.of(sock))) {
                Thread.sleep(300); // accepted by the export's thread
                assertEquals("{\"error\":{\"class\":\"GenericError\",\"desc\":\"export 'exp1' still in use\"}}",
                        a.cmd("{\"execute\":\"block-export-del\",\"arguments\":{\"id\":\"exp1\"}}"));
                assertEquals("{\"return\":{}}", a.cmd("{\"execute\":\"block-export-del\",\"arguments\":{\"id\":\"exp1\",\"mode\":\"hard\"}}"));
                assertEquals(-1, frontend.read(java.nio.ByteBuffer.allocate(1)), "the frontend was disconnected");
            }
            String evA = a.nextEvent();
            String evB = b.nextEvent();
            for (String ev : List.of(evA, evB)) {
                assertTrue(ev.startsWith("{\"event\":\"BLOCK_EXPORT_DELETED\",\"data\":{\"id\":\"exp1\"},\"timestamp\":{\"seconds\":"), ev);
            }
            assertFalse(Files.exists(sock), "socket removed");
            assertEquals("{\"return\":[]}", b.cmd("{\"execute\":\"query-block-exports\"}"));
            assertEquals("{\"return\":{}}", a.cmd("{\"execute\":\"blockdev-del\",\"arguments\":{\"node-name\":\"disk0\"}}"));
            assertEquals("{\"error\":{\"class\":\"GenericError\",\"desc\":\"Export 'exp1' is not found\"}}",
                    a.cmd("{\"execute\":\"block-export-del\",\"arguments\":{\"id\":\"exp1\"}}"));
            // the image is free again: another writer may lock it
            assertEquals("{\"return\":{}}", a.cmd("{\"execute\":\"blockdev-add\",\"arguments\":{\"driver\":\"file\","
                    + "\"node-name\":\"again\",\"filename\":\"" + img + "\"}}"));
            assertEquals("{\"return\":{}}", a.cmd("{\"execute\":\"quit\"}"));
        }
        assertTrue(daemon.waitFor(10, TimeUnit.SECONDS), "quit ends the daemon");
        assertEquals(0, daemon.exitValue());
        assertFalse(Files.exists(dir.resolve("qmp.sock")), "monitor socket removed");
    }

    @Test
    void aQcow2NodeIsAddedGrownAndDeletedWithItsImplicitFileNode() throws Exception {
        Path img = dir.resolve("q.qcow2");
        Process create = new ProcessBuilder("qemu-img", "create", "-q", "-f", "qcow2", img.toString(), "8M").start();
        assertEquals(0, create.waitFor());
        Path qmp = start();
        try (Client a = new Client(qmp)) {
            String add = "{\"execute\":\"blockdev-add\",\"arguments\":{\"driver\":\"qcow2\",\"node-name\":\"q0\","
                    + "\"file\":{\"driver\":\"file\",\"filename\":\"" + img + "\"}}}";
            assertEquals("{\"return\":{}}", a.cmd(add));
            assertEquals("{\"return\":{}}", a.cmd("{\"execute\":\"block_resize\",\"arguments\":{\"node-name\":\"q0\",\"size\":33554432}}"));
            assertEquals("{\"return\":{}}", a.cmd("{\"execute\":\"blockdev-del\",\"arguments\":{\"node-name\":\"q0\"}}"));
            assertEquals("{\"return\":{}}", a.cmd(add), "the implicit file node went with it: the image is free again");
            String bad = a.cmd("{\"execute\":\"blockdev-add\",\"arguments\":{\"driver\":\"qcow2\",\"node-name\":\"r0\","
                    + "\"file\":{\"driver\":\"file\",\"filename\":\"" + image("raw.img", 1 << 20) + "\"}}}");
            assertEquals("{\"error\":{\"class\":\"GenericError\",\"desc\":\"Could not open node 'r0': image is not in qcow2 format\"}}", bad);
            assertEquals("{\"return\":{}}", a.cmd("{\"execute\":\"quit\"}"));
        }
        assertTrue(daemon.waitFor(10, TimeUnit.SECONDS));
        Process info = new ProcessBuilder("qemu-img", "info", img.toString()).redirectErrorStream(true).start();
        String out = new String(info.getInputStream().readAllBytes());
        assertTrue(out.contains("virtual size: 32 MiB"), out);
    }

    @Test
    void withAQemuGuestAttachedSafeRefusesHardDropsItAndTheEventArrives() throws Exception {
        Guest.requirePrerequisites(7, Guest.QEMU, "/bin/busybox", "/usr/bin/cpio");
        Path img = image("g.img", 64 << 20);
        Path qmp = start("--blockdev", "driver=file,node-name=disk0,filename=" + img);
        Path sock = dir.resolve("guest.sock");
        try (Client c = new Client(qmp)) {
            assertEquals("{\"return\":{}}", c.cmd("{\"execute\":\"block-export-add\",\"arguments\":{\"type\":\"vhost-user-blk\","
                    + "\"id\":\"live\",\"node-name\":\"disk0\",\"writable\":true,"
                    + "\"addr\":{\"type\":\"unix\",\"path\":\"" + sock + "\"}}}"));
            String script = String.join("\n",
                    "i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done",
                    "dd if=/dev/urandom of=/dev/vda bs=4096 count=16 conv=fsync 2>/dev/null; echo \"WRITE rc=$?\"",
                    "echo READY", "sleep 12", "");
            Path results = dir.resolve("results.log");
            Process guest = Guest.start(dir, script, 1, results, 200, List.of("-chardev", "socket,id=vblk0,path=" + sock,
                    "-device", "vhost-user-blk-pci,chardev=vblk0"));
            assertTrue(Guest.awaitLine(results, "READY", 150_000), Files.readString(results));
            String stats = c.cmd("{\"execute\":\"query-vhost-stats\"}");
            System.out.println("query-vhost-stats with the guest attached: " + stats);
            assertTrue(stats.contains("{\"id\":\"live\",\"type\":\"block\",\"connected\":true,"), stats);
            assertTrue(stats.matches(".*\"writes\":[1-9].*"), "the guest's writes counted: " + stats);
            assertTrue(stats.matches(".*\"requests\":[1-9].*"), stats);
            assertEquals("{\"error\":{\"class\":\"GenericError\",\"desc\":\"export 'live' still in use\"}}",
                    c.cmd("{\"execute\":\"block-export-del\",\"arguments\":{\"id\":\"live\"}}"));
            assertEquals("{\"return\":{}}", c.cmd("{\"execute\":\"block-export-del\",\"arguments\":{\"id\":\"live\",\"mode\":\"hard\"}}"));
            String ev = c.nextEvent();
            assertTrue(ev.startsWith("{\"event\":\"BLOCK_EXPORT_DELETED\",\"data\":{\"id\":\"live\"}"), ev);
            assertEquals("{\"return\":[]}", c.cmd("{\"execute\":\"query-block-exports\"}"));
            String out = Guest.finish(guest, dir, 220);
            assertTrue(out.contains("WRITE rc=0"), out);
        }
    }

    @Test
    void badMonitorOptionsAreOneLineErrors() throws Exception {
        Appliance.Result r = Appliance.run("--chardev", "socket,id=m,path=" + dir.resolve("q") + ",server=on,wait=on",
                "--monitor", "chardev=m");
        assertEquals(1, r.exit());
        assertEquals(1, r.errLines().size(), r.err());
        assertTrue(r.err().contains("wait=on is not supported; give wait=off"), r.err());
        r = Appliance.run("--chardev", "socket,id=m,path=" + dir.resolve("q") + ",server=on,wait=off", "--monitor", "chardev=x");
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("chardev \"x\" not found"), r.err());
    }
}

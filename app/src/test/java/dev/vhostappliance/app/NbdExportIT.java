package dev.vhostappliance.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The packaged binary's NBD server as qemu-storage-daemon users drive it: {@code --nbd-server} and
 * {@code --export type=nbd} on the command line, the QMP commands (nbd-server-start/-add/-remove/-stop,
 * block-export-add with type nbd), with qemu-img, qemu-io and nbdinfo as the clients.
 */
class NbdExportIT {
    @TempDir
    Path dir;
    private final List<Process> processes = new ArrayList<>();

    @AfterEach
    void stop() {
        for (Process p : processes) {
            p.destroyForcibly();
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private static String run(String... cmd) throws Exception {
        return HostTools.run(cmd);
    }

    private Process daemon(Path log, String... args) throws Exception {
        Process p = Appliance.start(Appliance.command(null, args), log);
        processes.add(p);
        return p;
    }

    private static boolean awaitPort(int port, long millis) throws InterruptedException {
        long deadline = System.currentTimeMillis() + millis;
        while (System.currentTimeMillis() < deadline) {
            try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
                return true;
            } catch (IOException e) {
                Thread.sleep(20);
            }
        }
        return false;
    }

    @Test
    void theCommandLineServesANodeOverNbdAndVhostUserAtOnce() throws Exception {
        Path img = Appliance.image(dir, "disk.img", 32 << 20);
        Path vhost = dir.resolve("vhost.sock");
        Path log = dir.resolve("daemon.log");
        int port = freePort();
        Process d = daemon(log,
                "--blockdev", "driver=file,node-name=disk0,filename=" + img,
                "--nbd-server", "addr.type=inet,addr.host=127.0.0.1,addr.port=" + port + ",max-connections=8",
                "--export", "type=nbd,id=nbd0,node-name=disk0,name=disk,description=the disk,writable=on,allocation-depth=on",
                "--export", "type=vhost-user-blk,id=vu0,node-name=disk0,writable=on,addr.type=unix,addr.path=" + vhost);
        assertTrue(Appliance.awaitFile(vhost, 30_000) && awaitPort(port, 30_000), Files.readString(log));
        String uri = "nbd://127.0.0.1:" + port + "/disk";
        String info = run("nbdinfo", uri);
        assertTrue(info.contains("export-size: 33554432") && info.contains("description: the disk")
                && info.contains("qemu:allocation-depth"), info);
        run("qemu-io", "-f", "raw", "-c", "write -P 0x5a 1M 2M", "-c", "flush", uri);
        byte[] disk = Files.readAllBytes(img);
        assertEquals(0x5a, disk[(1 << 20) + 12345]);
        Path copy = dir.resolve("copy.img");
        Files.write(copy, disk);
        assertTrue(run("qemu-img", "compare", "-f", "raw", "-F", "raw", copy.toString(), uri).contains("identical"));
        String stderr = Files.readString(log);
        assertTrue(stderr.contains("has no TLS: anyone who can connect can read its exports"), "the inet warning: " + stderr);
        d.destroy(); // SIGTERM
        assertTrue(d.waitFor(10, TimeUnit.SECONDS));
        assertEquals(0, d.exitValue(), Files.readString(log));
        assertFalse(awaitPort(port, 200), "the port is closed");
    }

    @Test
    void qmpStartsTheServerAddsListsRemovesAndStopsExports() throws Exception {
        Path img = Appliance.image(dir, "disk.img", 16 << 20);
        Path qmp = dir.resolve("qmp.sock");
        Path nbd = dir.resolve("nbd.sock");
        Path log = dir.resolve("daemon.log");
        daemon(log, "--chardev", "socket,id=mon0,path=" + qmp + ",server=on,wait=off", "--monitor", "chardev=mon0",
                "--blockdev", "driver=file,node-name=disk0,filename=" + img,
                "--blockdev", "driver=null-co,node-name=null0,size=1G,read-zeroes=on");
        assertTrue(Appliance.awaitFile(qmp, 30_000), Files.readString(log));
        try (QmpMonitorIT.Client q = new QmpMonitorIT.Client(qmp)) {
            assertEquals("{\"error\":{\"class\":\"GenericError\",\"desc\":\"NBD server not running\"}}",
                    q.cmd("{\"execute\":\"block-export-add\",\"arguments\":{\"type\":\"nbd\",\"id\":\"e0\",\"node-name\":\"disk0\"}}"));
            assertEquals("{\"return\":{}}", q.cmd("{\"execute\":\"nbd-server-start\",\"arguments\":{\"addr\":{\"type\":\"unix\","
                    + "\"data\":{\"path\":\"" + nbd + "\"}}}}"));
            assertEquals("{\"error\":{\"class\":\"GenericError\",\"desc\":\"NBD server already running\"}}",
                    q.cmd("{\"execute\":\"nbd-server-start\",\"arguments\":{\"addr\":{\"type\":\"unix\",\"data\":{\"path\":\"" + nbd + "2\"}}}}"));
            assertEquals("{\"return\":{}}", q.cmd("{\"execute\":\"block-export-add\",\"arguments\":{\"type\":\"nbd\",\"id\":\"e0\","
                    + "\"node-name\":\"disk0\",\"name\":\"disk\",\"writable\":true}}"));
            assertEquals("{\"return\":{}}", q.cmd("{\"execute\":\"nbd-server-add\",\"arguments\":{\"device\":\"null0\"}}"));
            // a failed add leaves its id free for the next (a vhost-user-blk export used to keep it)
            String addr = ",\"addr\":{\"type\":\"unix\",\"path\":\"" + dir.resolve("vu.sock") + "\"}}}";
            assertEquals("{\"error\":{\"class\":\"GenericError\",\"desc\":\"Cannot find node 'nope'\"}}",
                    q.cmd("{\"execute\":\"block-export-add\",\"arguments\":{\"type\":\"vhost-user-blk\",\"id\":\"e9\","
                            + "\"node-name\":\"nope\"" + addr));
            assertEquals("{\"return\":{}}", q.cmd("{\"execute\":\"block-export-add\",\"arguments\":{\"type\":\"vhost-user-blk\","
                    + "\"id\":\"e9\",\"node-name\":\"null0\"" + addr));
            assertEquals("{\"return\":{}}", q.cmd("{\"execute\":\"block-export-del\",\"arguments\":{\"id\":\"e9\"}}"));
            assertTrue(q.nextEvent().startsWith("{\"event\":\"BLOCK_EXPORT_DELETED\",\"data\":{\"id\":\"e9\"}"));
            assertEquals("{\"error\":{\"class\":\"GenericError\",\"desc\":\"bitmaps: dirty bitmaps are not supported (there are none to export)\"}}",
                    q.cmd("{\"execute\":\"block-export-add\",\"arguments\":{\"type\":\"nbd\",\"id\":\"e2\",\"node-name\":\"null0\","
                            + "\"name\":\"x\",\"bitmaps\":[\"b0\"]}}"));
            assertEquals("{\"return\":[{\"type\":\"nbd\",\"id\":\"e0\",\"node-name\":\"disk0\",\"shutting-down\":false},"
                    + "{\"type\":\"nbd\",\"id\":\"null0\",\"node-name\":\"null0\",\"shutting-down\":false}]}",
                    q.cmd("{\"execute\":\"query-block-exports\"}"));
            String list = run("nbdinfo", "--list", "nbd+unix://?socket=" + nbd);
            assertTrue(list.contains("export=\"disk\"") && list.contains("export=\"null0\""), list);
            // a client that stays connected: qemu-io waiting for commands on its stdin
            Process holder = new ProcessBuilder("qemu-io", "-f", "raw", "nbd+unix:///disk?socket=" + nbd).start();
            processes.add(holder);
            holder.getOutputStream().write("read 0 512\n".getBytes(StandardCharsets.UTF_8));
            holder.getOutputStream().flush();
            String line = new java.io.BufferedReader(new java.io.InputStreamReader(holder.getInputStream())).readLine();
            assertTrue(line != null && line.contains("read 512/512"), "connected and read: " + line);
            String stats = q.cmd("{\"execute\":\"query-vhost-stats\"}");
            assertTrue(stats.contains("{\"id\":\"e0\",\"type\":\"nbd\",\"connected\":true,\"connections\":1,\"reads\":1,"
                    + "\"read-bytes\":512,\"writes\":0"), stats);
            assertEquals("{\"error\":{\"class\":\"GenericError\",\"desc\":\"export 'disk' still in use\"}}",
                    q.cmd("{\"execute\":\"nbd-server-remove\",\"arguments\":{\"name\":\"e0\"}}"));
            assertEquals("{\"return\":{}}", q.cmd("{\"execute\":\"nbd-server-remove\",\"arguments\":{\"name\":\"e0\",\"mode\":\"hard\"}}"));
            assertTrue(q.nextEvent().startsWith("{\"event\":\"BLOCK_EXPORT_DELETED\",\"data\":{\"id\":\"e0\"}"));
            holder.getOutputStream().write("read 0 512\n".getBytes(StandardCharsets.UTF_8));
            holder.getOutputStream().close();
            String after = new String(holder.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertFalse(after.contains("read 512/512"), "the client was disconnected: " + after);
            assertEquals("{\"return\":{}}", q.cmd("{\"execute\":\"nbd-server-stop\"}"));
            assertTrue(q.nextEvent().startsWith("{\"event\":\"BLOCK_EXPORT_DELETED\",\"data\":{\"id\":\"null0\"}"));
            assertEquals("{\"return\":[]}", q.cmd("{\"execute\":\"query-block-exports\"}"));
            assertFalse(Files.exists(nbd), "the server's socket is gone");
            assertEquals("{\"error\":{\"class\":\"GenericError\",\"desc\":\"NBD server not running\"}}",
                    q.cmd("{\"execute\":\"nbd-server-stop\"}"));
            assertEquals("{\"return\":{}}", q.cmd("{\"execute\":\"blockdev-del\",\"arguments\":{\"node-name\":\"disk0\"}}"),
                    "no export holds the node any more");
        }
    }

    /** run --config: the NBD server and its exports from a YAML file, the same graph as the command line's. */
    @Test
    void aConfigFileServesNbdExports() throws Exception {
        Path img = Appliance.image(dir, "disk.img", 16 << 20);
        Path nbd = dir.resolve("nbd.sock");
        Path cfg = dir.resolve("nbd.yaml");
        Files.writeString(cfg, String.join("\n",
                "appliance:",
                "  blockdev:",
                "    disk0: {driver: file, filename: " + img + "}",
                "  nbd-server:",
                "    addr: {type: unix, path: " + nbd + "}",
                "    max-connections: 4",
                "  export:",
                "    n0: {type: nbd, node-name: disk0, name: disk, writable: true}",
                ""));
        Path log = dir.resolve("daemon.log");
        daemon(log, "run", "--config", cfg.toString());
        assertTrue(Appliance.awaitFile(nbd, 30_000), Files.readString(log));
        run("qemu-io", "-f", "raw", "-c", "write -P 0x77 0 64k", "nbd+unix:///disk?socket=" + nbd);
        assertEquals(0x77, Files.readAllBytes(img)[100]);
        Files.writeString(cfg, Files.readString(cfg).replace("type: unix", "type: vsock"));
        Appliance.Result bad = Appliance.run("run", "--config", cfg.toString(), "--check");
        assertEquals(1, bad.exit());
        assertTrue(bad.err().contains("run: appliance.nbd-server: addr.type 'vsock' is not supported"), bad.err());
    }
}

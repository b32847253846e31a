package dev.vhostappliance.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostappliance.libc.UnixSockets;
import dev.vhostappliance.protocol.VhostUserRequest;
import dev.vhostappliance.testing.TestFrontend;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code vhost-appliance run --config FILE}: many devices of every type from one YAML or properties file, the
 * whole file validated first (every error listed, nothing started), socket modes applied, devices added and
 * removed live through the QMP monitor while the others keep answering.
 */
class ConfigRunIT {
    @TempDir
    Path dir;

    private Path image(String name) throws Exception {
        return Appliance.image(dir, name, 16 << 20);
    }

    /** GET_QUEUE_NUM over the device's vhost-user socket: it answers (and how many queues it has). */
    static long queues(Path sock) throws Exception {
        int fd = UnixSockets.connect(sock.toString());
        assertTrue(fd >= 0, "connect " + sock);
        try (TestFrontend fe = TestFrontend.attach(fd)) {
            return fe.getU64(VhostUserRequest.GET_QUEUE_NUM);
        }
    }

    /** Runs a query until no device reports a connected frontend (at most 5 s); returns the last answer. */
    static String untilNoFrontend(Qmp qmp, String command) throws Exception {
        String r = qmp.execute("{\"execute\":\"" + command + "\"}");
        for (int i = 0; i < 50 && r.contains("\"connected\":true"); i++) {
            Thread.sleep(100);
            r = qmp.execute("{\"execute\":\"" + command + "\"}");
        }
        return r;
    }

    @Test
    void everyErrorOfTheFileIsListedOneLineEachAndNothingStarts() throws Exception {
        Path img = image("d.img");
        Path cfg = dir.resolve("bad.properties");
        Files.writeString(cfg, String.join("\n",
                "appliance.devices.disk0.type=block",
                "appliance.devices.disk0.socket-path=" + dir.resolve("a.sock"),
                "appliance.devices.disk0.blk-file=" + dir.resolve("missing.img"),
                "appliance.devices.disk1.type=block",
                "appliance.devices.disk1.socket-path=" + dir.resolve("b.sock"),
                "appliance.devices.disk1.blk-file=" + img,
                "appliance.devices.disk1.num-queues=0",
                "appliance.devices.kbd.type=input",
                "appliance.devices.kbd.socket-path=" + dir.resolve("k.sock"),
                "appliance.devices.kbd.frobnicate=1",
                "appliance.devices.tape.type=tape",
                "appliance.devices.gpu.type=gpu",
                "appliance.devices.gpu.socket-path=" + dir.resolve("g.sock"),
                "appliance.devices.gpu.virgl=maybe",
                "appliance.devices.nosock.type=gpu",
                "appliance.monitr.socket-path=x",
                "appliance.sockets.mode=999", ""));
        Appliance.Result r = Appliance.run("run", "--config", cfg.toString());
        assertEquals(1, r.exit(), r.err());
        assertEquals(List.of(
                "run: appliance.monitr.socket-path: unknown key",
                "run: appliance.sockets.mode: '999' is not an octal mode such as 0660",
                "run: appliance.devices.disk0: Could not open '" + dir.resolve("missing.img") + "': ENOENT (no such file or directory)",
                "run: appliance.devices.disk1: --num-queues must be between 1 and 1024, is 0",
                "run: appliance.devices.gpu.virgl: expected true or false, not 'maybe'",
                "run: appliance.devices.kbd.frobnicate: not an option of input devices",
                "run: appliance.devices.nosock.socket-path: missing",
                "run: appliance.devices.tape.type: unknown device type 'tape' (block, input or gpu)"), r.errLines());
        try (var files = Files.list(dir)) {
            assertEquals(0, files.filter(p -> p.toString().endsWith(".sock")).count(), "no socket was created");
        }
        Appliance.Result missing = Appliance.run("run", "--config", dir.resolve("nope.yaml").toString());
        assertEquals(1, missing.exit());
        assertEquals(List.of("run: cannot read config file " + dir.resolve("nope.yaml")), missing.errLines());
    }

    @Test
    void yamlSetupServesEveryDeviceAndTheMonitorChangesThemLive() throws Exception {
        Path img = image("d0.img");
        Path img1 = image("d1.img");
        Path cfg = dir.resolve("appliance.yaml");
        Files.writeString(cfg, String.join("\n",
                "appliance:",
                "  sockets:",
                "    mode: \"0660\"",
                "  monitor:",
                "    socket-path: " + dir.resolve("qmp.sock"),
                "  devices:",
                "    disk0:",
                "      type: block",
                "      socket-path: " + dir.resolve("disk0.sock"),
                "      blk-file: " + img,
                "      num-queues: 4",
                "    disk1:",
                "      type: block",
                "      socket-path: " + dir.resolve("disk1.sock"),
                "      blk-file: " + img1,
                "      read-only: true",
                "    kbd:",
                "      type: input",
                "      socket-path: " + dir.resolve("kbd.sock"),
                "      event-socket: " + dir.resolve("kbd-events.sock"),
                "      preset: keyboard,tablet",
                "    screen:",
                "      type: gpu",
                "      socket-path: " + dir.resolve("gpu.sock"), ""));
        Appliance.Result check = Appliance.run("run", "--config", cfg.toString(), "--check");
        assertEquals(0, check.exit(), check.err());
        assertEquals("configuration OK: 4 device(s) from " + cfg, check.out().strip());
        Path log = dir.resolve("run.log");
        Process p = Appliance.start(Appliance.command(null, "run", "--config", cfg.toString()), log);
        try {
            assertTrue(Appliance.awaitFile(dir.resolve("qmp.sock"), 30_000), Files.readString(log));
            assertEquals(4, queues(dir.resolve("disk0.sock")));
            assertEquals(1, queues(dir.resolve("disk1.sock")));
            assertEquals(2, queues(dir.resolve("kbd.sock")));
            assertEquals(2, queues(dir.resolve("gpu.sock")));
            assertEquals("rw-rw----", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve("disk0.sock"))));
            try (Qmp qmp = Qmp.connect(dir.resolve("qmp.sock"), 10_000)) {
                // the queue probes above just hung up: wait until the devices have seen it
                String list = untilNoFrontend(qmp, "query-vhost-devices");
                assertTrue(list.contains("{\"id\":\"disk0\",\"type\":\"block\",\"socket-path\":\"" + dir.resolve("disk0.sock")
                        + "\",\"connected\":false,\"state\":\"listening\"}"), list);
                assertTrue(list.contains("\"id\":\"kbd\"") && list.contains("\"id\":\"screen\""), list);
                assertEquals("{\"return\":{}}", qmp.execute("{\"execute\":\"x-vhost-device-del\",\"arguments\":{\"id\":\"disk0\"}}"));
                assertFalse(Files.exists(dir.resolve("disk0.sock")), "removed device's socket gone");
                assertEquals(2, queues(dir.resolve("kbd.sock")), "the others keep serving");
                assertEquals("{\"error\":{\"class\":\"DeviceNotFound\",\"desc\":\"Device 'disk0' not found\"}}",
                        qmp.execute("{\"execute\":\"x-vhost-device-del\",\"arguments\":{\"id\":\"disk0\"}}"));
                assertEquals("{\"return\":{}}", qmp.execute("{\"execute\":\"x-vhost-device-add\",\"arguments\":{\"id\":\"disk3\","
                        + "\"type\":\"block\",\"options\":{\"socket-path\":\"" + dir.resolve("disk3.sock") + "\",\"blk-file\":\""
                        + img + "\",\"num-queues\":3}}}"));
                assertEquals(3, queues(dir.resolve("disk3.sock")));
                assertEquals("rw-rw----", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve("disk3.sock"))));
                String stats = untilNoFrontend(qmp, "query-vhost-stats");
                assertTrue(stats.contains("{\"id\":\"disk3\",\"type\":\"block\",\"connected\":false,\"device\":{\"reads\":0,"), stats);
                assertTrue(stats.contains("\"device\":{\"events-delivered\":0,"), stats);
                String bad = qmp.execute("{\"execute\":\"x-vhost-device-add\",\"arguments\":{\"id\":\"disk2\",\"type\":\"block\","
                        + "\"options\":{\"socket-path\":\"" + dir.resolve("disk2.sock") + "\",\"blk-file\":\"" + img + "\"}}}");
                assertTrue(bad.startsWith("{\"error\":{\"class\":\"GenericError\",\"desc\":\"appliance.devices.disk2: "), bad);
                assertTrue(bad.contains("lock: image " + img + " is in use"), "the image is in use by disk3: " + bad);
            }
            p.destroy();
            assertTrue(p.waitFor(10, TimeUnit.SECONDS));
            assertEquals(0, p.exitValue(), Files.readString(log));
            for (String s : List.of("disk1.sock", "disk3.sock", "kbd.sock", "gpu.sock", "qmp.sock")) {
                assertFalse(Files.exists(dir.resolve(s)), s + " removed at exit");
            }
        } finally {
            p.destroyForcibly();
        }
    }

    @Test
    void blockNodesAndExportsInTheQemuStorageDaemonShapeServeBesideDevices() throws Exception {
        Path img = image("q.img");
        Path cfg = dir.resolve("qsd.yaml");
        String yaml = String.join("\n",
                "appliance:",
                "  blockdev:",
                "    disk0: {driver: file, filename: " + img + ", cache: {direct: \"on\"}}",
                "    scratch: {driver: null-co, size: 1048576}",
                "  export:",
                "    exp0:",
                "      node-name: disk0",
                "      writable: \"on\"",
                "      num-queues: 2",
                "      addr: {type: unix, path: " + dir.resolve("exp0.sock") + "}",
                "    exp1: {node-name: NODE, addr: {type: unix, path: " + dir.resolve("exp1.sock") + "}}",
                "  devices:",
                "    kbd: {type: input, socket-path: " + dir.resolve("kbd.sock") + ", event-socket: " + dir.resolve("ev.sock") + "}",
                "");
        Files.writeString(cfg, yaml.replace("NODE", "nope"));
        Appliance.Result bad = Appliance.run("run", "--config", cfg.toString());
        assertEquals(1, bad.exit());
        assertEquals(List.of("run: appliance.export.exp1: Cannot find node 'nope'"), bad.errLines());
        assertFalse(Files.exists(dir.resolve("exp0.sock")), "nothing left behind");
        Files.writeString(cfg, yaml.replace("NODE", "scratch"));
        Path log = dir.resolve("qsd.log");
        Process p = Appliance.start(Appliance.command(null, "run", "--config", cfg.toString()), log);
        try {
            assertTrue(Appliance.awaitFile(dir.resolve("kbd.sock"), 30_000), Files.readString(log));
            assertEquals(2, queues(dir.resolve("exp0.sock")));
            assertEquals(1, queues(dir.resolve("exp1.sock")));
            assertEquals(2, queues(dir.resolve("kbd.sock")));
            p.destroy();
            assertTrue(p.waitFor(10, TimeUnit.SECONDS));
            assertEquals(0, p.exitValue());
            assertFalse(Files.exists(dir.resolve("exp0.sock")));
        } finally {
            p.destroyForcibly();
        }
    }

    @Test
    void aQcow2OverlayAndItsBaseFromAConfigFile() throws Exception {
        Path base = image("base.img");
        Path overlay = dir.resolve("overlay.qcow2");
        Process create = new ProcessBuilder("qemu-img", "create", "-q", "-f", "qcow2", "-b", base.toString(), "-F", "raw",
                overlay.toString()).start();
        assertEquals(0, create.waitFor());
        Path cfg = dir.resolve("qcow2.yaml");
        String yaml = String.join("\n",
                "appliance:",
                "  blockdev:",
                "    base: {driver: file, filename: " + base + ", read-only: \"on\"}",
                "    disk: {driver: qcow2, backing: base, discard: unmap, l2-cache-size: 1M, file: {driver: file, filename: FILE}}",
                "  export:",
                "    exp0: {node-name: disk, writable: \"on\", addr: {type: unix, path: " + dir.resolve("q.sock") + "}}",
                "");
        Files.writeString(cfg, yaml.replace("FILE", image("not-qcow2.img").toString()));
        Appliance.Result bad = Appliance.run("run", "--config", cfg.toString());
        assertEquals(1, bad.exit());
        assertEquals(List.of("run: appliance.blockdev.disk: Could not open node 'disk': image is not in qcow2 format",
                "run: appliance.export.exp0: Cannot find node 'disk'"), bad.errLines());
        Files.writeString(cfg, yaml.replace("FILE", overlay.toString()));
        Path log = dir.resolve("q.log");
        Process p = Appliance.start(Appliance.command(null, "run", "--config", cfg.toString()), log);
        try {
            assertTrue(Appliance.awaitFile(dir.resolve("q.sock"), 30_000), Files.readString(log));
            assertEquals(1, queues(dir.resolve("q.sock")));
            p.destroy();
            assertTrue(p.waitFor(10, TimeUnit.SECONDS));
            assertEquals(0, p.exitValue(), Files.readString(log));
        } finally {
            p.destroyForcibly();
        }
    }
}

package dev.vhostappliance.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** QEMU's "Backend program conventions" (vhost-user.rst), checked on the packaged binary. */
class BackendConventionsIT {
    private static final Map<String, List<String>> CAPABILITIES = Map.of(
            "block", List.of("read-only", "blk-file"),
            "input", List.of("evdev-path", "no-grab"),
            "gpu", gpuCapabilities());

    /** What this host offers: virgl where libvirglrenderer1 is installed, render-node where a render node exists. */
    private static List<String> gpuCapabilities() {
        List<String> caps = new ArrayList<>();
        if (Files.exists(Path.of("/usr/lib/x86_64-linux-gnu/libvirglrenderer.so.1"))) {
            caps.add("virgl");
            if (Files.exists(Path.of("/dev/dri/renderD128"))) {
                caps.add("render-node");
            }
        }
        return caps;
    }

    @TempDir
    Path dir;

    private static void assertCapabilities(String type, String json) throws Exception {
        JsonNode node = new ObjectMapper().readTree(json);
        assertEquals(type, node.get("type").asText());
        List<String> features = new ArrayList<>();
        node.get("features").forEach(f -> features.add(f.asText()));
        assertEquals(CAPABILITIES.get(type), features);
        assertEquals(2, node.size(), "only type and features");
    }

    @ParameterizedTest
    @ValueSource(strings = {"block", "input", "gpu"})
    void printCapabilitiesBySubcommandIgnoresOtherOptions(String type) throws Exception {
        Appliance.Result r = Appliance.run(type, "--print-capabilities", "--socket-path=/nonexistent/x", "--bogus");
        assertEquals(0, r.exit(), r.err());
        assertCapabilities(type, r.out());
        assertEquals("", r.err().strip());
    }

    @ParameterizedTest
    @CsvSource({"vhost-user-blk,block", "vhost-user-input,input", "vhost-user-gpu,gpu"})
    void printCapabilitiesByProgramName(String program, String type) throws Exception {
        Appliance.Result r = Appliance.run(Appliance.command("/usr/libexec/" + program, "--print-capabilities"));
        assertEquals(0, r.exit(), r.err());
        assertCapabilities(type, r.out());
    }

    @Test
    void helpListsTheDevices() throws Exception {
        Appliance.Result r = Appliance.run("--help");
        assertEquals(0, r.exit());
        for (String type : CAPABILITIES.keySet()) {
            assertTrue(r.out().contains("  " + type + " "), "--help lists " + type + ":\n" + r.out());
        }
    }

    @Test
    void socketPathAndFdTogetherIsAUsageError() throws Exception {
        Appliance.Result r = Appliance.run("block", "--socket-path=" + dir.resolve("s"), "--fd=3", "--blk-file=/dev/null");
        assertEquals(2, r.exit());
        assertEquals(1, r.errLines().size(), r.err());
        assertTrue(r.err().contains("mutually exclusive"), r.err());
    }

    @ParameterizedTest
    @ValueSource(strings = {"block", "input", "gpu"})
    void missingSocketIsAUsageError(String type) throws Exception {
        Appliance.Result r = Appliance.run(type);
        assertEquals(2, r.exit());
        assertEquals(1, r.errLines().size(), r.err());
        assertTrue(r.err().contains("--socket-path"), r.err());
    }

    @Test
    void unknownOptionIsAUsageError() throws Exception {
        Appliance.Result r = Appliance.run("block", "--socket-path=" + dir.resolve("s"), "--frobnicate");
        assertEquals(2, r.exit());
        assertEquals(1, r.errLines().size(), r.err());
        assertTrue(r.err().contains("--frobnicate"), r.err());
    }

    @Test
    void noDeviceIsAUsageError() throws Exception {
        Appliance.Result r = Appliance.run();
        assertEquals(2, r.exit());
        assertEquals(1, r.errLines().size(), r.err());
    }

    @Test
    void startupFailureIsOneLineAndExitOne() throws Exception {
        Appliance.Result r = Appliance.run("block", "--socket-path=" + dir.resolve("s"), "--blk-file=" + dir.resolve("missing.img"));
        assertEquals(1, r.exit());
        assertEquals(1, r.errLines().size(), r.err());
        assertTrue(r.err().contains("missing.img"), r.err());
        assertFalse(Files.exists(dir.resolve("s")), "no socket left behind");
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "2|one of --evdev-path=PATH or --event-socket=PATH is required|",
        "2|mutually exclusive|--evdev-path=/dev/null --event-socket=EV",
        "1|cannot use /nonexistent/event0: open /nonexistent/event0|--evdev-path=/nonexistent/event0",
        "1|EVIOCGRAB /dev/null (not an evdev device?): ENOTTY|--evdev-path=/dev/null",
        "1|not an evdev device|--evdev-path=/dev/null --no-grab",
        "2|need --event-socket, not --evdev-path|--evdev-path=/dev/null --preset=mouse",
        "2|virtual input device: unknown preset \"joystick\"|--event-socket=EV --preset=joystick",
        "2|virtual input device: axis minimum 9 is above its maximum 1|--event-socket=EV --abs=ABS_X:9:1",
        "2|--event-format must be json or raw, not xml|--event-socket=EV --event-format=xml",
        "2|--no-grab applies to --evdev-path only|--event-socket=EV --no-grab"})
    void inputMisconfigurationIsOneLine(int exit, String message, String options) throws Exception {
        List<String> args = new java.util.ArrayList<>(List.of("input", "--socket-path=" + dir.resolve("i")));
        if (options != null) {
            for (String o : options.split(" ")) {
                args.add(o.replace("EV", dir.resolve("ev.sock").toString()));
            }
        }
        Appliance.Result r = Appliance.run(args.toArray(new String[0]));
        assertEquals(exit, r.exit(), r.err());
        assertEquals(1, r.errLines().size(), r.err());
        assertTrue(r.err().contains(message), r.err());
        assertFalse(Files.exists(dir.resolve("i")), "no socket left behind");
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "--aio must be io_uring, native or threads, is 'posix'|--aio=posix",
        "--aio=native requires --direct|--aio=native",
        "--format must be raw or qcow2, is 'qcow3'|--format=qcow3",
        "Could not open node 'disk': image is not in qcow2 format|--format=qcow2"})
    void blockEngineMisconfigurationIsOneLine(String message, String option) throws Exception {
        Appliance.Result r = Appliance.run("block", "--socket-path=" + dir.resolve("b"), "--blk-file=" + image(), option);
        assertEquals(1, r.exit(), r.err());
        assertEquals(1, r.errLines().size(), r.err());
        assertTrue(r.err().contains(message), r.err());
        assertFalse(Files.exists(dir.resolve("b")), "no socket left behind");
    }

    @Test
    void tooLittleGpuMemoryIsAUsageError() throws Exception {
        Appliance.Result r = Appliance.run("gpu", "--socket-path=" + dir.resolve("g"), "--max-hostmem=4096");
        assertEquals(2, r.exit());
        assertEquals(1, r.errLines().size(), r.err());
        assertTrue(r.err().contains("--max-hostmem must be at least 1 MiB"), r.err());
    }

    /** 3D options that cannot work fail before the socket exists, with one line (the conventions' fail-early). */
    @ParameterizedTest
    @ValueSource(strings = {"--render-node=/dev/dri/renderD128", "--virgl --render-node=/nonexistent/renderD128"})
    void impossibleGpuFeatureFailsAtStartup(String options) throws Exception {
        List<String> args = new java.util.ArrayList<>(List.of("gpu", "--socket-path=" + dir.resolve("g")));
        args.addAll(List.of(options.split(" ")));
        Appliance.Result r = Appliance.run(args.toArray(String[]::new));
        assertEquals(1, r.exit(), r.err());
        assertEquals(1, r.errLines().size(), r.err());
        assertFalse(Files.exists(dir.resolve("g")), "no socket left behind");
    }

    /** --virgl on a host whose EGL cannot be had (no vendor library): exit 1 at start-up, one line, no socket. */
    @Test
    void virglWithoutEglFailsAtStartup() throws Exception {
        assumeVirgl();
        Appliance.Result r = Appliance.run(java.util.Map.of("__EGL_VENDOR_LIBRARY_FILENAMES", "/nonexistent/egl.json"),
                Appliance.command(null, "gpu", "--socket-path=" + dir.resolve("g"), "--virgl"));
        assertEquals(1, r.exit(), r.err());
        assertEquals(1, r.errLines().size(), r.err());
        assertTrue(r.err().contains("--virgl: EGL has no surfaceless display here"), r.err());
        assertFalse(Files.exists(dir.resolve("g")), "no socket left behind");
    }

    /** --virgl here (no /dev/dri): renders in software, listens, ends on SIGTERM with 0. */
    @Test
    void virglStartsSurfacelessWithoutARenderNode() throws Exception {
        assumeVirgl();
        Path sock = dir.resolve("g");
        Path err = dir.resolve("err");
        Process p = Appliance.start(Appliance.command(null, "gpu", "--socket-path=" + sock, "--virgl"), err);
        try {
            assertTrue(Appliance.awaitFile(sock, 30_000), "listening: " + Files.readString(err));
            p.destroy();
            assertTrue(p.waitFor(10, TimeUnit.SECONDS));
            assertEquals(0, p.exitValue(), Files.readString(err));
        } finally {
            p.destroyForcibly();
        }
    }

    /** virgl is advertised where the library loads; render-node only where a render node exists (libvirt 9). */
    @Test
    void gpuCapabilitiesFollowTheHost() throws Exception {
        assumeVirgl();
        Appliance.Result r = Appliance.run("gpu", "--print-capabilities");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("\"virgl\""), r.out());
        assertEquals(Files.exists(Path.of("/dev/dri/renderD128")), r.out().contains("\"render-node\""), r.out());
    }

    private static void assumeVirgl() {
        boolean have = Files.exists(Path.of("/usr/lib/x86_64-linux-gnu/libvirglrenderer.so.1"));
        if ("1".equals(System.getenv("VHOST_E2E_REQUIRED"))) {
            assertTrue(have, "libvirglrenderer1 is needed in CI");
        }
        org.junit.jupiter.api.Assumptions.assumeTrue(have, "libvirglrenderer1 not installed");
    }

    private Path image() throws Exception {
        return image("disk.img");
    }

    private Path image(String name) throws Exception {
        Path img = dir.resolve(name);
        try (var f = new java.io.RandomAccessFile(img.toFile(), "rw")) {
            f.setLength(16 << 20);
        }
        return img;
    }

    @Test
    void sigtermEndsAListeningApplianceWithStatusZeroAndRemovesTheSocket() throws Exception {
        Path sock = dir.resolve("blk.sock");
        Path err = dir.resolve("err");
        Process p = Appliance.start(Appliance.command(null, "block", "--socket-path=" + sock, "--blk-file=" + image()), err);
        assertTrue(Appliance.awaitFile(sock, 30_000), "socket created");
        long t0 = System.nanoTime();
        p.destroy(); // SIGTERM
        assertTrue(p.waitFor(1, TimeUnit.SECONDS), "ended within 1 s of SIGTERM");
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertEquals(0, p.exitValue(), Files.readString(err));
        assertFalse(Files.exists(sock), "socket file removed");
        System.out.println("SIGTERM to exit: " + ms + " ms");
    }

    @Test
    void staleSocketFromAKilledRunDoesNotPreventARestart() throws Exception {
        Path sock = dir.resolve("blk.sock");
        Path img = image();
        Process first = Appliance.start(Appliance.command(null, "block", "--socket-path=" + sock, "--blk-file=" + img), dir.resolve("e1"));
        assertTrue(Appliance.awaitFile(sock, 30_000));
        first.destroyForcibly().waitFor(); // SIGKILL: the socket file stays behind
        assertTrue(Files.exists(sock), "stale socket file left by SIGKILL");
        Process second = Appliance.start(Appliance.command(null, "block", "--socket-path=" + sock, "--blk-file=" + img), dir.resolve("e2"));
        try {
            Thread.sleep(300);
            long deadline = System.currentTimeMillis() + 30_000;
            while (second.isAlive() && !Files.readString(dir.resolve("e2")).contains("stale") && System.currentTimeMillis() < deadline) {
                Thread.sleep(20);
            }
            assertTrue(second.isAlive(), "restart over the stale socket: " + Files.readString(dir.resolve("e2")));
            // ...and a third instance on the now live socket is refused (image lock or live socket).
            Appliance.Result third = Appliance.run("block", "--socket-path=" + sock, "--blk-file=" + image("disk2.img"));
            assertEquals(1, third.exit());
            assertTrue(third.err().contains("in use"), third.err());
        } finally {
            second.destroy();
            second.waitFor(5, TimeUnit.SECONDS);
        }
    }

    /** python3 plays libvirt: it creates the socket and passes it as an inherited fd. */
    private static String python() {
        for (String p : new String[] {"/usr/bin/python3", "/usr/local/bin/python3"}) {
            if (Files.isExecutable(Path.of(p))) {
                return p;
            }
        }
        return "python3";
    }

    @Test
    void inheritedListeningSocket() throws Exception {
        Path sock = dir.resolve("l.sock");
        String script = String.join("\n",
                "import socket, subprocess, sys, struct, time",
                "s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)",
                "p = subprocess.Popen(sys.argv[2:] + ['--fd=%d' % s.fileno()], pass_fds=[s.fileno()])",
                "s.close()",
                "c = socket.socket(socket.AF_UNIX); c.settimeout(30)",
                "for i in range(600):",
                "    try:",
                "        c.connect(sys.argv[1]); break",
                "    except OSError: time.sleep(0.05)",
                "c.sendall(struct.pack('<III', 1, 1, 0))",
                "h = c.recv(12); r, f, n = struct.unpack('<III', h); v = c.recv(n)",
                "print('reply', r, f, n)",
                "c.close(); p.terminate(); print('exit', p.wait(timeout=10))");
        List<String> cmd = new ArrayList<>(List.of(python(), "-c", script, sock.toString()));
        cmd.addAll(Appliance.command(null, "block", "--blk-file=" + image()));
        Appliance.Result r = Appliance.run(cmd);
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("reply 1 5 8"), "GET_FEATURES answered over the inherited socket: " + r.out() + r.err());
        assertTrue(r.out().contains("exit 0"), r.out());
    }

    @Test
    void inheritedConnectedSocketEndsTheProcessWhenTheFrontendCloses() throws Exception {
        String script = String.join("\n",
                "import socket, subprocess, sys, struct",
                "a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)",
                "p = subprocess.Popen(sys.argv[1:] + ['--fd=%d' % b.fileno()], pass_fds=[b.fileno()])",
                "b.close(); a.settimeout(30)",
                "a.sendall(struct.pack('<III', 1, 1, 0))",
                "h = a.recv(12); r, f, n = struct.unpack('<III', h); v = a.recv(n)",
                "print('reply', r, f, n)",
                "a.close(); print('exit', p.wait(timeout=10))");
        List<String> cmd = new ArrayList<>(List.of(python(), "-c", script));
        cmd.addAll(Appliance.command(null, "block", "--blk-file=" + image()));
        Appliance.Result r = Appliance.run(cmd);
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("reply 1 5 8"), r.out() + r.err());
        assertTrue(r.out().contains("exit 0"), "exits 0 when its only frontend disconnects: " + r.out());
    }

    @Test
    void fdThatIsNotASocketFailsAtStartup() throws Exception {
        Appliance.Result r = Appliance.run("block", "--fd=0", "--blk-file=" + image());
        assertEquals(1, r.exit());
        assertEquals(1, r.errLines().size(), r.err());
    }
}

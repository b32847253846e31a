package dev.vhostappliance.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;

/**
 * The single-node Ceph cluster of the RBD tests (src/test/ceph/ceph-cluster.sh), one per test JVM: brought up
 * on first use, down when the JVM ends. Without Debian's ceph-mon, ceph-osd and ceph-common the tests using it
 * are skipped, unless VHOST_E2E_REQUIRED=1 (CI), where they fail.
 */
public final class CephCluster {
    private static final Path SCRIPT = projectRoot().resolve("src/test/ceph/ceph-cluster.sh");
    private static CephCluster shared;
    private final Path dir;
    private final String key;

    private CephCluster(Path dir) throws Exception {
        this.dir = dir;
        this.key = run("ceph-authtool", "-p", "-n", "client.admin", dir.resolve("ceph.client.admin.keyring").toString()).strip();
    }

    /** The cluster, brought up now if it is not up yet (~10 s); skips the test when Ceph is not installed. */
    public static synchronized CephCluster shared() throws Exception {
        List<String> missing = new ArrayList<>();
        for (String tool : List.of("/usr/bin/ceph-mon", "/usr/bin/ceph-osd", "/usr/bin/rbd", "/usr/bin/ceph")) {
            if (!Files.isExecutable(Path.of(tool))) {
                missing.add(tool);
            }
        }
        if ("1".equals(System.getenv("VHOST_E2E_REQUIRED"))) {
            Assertions.assertTrue(missing.isEmpty(), "Ceph test prerequisites missing: " + missing);
        }
        Assumptions.assumeTrue(missing.isEmpty(), "Ceph tests skipped, missing " + missing);
        if (shared == null) {
            Path dir = Files.createTempDirectory("ceph-test-");
            run("bash", SCRIPT.toString(), "up", dir.toString());
            shared = new CephCluster(dir);
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                try {
                    run("bash", SCRIPT.toString(), "down", dir.toString());
                } catch (Exception e) {
                    // the JVM is ending: nothing more to do
                }
            }));
        }
        return shared;
    }

    private static Path projectRoot() {
        Path p = Path.of("").toAbsolutePath();
        while (p != null && !Files.exists(p.resolve("src/test/ceph/ceph-cluster.sh"))) {
            p = p.getParent();
        }
        return p == null ? Path.of("") : p;
    }

    public Path conf() {
        return dir.resolve("ceph.conf");
    }

    /** client.admin's key, base64 as Ceph prints it. */
    public String key() {
        return key;
    }

    /** The monitor's address (host and port) as ceph.conf names it. */
    public String[] monitor() throws IOException {
        String line = Files.readAllLines(conf()).stream().filter(l -> l.startsWith("mon host")).findFirst().orElseThrow();
        String addr = line.substring(line.indexOf("v2:") + 3).strip();
        return addr.split(":");
    }

    /** Runs the rbd tool against the cluster; its stdout (fails the test on a non-zero exit). */
    public String rbd(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("rbd", "-c", conf().toString()));
        cmd.addAll(List.of(args));
        return run(cmd.toArray(new String[0]));
    }

    /** A new image of sizeMiB MiB in pool rbd. */
    public void createImage(String name, long sizeMiB) throws Exception {
        rbd("create", "rbd/" + name, "--size", sizeMiB + "M");
    }

    /** The OSD dies (SIGKILL): I/O to the cluster stalls until {@link #startOsd()}. */
    public void killOsd() throws Exception {
        run("bash", SCRIPT.toString(), "kill-osd", dir.toString());
    }

    public void startOsd() throws Exception {
        run("bash", SCRIPT.toString(), "start-osd", dir.toString());
    }

    /** For a test's finally: the OSD runs again, whatever happened. */
    public void startOsdIfStopped() throws Exception {
        if (!Files.exists(dir.resolve("run/osd.0.pid"))) {
            startOsd();
        }
    }

    private static String run(String... cmd) throws Exception {
        Path err = Files.createTempFile("ceph-cmd-", ".err");
        try {
            Process p = new ProcessBuilder(cmd).redirectError(err.toFile()).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            Assertions.assertTrue(p.waitFor(120, TimeUnit.SECONDS), String.join(" ", cmd) + " finished");
            Assertions.assertEquals(0, p.exitValue(), String.join(" ", cmd) + ": " + out + Files.readString(err));
            return out;
        } finally {
            Files.deleteIfExists(err);
        }
    }
}

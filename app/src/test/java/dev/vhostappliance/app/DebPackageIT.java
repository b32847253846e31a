package dev.vhostappliance.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The .deb (src/packaging/deb.sh): dpkg -i, the QEMU program names on PATH, descriptor discovery by the
 * documented rules (src/packaging/find-vhost-user-backend.sh), --print-capabilities through the installed
 * paths, the systemd unit verified, dpkg -r keeping only the config file, dpkg -P leaving nothing. It installs
 * for real, so it runs only as root with VHOST_E2E_REQUIRED=1 (CI) or VHOST_DEB_INSTALL=1.
 */
class DebPackageIT {
    @TempDir
    Path dir;

    record Run(int exit, String out) {
    }

    static Run sh(Map<String, String> env, String... cmd) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().putAll(env);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        assertTrue(p.waitFor(300, TimeUnit.SECONDS));
        return new Run(p.exitValue(), out);
    }

    static String ok(String... cmd) throws Exception {
        Run r = sh(Map.of(), cmd);
        assertEquals(0, r.exit(), String.join(" ", cmd) + ": " + r.out());
        return r.out();
    }

    @Test
    void installDiscoverRemovePurge() throws Exception {
        boolean allowed = "1".equals(System.getenv("VHOST_E2E_REQUIRED")) || "1".equals(System.getenv("VHOST_DEB_INSTALL"));
        Assumptions.assumeTrue(allowed && "root".equals(System.getProperty("user.name")), "installs a package: CI or VHOST_DEB_INSTALL=1, as root");
        Assumptions.assumeTrue(sh(Map.of(), "dpkg", "-s", "vhost-appliance").exit() != 0, "vhost-appliance already installed here");
        String deb = ok("bash", PackagingIT.ROOT.resolve("src/packaging/deb.sh").toString(),
                PackagingIT.ROOT.resolve("app/target/app-image").toString(), dir.toString(), "0.1.0");
        System.out.printf(".deb %s: %.1f MB%n", deb, Files.size(Path.of(deb)) / 1e6);
        assertEquals("vhost-appliance", ok("dpkg-deb", "-f", deb, "Package"));
        try {
            ok("dpkg", "-i", deb);
            assertEquals("{\n  \"type\" : \"block\",\n  \"features\" : [ \"read-only\", \"blk-file\" ]\n}",
                    ok("/usr/bin/vhost-user-blk", "--print-capabilities"));
            assertTrue(ok("/usr/bin/vhost-user-input", "--print-capabilities").contains("\"type\" : \"input\""));
            assertTrue(ok("/opt/vhost-appliance/bin/vhost-user-gpu", "--print-capabilities").contains("\"type\" : \"gpu\""));
            if (Files.isExecutable(Path.of("/usr/bin/systemd-analyze"))) {
                ok("systemd-analyze", "verify", "/lib/systemd/system/vhost-appliance@.service");
            }
            // discovery: ours for block; for gpu QEMU's 50-qemu-gpu.json (if installed) sorts first, until hidden
            String find = PackagingIT.ROOT.resolve("src/packaging/find-vhost-user-backend.sh").toString();
            Path xdg = dir.resolve("xdg");
            Map<String, String> env = Map.of("XDG_CONFIG_HOME", xdg.toString());
            assertEquals("/usr/share/qemu/vhost-user/60-vhost-appliance-block.json /opt/vhost-appliance/bin/vhost-user-blk",
                    sh(env, "bash", find, "block").out());
            Files.createDirectories(xdg.resolve("qemu/vhost-user"));
            Files.writeString(xdg.resolve("qemu/vhost-user/50-qemu-gpu.json"), ""); // an empty file hides QEMU's
            assertEquals("/usr/share/qemu/vhost-user/60-vhost-appliance-gpu.json /opt/vhost-appliance/bin/vhost-user-gpu",
                    sh(env, "bash", find, "gpu").out());
            Files.writeString(xdg.resolve("qemu/vhost-user/60-vhost-appliance-block.json"), "");
            assertEquals(1, sh(env, "bash", find, "block").exit(), "hidden: no block backend left");
            Files.writeString(xdg.resolve("qemu/vhost-user/60-vhost-appliance-block.json"),
                    "{\"type\":\"block\",\"binary\":\"/usr/bin/vhost-user-blk\"}"); // a more specific directory wins
            assertTrue(sh(env, "bash", find, "block").out().endsWith(" /usr/bin/vhost-user-blk"));
            ok("dpkg", "-r", "vhost-appliance");
            assertEquals(List.of("/etc/vhost-appliance/application.yaml"), ok("dpkg-query", "-W", "-f", "${Conffiles}\\n",
                    "vhost-appliance").lines().map(String::strip).filter(l -> !l.isEmpty()).map(l -> l.split(" ")[0]).toList());
            assertTrue(Files.exists(Path.of("/etc/vhost-appliance/application.yaml")), "dpkg -r keeps the config");
            assertFalse(Files.exists(Path.of("/opt/vhost-appliance")), "dpkg -r removes the program");
        } finally {
            sh(Map.of(), "dpkg", "-P", "vhost-appliance");
        }
        for (String p : List.of("/opt/vhost-appliance", "/etc/vhost-appliance", "/usr/bin/vhost-user-blk",
                "/usr/share/qemu/vhost-user/60-vhost-appliance-block.json", "/lib/systemd/system/vhost-appliance@.service")) {
            assertFalse(Files.exists(Path.of(p), java.nio.file.LinkOption.NOFOLLOW_LINKS), "dpkg -P leaves nothing: " + p);
        }
        assertTrue(sh(Map.of(), "dpkg", "-s", "vhost-appliance").exit() != 0, "not installed any more");
    }
}

package dev.vhostappliance.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The app-image (jlink + jpackage), the root launcher script and the JDK discovery of ./mvnw. */
class PackagingIT {
    static final Path APP_IMAGE = Path.of(System.getProperty("appliance.appimage", "target/app-image"));
    static final Path ROOT = Path.of("..").toAbsolutePath().normalize();

    @TempDir
    Path dir;

    /** Runs cmd with no JDK anywhere in the environment: the app-image must bring its own runtime. */
    private static Appliance.Result runWithoutJdk(List<String> cmd) throws Exception {
        Path out = Files.createTempFile("img", ".out");
        Path err = Files.createTempFile("img", ".err");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile());
        Map<String, String> env = pb.environment();
        env.remove("JAVA_HOME");
        env.put("PATH", "/usr/bin:/bin");
        Process p = pb.start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        return new Appliance.Result(p.exitValue(), Files.readString(out), Files.readString(err));
    }

    @Test
    void appImageLaunchersAreTheDevices() throws Exception {
        Path bin = APP_IMAGE.resolve("bin");
        assertTrue(Files.isExecutable(bin.resolve("vhost-appliance")), "launcher built");
        Appliance.Result help = runWithoutJdk(List.of(bin.resolve("vhost-appliance").toString(), "--help"));
        assertEquals(0, help.exit(), help.err());
        assertTrue(help.out().contains("block"), help.out());
        for (String[] p : new String[][] {{"vhost-user-blk", "block"}, {"vhost-user-input", "input"}, {"vhost-user-gpu", "gpu"}}) {
            Appliance.Result r = runWithoutJdk(List.of(bin.resolve(p[0]).toString(), "--print-capabilities"));
            assertEquals(0, r.exit(), r.err());
            assertTrue(r.out().contains("\"type\" : \"" + p[1] + "\""), r.out());
        }
        // A management layer links the launcher somewhere else (e.g. /usr/libexec): it stays that device.
        Path link = dir.resolve("vhost-user-gpu");
        Files.createSymbolicLink(link, bin.resolve("vhost-user-gpu").toAbsolutePath());
        Appliance.Result r = runWithoutJdk(List.of(link.toString(), "--print-capabilities"));
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("\"type\" : \"gpu\""), r.out());
    }

    @Test
    void aJvmThatCannotUseTheAotCacheSaysSoOnStderrNotInTheCapabilities() throws Exception {
        // Options added through JAVA_TOOL_OPTIONS can make a launcher's AOT cache unusable; the JVM's complaint
        // must not land in the JSON libvirt parses from stdout (by default the JVM writes it to stdout).
        Path out = dir.resolve("caps.out");
        Path err = dir.resolve("caps.err");
        ProcessBuilder pb = new ProcessBuilder(APP_IMAGE.resolve("bin/vhost-user-gpu").toString(), "--print-capabilities")
                .redirectOutput(out.toFile()).redirectError(err.toFile());
        pb.environment().put("JAVA_TOOL_OPTIONS", "-XX:+UseCompactObjectHeaders");
        Process p = pb.start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), Files.readString(err));
        String json = Files.readString(out).strip();
        assertTrue(json.startsWith("{") && json.endsWith("}") && json.contains("\"type\" : \"gpu\""), json);
        assertTrue(Files.readString(err).contains("AOT cache"), Files.readString(err));
    }

    @Test
    void appImageEndsWithStatusZeroOnSigterm() throws Exception {
        Path img = dir.resolve("d.img");
        try (var f = new java.io.RandomAccessFile(img.toFile(), "rw")) {
            f.setLength(1 << 20);
        }
        Path sock = dir.resolve("s.sock");
        Process p = new ProcessBuilder(APP_IMAGE.resolve("bin/vhost-user-blk").toString(), "--socket-path=" + sock,
                "--blk-file=" + img).redirectErrorStream(true).redirectOutput(dir.resolve("log").toFile()).start();
        assertTrue(Appliance.awaitFile(sock, 30_000), "listening");
        p.destroy();
        assertTrue(p.waitFor(1, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), Files.readString(dir.resolve("log")));
        assertFalse(Files.exists(sock));
    }

    @Test
    void rootScriptDispatchesOnTheNameItIsInvokedUnder() throws Exception {
        Path link = dir.resolve("vhost-user-input");
        Files.createSymbolicLink(link, ROOT.resolve("vhost-appliance"));
        Appliance.Result r = Appliance.run(List.of(link.toString(), "--print-capabilities"));
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("\"type\" : \"input\""), r.out());
    }

    private Appliance.Result selectJdk(String dirs, String javaHome) throws Exception {
        ProcessBuilder pb = new ProcessBuilder("sh", "-c", ". " + ROOT.resolve(".mvn/jdk.sh") + " && vhost_select_jdk && echo \"$JAVA_HOME\"");
        pb.environment().put("VHOST_JDK_DIRS", dirs);
        if (javaHome == null) {
            pb.environment().remove("JAVA_HOME");
        } else {
            pb.environment().put("JAVA_HOME", javaHome);
        }
        Path out = dir.resolve("o");
        Path err = dir.resolve("e");
        Process p = pb.redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        return new Appliance.Result(p.exitValue(), Files.readString(out), Files.readString(err));
    }

    private Path fakeJdk(String name, String version) throws Exception {
        Path home = dir.resolve(name);
        Files.createDirectories(home.resolve("bin"));
        for (String tool : new String[] {"java", "javac"}) {
            Path t = home.resolve("bin").resolve(tool);
            Files.writeString(t, "#!/bin/sh\nexit 0\n");
            t.toFile().setExecutable(true);
        }
        Files.writeString(home.resolve("release"), "JAVA_VERSION=\"" + version + "\"\n");
        return home;
    }

    @Test
    void mvnwPicksTheNewestJdk25AndIgnoresAnOlderJavaHome() throws Exception {
        Path jdk17 = fakeJdk("jdk-17", "17.0.15");
        Path jdk25 = fakeJdk("jdk-25", "25.0.3");
        Path jdk26 = fakeJdk("jdk-26", "26.0.1");
        Appliance.Result r = selectJdk(jdk17 + " " + jdk25 + " " + jdk26, jdk17.toString());
        assertEquals(0, r.exit(), r.err());
        assertEquals(jdk26.toString(), r.out().strip());
        // A JAVA_HOME that is already new enough is kept.
        r = selectJdk(jdk17 + " " + jdk26, jdk25.toString());
        assertEquals(jdk25.toString(), r.out().strip());
    }

    @Test
    void mvnwWithoutAnyJdk25SaysWhatToInstall() throws Exception {
        Path jdk17 = fakeJdk("jdk-17", "17.0.15");
        Appliance.Result r = selectJdk(jdk17.toString(), jdk17.toString());
        assertEquals(1, r.exit());
        assertEquals(1, r.errLines().size(), r.err());
        assertTrue(r.err().contains("JDK 25"), r.err());
    }
}

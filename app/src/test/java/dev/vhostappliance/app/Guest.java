package dev.vhostappliance.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;

/**
 * The end-to-end guest (src/test/e2e): a Linux guest under real QEMU (TCG) with the appliance's devices.
 * Needs qemu-system-x86, busybox-static, fio, cpio, gcc and apt access for the guest kernel (.ci/run installs
 * them). Without them the tests are skipped, unless VHOST_E2E_REQUIRED=1 (CI), where they fail.
 */
final class Guest {
    static final Path E2E = PackagingIT.ROOT.resolve("src/test/e2e");
    static final String QEMU = "/usr/bin/qemu-system-x86_64";

    private Guest() {
    }

    /** Skips (or, in CI, fails) unless the tools are there and QEMU is at least minQemuMajor. */
    static void requirePrerequisites(int minQemuMajor, String... tools) {
        List<String> missing = new ArrayList<>();
        for (String tool : tools) {
            if (!Files.isExecutable(Path.of(tool))) {
                missing.add(tool);
            }
        }
        int major = qemuMajor();
        if (major < minQemuMajor) {
            missing.add("QEMU >= " + minQemuMajor + " (found " + (major < 0 ? "none" : major) + ")");
        }
        require(missing);
    }

    /** Skips (or, in CI, fails) unless the files (libraries, data) are there. */
    static void requireFiles(String... files) {
        require(java.util.Arrays.stream(files).filter(f -> !Files.isReadable(Path.of(f))).toList());
    }

    private static void require(List<String> missing) {
        if ("1".equals(System.getenv("VHOST_E2E_REQUIRED"))) {
            assertTrue(missing.isEmpty(), "guest test prerequisites missing: " + missing);
        }
        Assumptions.assumeTrue(missing.isEmpty(), "guest tests skipped, missing " + missing);
    }

    static int qemuMajor() {
        try {
            Process p = new ProcessBuilder(QEMU, "--version").redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            p.waitFor();
            Matcher m = Pattern.compile("version (\\d+)\\.").matcher(out);
            return m.find() ? Integer.parseInt(m.group(1)) : -1;
        } catch (IOException | InterruptedException e) {
            return -1;
        }
    }

    /**
     * Starts the guest running script with the given QEMU device arguments; its output goes to results while
     * it runs (a test can wait for a line there) and to the process's stdout at the end.
     */
    static Process start(Path dir, String script, int smp, Path results, int timeoutSeconds, List<String> qemuArgs)
            throws IOException {
        Path guestScript = dir.resolve("run.sh");
        Files.writeString(guestScript, script);
        List<String> cmd = new ArrayList<>(List.of("bash", E2E.resolve("run-guest.sh").toString(), "--smp",
                String.valueOf(smp), "--results", results.toString(), guestScript.toString(), String.valueOf(timeoutSeconds),
                "--"));
        cmd.addAll(qemuArgs);
        return new ProcessBuilder(cmd).redirectError(dir.resolve("guest.err").toFile()).start();
    }

    /** Thread dumps of the appliances this test JVM started and that still run (jcmd of the JDK running them). */
    static String applianceThreads() {
        StringBuilder b = new StringBuilder();
        String jcmd = Path.of(Appliance.JAVA).resolveSibling("jcmd").toString();
        ProcessHandle.current().descendants()
                .filter(p -> p.info().commandLine().orElse("").contains(Appliance.JAR.getFileName().toString()))
                .forEach(p -> {
                    try {
                        Process dump = new ProcessBuilder(jcmd, Long.toString(p.pid()), "Thread.print").redirectErrorStream(true).start();
                        String text = new String(dump.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                        dump.waitFor(30, TimeUnit.SECONDS);
                        b.append("\n==> appliance ").append(p.pid()).append(" threads <==\n").append(text);
                    } catch (IOException | InterruptedException e) {
                        b.append("\n(no thread dump of ").append(p.pid()).append(": ").append(e).append(')');
                    }
                });
        return b.toString();
    }

    /** Waits for the guest to finish; asserts the script ran and returns what it printed. */
    static String finish(Process guest, Path dir, int timeoutSeconds) throws Exception {
        String out = new String(guest.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(guest.waitFor(timeoutSeconds, TimeUnit.SECONDS), "guest finished");
        if (guest.exitValue() != 0) {
            // what the appliance's threads were doing when the guest gave up: a hang is diagnosed from this
            assertEquals(0, guest.exitValue(), "guest ran: " + out + Files.readString(dir.resolve("guest.err"))
                    + applianceThreads());
        }
        System.out.println(out);
        return out;
    }

    /** Waits until the guest has printed a line equal to text. */
    static boolean awaitLine(Path results, String text, long timeoutMillis) throws Exception {
        long deadline = System.currentTimeMillis() + timeoutMillis;
        while (System.currentTimeMillis() < deadline) {
            if (Files.exists(results) && Files.readString(results, StandardCharsets.ISO_8859_1).replace("\r", "")
                    .lines().anyMatch(text::equals)) {
                return true;
            }
            Thread.sleep(100);
        }
        return false;
    }
}

package dev.vhostappliance.block;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/** Programs we did not write, run as the referee of a test (qemu-img, qemu-io, nbdinfo, nbdcopy). */
public final class ExternalTools {
    private ExternalTools() {
    }

    /** True if every named program is in /usr/bin. */
    public static boolean available(String... programs) {
        for (String p : programs) {
            if (!Files.isExecutable(Path.of("/usr/bin", p))) {
                return false;
            }
        }
        return true;
    }

    /** Output and exit status of a command. */
    public record Result(int status, String output) {
    }

    public static Result exec(String... cmd) {
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("timed out: " + String.join(" ", cmd));
            }
            return new Result(p.exitValue(), out);
        } catch (IOException e) {
            throw new AssertionError(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    /** Runs a command that must succeed; its output. */
    public static String run(String... cmd) {
        Result r = exec(cmd);
        assertEquals(0, r.status(), String.join(" ", cmd) + "\n" + r.output());
        return r.output();
    }
}

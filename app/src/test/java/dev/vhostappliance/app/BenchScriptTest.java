package dev.vhostappliance.app;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * The benchmark script's own logic (bench/test_fio_bench.py: how rounds become the table's figures, its argument
 * errors), run with the host's python3 so that ./mvnw verify covers it; the benchmark itself is not a test.
 */
class BenchScriptTest {
    @Test
    void theBenchmarkScriptsUnitTestsPass() throws Exception {
        Path tests = Path.of("..", "bench", "test_fio_bench.py").toAbsolutePath().normalize();
        assertTrue(Files.isRegularFile(tests), tests + " is missing");
        // -B: no __pycache__ left in the source tree
        String out = HostTools.run("python3", "-B", tests.toString(), "-v");
        assertTrue(out.contains("Ran 8 tests") && out.contains("OK"), out);
    }
}

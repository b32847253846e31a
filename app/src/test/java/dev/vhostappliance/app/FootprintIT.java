package dev.vhostappliance.app;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Catches footprint regressions of the tested distribution, not a benchmark (bench/startup.py measures): each
 * app-image launcher must listen within 2 s of exec and sit at or below 64 MiB RSS when idle. The bounds are
 * about twice the measured start-up and 10% above the measured idle RSS (README "Footprint"), so a loaded CI
 * machine does not trip them and a lost AOT cache or a heap that is no longer small does. Also checks that
 * every launcher really maps its AOT cache.
 */
class FootprintIT {
    static final long START_BOUND_MS = 2_000;
    static final long RSS_BOUND_KIB = 64 * 1024;
    /**
     * Idle RSS: the smallest of samples taken 4 to 12 s after listening, every 250 ms (the JIT's start-up scratch
     * memory goes back to the system only every 2 s, see jvm.options; a sample between two trims is not idle).
     */
    static final long IDLE_FROM_MS = 4_000;
    static final long IDLE_TO_MS = 12_000;

    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"vhost-appliance", "vhost-user-blk", "vhost-user-input", "vhost-user-gpu"})
    void anIdleDeviceStartsFastAndStaysSmall(String launcher) throws Exception {
        Path bin = PackagingIT.APP_IMAGE.resolve("bin").resolve(launcher);
        Path sock = dir.resolve("s.sock");
        Path img = Appliance.image(dir, "d.img", 64 << 20);
        List<String> cmd = new ArrayList<>(List.of(bin.toString()));
        switch (launcher) {
            case "vhost-appliance" -> cmd.addAll(List.of("--blockdev", "driver=null-co,node-name=d,size=1073741824",
                    "--export", "type=vhost-user-blk,id=e,node-name=d,addr.type=unix,addr.path=" + sock + ",writable=on"));
            case "vhost-user-blk" -> cmd.addAll(List.of("--socket-path=" + sock, "--blk-file=" + img, "--num-queues=2"));
            case "vhost-user-input" -> cmd.addAll(List.of("--socket-path=" + sock, "--event-socket=" + dir.resolve("ev.sock"),
                    "--preset=keyboard"));
            default -> cmd.add("--socket-path=" + sock);
        }
        Path err = dir.resolve("err.txt");
        long t0 = System.nanoTime();
        Process p = new ProcessBuilder(cmd).redirectError(err.toFile()).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        try {
            while (!Files.exists(sock) && p.isAlive() && System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(30)) {
                Thread.sleep(2);
            }
            long startMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
            assertTrue(Files.exists(sock), launcher + " did not listen: " + Files.readString(err));
            String maps = Files.readString(Path.of("/proc", Long.toString(p.pid()), "maps"));
            assertTrue(maps.contains("/lib/aot/"), launcher + " runs without its AOT cache");
            Thread.sleep(IDLE_FROM_MS);
            long rss = Long.MAX_VALUE;
            for (long t = IDLE_FROM_MS; t <= IDLE_TO_MS; t += 250) {
                rss = Math.min(rss, vmRssKib(p.pid()));
                Thread.sleep(250);
            }
            System.out.printf("footprint: %s listening after %d ms, idle VmRSS %.1f MiB%n", launcher, startMs, rss / 1024.0);
            assertTrue(startMs <= START_BOUND_MS, launcher + " listened after " + startMs + " ms");
            assertTrue(rss <= RSS_BOUND_KIB, launcher + " idle VmRSS " + rss + " KiB");
        } finally {
            p.destroy();
            p.waitFor(10, TimeUnit.SECONDS);
        }
    }

    static long vmRssKib(long pid) throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        throw new AssertionError("no VmRSS for " + pid);
    }
}

package dev.vhostappliance.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The packaged binary's {@code --export type=fuse}: mounted while it runs, unmounted when it ends, by SIGTERM
 * or SIGKILL alike; a mount a killed run left behind is reported in one line.
 */
class FuseExportIT {
    @TempDir
    Path dir;
    private Path image;
    private Path mountpoint;
    private Process daemon;

    @BeforeEach
    void prerequisites() throws Exception {
        boolean possible = Files.exists(Path.of("/dev/fuse")) && "root".equals(System.getProperty("user.name"));
        assertTrue(possible || System.getenv("VHOST_E2E_REQUIRED") == null, "FUSE needs root and /dev/fuse");
        assumeTrue(possible, "FUSE needs root and /dev/fuse");
        image = Appliance.image(dir, "disk.img", 16 << 20);
        mountpoint = Files.createFile(dir.resolve("export.raw"));
    }

    @AfterEach
    void stop() throws Exception {
        if (daemon != null) {
            daemon.destroyForcibly();
        }
        if (mounted()) {
            new ProcessBuilder("umount", "-l", mountpoint.toString()).start().waitFor(10, TimeUnit.SECONDS);
        }
    }

    private boolean mounted() throws Exception {
        return Files.readString(Path.of("/proc/self/mountinfo")).contains(" " + mountpoint + " ");
    }

    private boolean awaitMounted(boolean want, long millis) throws Exception {
        long deadline = System.currentTimeMillis() + millis;
        while (System.currentTimeMillis() < deadline) {
            if (mounted() == want) {
                return true;
            }
            Thread.sleep(20);
        }
        return false;
    }

    private Process start() throws Exception {
        daemon = Appliance.start(Appliance.command(null, "--blockdev", "driver=file,node-name=disk0,filename=" + image,
                "--export", "type=fuse,id=f0,node-name=disk0,mountpoint=" + mountpoint + ",writable=on"), dir.resolve("daemon.log"));
        assertTrue(awaitMounted(true, 30_000), "mounted: " + Files.readString(dir.resolve("daemon.log")));
        return daemon;
    }

    @Test
    void sigtermAndSigkillBothUnmount() throws Exception {
        Process d = start();
        assertEquals(16 << 20, Files.size(mountpoint));
        HostTools.run("dd", "if=/dev/urandom", "of=" + mountpoint, "bs=64k", "count=4", "conv=notrunc,fsync", "status=none");
        d.destroy();
        assertTrue(d.waitFor(10, TimeUnit.SECONDS));
        assertEquals(0, d.exitValue());
        assertFalse(mounted(), "SIGTERM unmounted it");
        assertEquals(0, Files.size(mountpoint), "the plain file is back");
        d = start();
        d.destroyForcibly();
        assertTrue(d.waitFor(10, TimeUnit.SECONDS));
        assertTrue(awaitMounted(false, 10_000), "the watcher unmounted it after SIGKILL");
    }

    @Test
    void aMountLeftByAKilledRunIsReportedInOneLine() throws Exception {
        Process d = start();
        d.descendants().filter(p -> p.info().commandLine().orElse("").contains("umount -l")).forEach(ProcessHandle::destroyForcibly);
        Thread.sleep(200);
        d.destroyForcibly(); // and no watcher: a stale mount stays
        assertTrue(d.waitFor(10, TimeUnit.SECONDS));
        Thread.sleep(300);
        assertTrue(mounted(), "stale mount left");
        Appliance.Result r = Appliance.run("--blockdev", "driver=file,node-name=disk0,filename=" + image,
                "--export", "type=fuse,id=f0,node-name=disk0,mountpoint=" + mountpoint);
        assertEquals(1, r.exit(), r.err());
        assertEquals(1, r.errLines().size(), r.err());
        assertTrue(r.err().contains("is a stale FUSE mount") && r.err().contains("umount -l " + mountpoint), r.err());
    }
}

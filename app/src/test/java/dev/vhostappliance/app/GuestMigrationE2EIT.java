package dev.vhostappliance.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Live migration of a guest whose disk the appliance serves: one process, one image, two exports (source and
 * destination, as qemu-storage-daemon setups do); QEMU migrates the TCG guest to a second QEMU on this machine
 * (bandwidth-limited, so it takes seconds) while fio writes and reads back with crc32c verification. The
 * source's device logs the pages it writes (VHOST_F_LOG_ALL, SET_LOG_BASE); on the destination fio's verify
 * of what was written before, during and after the migration passes.
 */
class GuestMigrationE2EIT {
    @TempDir
    Path dir;

    @BeforeAll
    static void prerequisites() {
        Guest.requirePrerequisites(8, Guest.QEMU, "/usr/bin/fio", "/bin/busybox", "/usr/bin/cpio", "/usr/bin/socat");
    }

    /**
     * dmacheck (src/test/e2e/dmacheck.c) fills a buffer only the device writes (O_DIRECT reads of two regions,
     * alternately, while the migration runs) and checks after the migration that it holds what was read last:
     * only the source device's dirty page log carries that to the destination (a mutant that marks nothing
     * fails here). fio meanwhile writes and reads back with crc32c verification.
     */
    static final String SCRIPT = String.join("\n",
            "i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done",
            "echo none > /sys/block/vda/queue/scheduler",
            "dd if=/dev/urandom of=/dev/vda bs=1M count=16 oflag=direct 2>/dev/null",
            "dd if=/dev/urandom of=/dev/vda bs=1M count=16 seek=64 oflag=direct 2>/dev/null; echo \"WRITE rc=$?\"",
            "F='fio --name=w --filename=/dev/vda --direct=1 --ioengine=libaio --bs=4k --iodepth=16 --size=32m --offset=128m --verify=crc32c --verify_fatal=1'",
            "$F --rw=randwrite --verify_backlog=64 --loops=4 > /tmp/f2 2>&1 &",
            "dmacheck /dev/vda 6 20", // prints MIGRATE: the host starts migrating
            "wait; echo \"DURING rc=$?\"",
            "$F --rw=randwrite --verify_only > /tmp/f4 2>&1; echo \"VERIFY-AFTER rc=$?\"",
            "grep -h 'err=' /tmp/f2 /tmp/f4", "");

    /**
     * Runs {@link #SCRIPT} in a guest on src's socket and migrates it to a QEMU on dst's; asserts the migration
     * completed and every verification on the destination passed. A failure shows the backends' logs too.
     */
    static void migrateAndVerify(Path dir, Path src, Path dst, Path... backendLogs) throws Exception {
        Path script = dir.resolve("run.sh");
        Files.writeString(script, SCRIPT);
        Process p = new ProcessBuilder("bash", Guest.E2E.resolve("migrate-guest.sh").toString(), src.toString(),
                dst.toString(), script.toString(), "400").redirectError(dir.resolve("migrate.err").toFile()).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(420, TimeUnit.SECONDS));
        System.out.println(out);
        StringBuilder logs = new StringBuilder(Files.readString(dir.resolve("migrate.err")));
        for (Path log : backendLogs) {
            logs.append("==> ").append(log).append(" <==\n").append(Files.readString(log));
        }
        assertEquals(0, p.exitValue(), out + logs);
        assertTrue(out.contains("MIGRATION status=completed"), out);
        String after = out.substring(out.indexOf("---- destination ----"));
        assertTrue(after.contains("DURING rc=0"), out);
        assertTrue(after.contains("DMA intact"), "pages the device wrote during the migration arrived: " + out);
        assertTrue(after.contains("VERIFY-AFTER rc=0"), out);
        assertEquals(2, after.lines().filter(l -> l.contains("err= 0")).count(), out);
    }

    @Test
    void aGuestMigratesWithItsDiskAndVerifiesEveryWrite() throws Exception {
        Path img = Appliance.image(dir, "disk.img", 256L << 20);
        Path src = dir.resolve("src.sock");
        Path dst = dir.resolve("dst.sock");
        Path log = dir.resolve("appliance.log");
        Process appliance = Appliance.start(Appliance.command(null,
                "--blockdev", "driver=file,node-name=disk0,filename=" + img,
                "--export", "type=vhost-user-blk,id=src,node-name=disk0,writable=on,addr.type=unix,addr.path=" + src,
                "--export", "type=vhost-user-blk,id=dst,node-name=disk0,writable=on,addr.type=unix,addr.path=" + dst), log);
        try {
            assertTrue(Appliance.awaitFile(dst, 30_000), Files.readString(log));
            migrateAndVerify(dir, src, dst, log);
            String appLog = Files.readString(log);
            assertTrue(appLog.contains("dirty page logging on (live migration)"), "the source device logged: " + appLog);
        } finally {
            appliance.destroyForcibly();
        }
    }
}

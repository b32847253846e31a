package dev.vhostappliance.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.UnixSockets;
import dev.vhostappliance.testing.DriverQueue;
import dev.vhostappliance.testing.DriverQueue.Buf;
import dev.vhostappliance.testing.GuestRam;
import dev.vhostappliance.testing.TestFrontend;
import dev.vhostappliance.virtqueue.VirtioRing;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Resource limits of the packaged appliance: 10,000 full frontend lives (negotiate, share memory, inflight
 * region, start both queues, one read, disconnect) against one block device; open fds, threads and guest
 * memory mappings must come back to where they were, and the resident size must stay bounded.
 */
class ResourceLimitsIT {
    static final int CYCLES = 10_000;
    static final long MIB = 1 << 20;

    @TempDir
    Path dir;

    static long fds(Process p) throws Exception {
        try (var l = Files.list(Path.of("/proc", String.valueOf(p.pid()), "fd"))) {
            return l.count();
        }
    }

    static long threads(Process p) throws Exception {
        try (var l = Files.list(Path.of("/proc", String.valueOf(p.pid()), "task"))) {
            return l.count();
        }
    }

    static long rssKb(Process p) throws Exception {
        return Files.readAllLines(Path.of("/proc", String.valueOf(p.pid()), "status")).stream()
                .filter(l -> l.startsWith("VmRSS:")).mapToLong(l -> Long.parseLong(l.replaceAll("\\D", ""))).findFirst().orElse(-1);
    }

    static long memfdMappings(Process p) throws Exception {
        return Files.readAllLines(Path.of("/proc", String.valueOf(p.pid()), "maps")).stream().filter(l -> l.contains("memfd:")).count();
    }

    private static void life(Path sock, GuestRam ram) throws Exception {
        int fd = UnixSockets.connect(sock.toString());
        assertTrue(fd >= 0);
        try (TestFrontend fe = TestFrontend.attach(fd)) {
            fe.negotiate(VirtioRing.bit(VirtioRing.F_VERSION_1));
            assertEquals(0, fe.setMemTable(ram));
            LibC.close(fe.getInflightFd(2, 16));
            DriverQueue q0 = fe.startQueue(ram, 0, 16);
            DriverQueue q1 = fe.startQueue(ram, 1, 16);
            long hdr = 4 * MIB;
            ram.write(hdr, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putInt(0).putInt(0).putLong(8).array());
            q1.addDirect(new Buf(hdr, 16, false), new Buf(hdr + 4096, 4096, true), new Buf(hdr + 64, 1, true));
            q1.kick();
            assertNotNull(q1.awaitUsed(5000), "the read completed");
            q0.close();
            q1.close();
        }
    }

    @Test
    void tenThousandFrontendLivesLeaveNothingBehind() throws Exception {
        Path img = dir.resolve("disk.img");
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.setLength(16 * MIB);
        }
        Path sock = dir.resolve("blk.sock");
        Process appliance = Appliance.start(Appliance.command(null, "block", "--socket-path=" + sock, "--blk-file=" + img,
                "--num-queues=2"), dir.resolve("appliance.log"));
        try (GuestRam ram = GuestRam.single(16 * MIB)) {
            assertTrue(Appliance.awaitFile(sock, 30_000), Files.readString(dir.resolve("appliance.log")));
            for (int i = 0; i < 200; i++) { // warm-up: JIT, thread pools, first allocations
                life(sock, ram);
            }
            Thread.sleep(500);
            long fds0 = fds(appliance);
            long threads0 = threads(appliance);
            long rss0 = rssKb(appliance);
            long t0 = System.nanoTime();
            for (int i = 0; i < CYCLES; i++) {
                life(sock, ram);
            }
            long seconds = (System.nanoTime() - t0) / 1_000_000_000L;
            Thread.sleep(500);
            long fds1 = fds(appliance);
            long threads1 = threads(appliance);
            long rss1 = rssKb(appliance);
            System.out.printf("%d frontend lives in %d s: fds %d -> %d, threads %d -> %d, RSS %d -> %d KiB, memfd mappings %d%n",
                    CYCLES, seconds, fds0, fds1, threads0, threads1, rss0, rss1, memfdMappings(appliance));
            assertEquals(fds0, fds1, "open fds");
            assertEquals(threads0, threads1, "threads");
            assertEquals(0, memfdMappings(appliance), "guest memory mappings");
            assertTrue(rss1 - rss0 < 64 * 1024, "RSS grew by " + (rss1 - rss0) + " KiB");
            appliance.destroy();
            assertTrue(appliance.waitFor(5, TimeUnit.SECONDS));
            assertEquals(0, appliance.exitValue());
        } finally {
            appliance.destroyForcibly();
        }
    }
}

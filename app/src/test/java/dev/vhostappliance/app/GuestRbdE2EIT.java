package dev.vhostappliance.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostappliance.testing.CephCluster;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Disks in a Ceph cluster ({@link CephCluster}, single node), end to end under real QEMU (TCG): a guest
 * verifies its writes on an RBD image the appliance serves while the OSD is killed and restarted, and sees a
 * resize made with the rbd tool; the image read back with {@code rbd export}, and by a guest through
 * qemu-storage-daemon's rbd driver, holds what the guest wrote; a live migration between two QEMUs, each with
 * its own appliance process serving the image; and what a user gets wrong is one line and exit 1.
 */
class GuestRbdE2EIT {
    static final String QSD = "/usr/bin/qemu-storage-daemon";

    @TempDir
    Path dir;

    @BeforeAll
    static void prerequisites() {
        Guest.requirePrerequisites(8, Guest.QEMU, "/usr/bin/fio", "/bin/busybox", "/usr/bin/cpio", "/usr/bin/socat", QSD);
        Guest.requireFiles("/usr/lib/x86_64-linux-gnu/qemu/block-rbd.so");
    }

    /** The qemu-storage-daemon options serving image (the appliance takes the same). */
    private static List<String> rbdExport(CephCluster c, String image, String exportId, Path sock) {
        return List.of("--object", "secret,id=key0,data=" + c.key() + ",format=base64",
                "--blockdev", "driver=rbd,node-name=disk0,pool=rbd,image=" + image + ",conf=" + c.conf() + ",user=admin,key-secret=key0",
                "--export", "type=vhost-user-blk,id=" + exportId + ",node-name=disk0,writable=on,addr.type=unix,addr.path=" + sock);
    }

    private Process appliance(CephCluster c, String image, String name, Path sock) throws Exception {
        Path log = dir.resolve(name + ".log");
        Process p = Appliance.start(Appliance.command(null, rbdExport(c, image, name, sock).toArray(new String[0])), log);
        assertTrue(Appliance.awaitFile(sock, 60_000), Files.readString(log));
        return p;
    }

    private static final long SUMMED_MIB = 48;

    private static String sumScript(String extra) {
        return String.join("\n",
                "i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done",
                "echo none > /sys/block/vda/queue/scheduler",
                extra,
                "echo \"SUM $(dd if=/dev/vda bs=1M count=" + SUMMED_MIB + " iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)\"",
                "");
    }

    @Test
    void aGuestVerifiesItsWritesThroughAKilledOsdAndEveryReaderSeesThem() throws Exception {
        CephCluster c = CephCluster.shared();
        c.createImage("guest", 128);
        Path sock = dir.resolve("blk.sock");
        Process appliance = appliance(c, "guest", "e2e", sock);
        String out;
        try {
            String work = String.join("\n",
                    "echo \"DEVICE size=$(cat /sys/block/vda/size)\"",
                    "fio --name=v --filename=/dev/vda --direct=1 --ioengine=libaio --rw=randwrite --bs=16k --iodepth=16"
                            + " --size=" + SUMMED_MIB + "m --verify=crc32c --verify_fatal=1 --verify_backlog=256 > /tmp/fio.out 2>&1 &",
                    "sleep 2; echo FIO-RUNNING",
                    "wait $!; echo \"FIO rc=$?\"",
                    "grep -h 'err=' /tmp/fio.out",
                    "s=$(cat /sys/block/vda/size); echo \"SIZE1 $s\"",
                    "i=0; while [ \"$(cat /sys/block/vda/size)\" = \"$s\" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done",
                    "echo \"SIZE2 $(cat /sys/block/vda/size)\"");
            Path results = dir.resolve("results.log");
            Process guest = Guest.start(dir, sumScript(work), 1, results, 400,
                    List.of("-chardev", "socket,id=vblk0,path=" + sock, "-device", "vhost-user-blk-pci,chardev=vblk0"));
            assertTrue(Guest.awaitLine(results, "FIO-RUNNING", 300_000), "fio started: " + Files.readString(results));
            c.killOsd(); // mid-run: the guest's I/O stalls
            Thread.sleep(4000);
            c.startOsd();
            assertTrue(Guest.awaitLine(results, "SIZE1 262144", 300_000), "fio finished: " + Files.readString(results));
            c.rbd("resize", "rbd/guest", "--size", "192M");
            out = Guest.finish(guest, dir, 420);
        } finally {
            c.startOsdIfStopped();
            appliance.destroy();
            assertTrue(appliance.waitFor(10, TimeUnit.SECONDS));
        }
        assertTrue(out.contains("DEVICE size=262144"), out);
        assertTrue(out.contains("FIO rc=0"), out);
        assertEquals(1, out.lines().filter(l -> l.contains("err= 0")).count(), out);
        assertTrue(out.contains("SIZE2 393216"), "the resize reached the guest: " + out);
        String guestSum = line(out, "SUM ");
        // the image as the rbd tool reads it
        Path exported = dir.resolve("guest.raw");
        c.rbd("export", "rbd/guest", exported.toString());
        assertEquals(guestSum, "SUM " + sha256(exported, SUMMED_MIB << 20), "rbd export reads what the guest wrote");
        // and through qemu-storage-daemon's own rbd driver, into another guest
        Path qsdSock = dir.resolve("qsd.sock");
        List<String> qsd = new ArrayList<>(List.of(QSD));
        qsd.addAll(rbdExport(c, "guest", "qsd", qsdSock));
        Process daemon = new ProcessBuilder(qsd).redirectErrorStream(true).redirectOutput(dir.resolve("qsd.log").toFile()).start();
        try {
            assertTrue(Appliance.awaitFile(qsdSock, 60_000), Files.readString(dir.resolve("qsd.log")));
            Path second = dir.resolve("second");
            Files.createDirectories(second);
            Process guest = Guest.start(second, sumScript(""), 1, second.resolve("results.log"), 300,
                    List.of("-chardev", "socket,id=vblk0,path=" + qsdSock, "-device", "vhost-user-blk-pci,chardev=vblk0"));
            String qsdOut = Guest.finish(guest, second, 320);
            assertEquals(guestSum, line(qsdOut, "SUM "), "qemu-storage-daemon serves the same data");
        } finally {
            daemon.destroy();
            daemon.waitFor(10, TimeUnit.SECONDS);
        }
    }

    private static String line(String out, String prefix) {
        return out.lines().filter(l -> l.startsWith(prefix)).findFirst().orElseThrow(() -> new AssertionError("no " + prefix + out));
    }

    private static String sha256(Path file, long bytes) throws Exception {
        MessageDigest d = MessageDigest.getInstance("SHA-256");
        try (var in = Files.newInputStream(file)) {
            byte[] buf = new byte[1 << 20];
            long left = bytes;
            while (left > 0) {
                int n = in.read(buf, 0, (int) Math.min(buf.length, left));
                if (n < 0) {
                    break;
                }
                d.update(buf, 0, n);
                left -= n;
            }
        }
        return HexFormat.of().formatHex(d.digest());
    }

    /**
     * Live migration with the disk on RBD and an appliance on each side (two processes, two cluster clients):
     * the source's writes hold the image's exclusive lock until its QEMU stops the device, the destination's
     * take it over; fio's verify of everything written before, during and after passes on the destination.
     */
    @Test
    void aGuestMigratesBetweenTwoAppliancesServingOneRbdImage() throws Exception {
        CephCluster c = CephCluster.shared();
        c.createImage("migrating", 256);
        Path src = dir.resolve("src.sock");
        Path dst = dir.resolve("dst.sock");
        Process source = appliance(c, "migrating", "src", src);
        Process destination = appliance(c, "migrating", "dst", dst);
        try {
            GuestMigrationE2EIT.migrateAndVerify(dir, src, dst, dir.resolve("src.log"), dir.resolve("dst.log"));
            assertTrue(Files.readString(dir.resolve("src.log")).contains("dirty page logging on (live migration)"));
        } finally {
            source.destroyForcibly();
            destination.destroyForcibly();
        }
    }

    /** Mistakes give one line on stderr and exit 1, within the documented timeouts. */
    @Test
    void whatCannotBeOpenedIsOneLineAndExit1() throws Exception {
        CephCluster c = CephCluster.shared();
        c.createImage("present", 8);
        Path sock = dir.resolve("x.sock");
        String[][] cases = {
            {"image=absent", "cannot open image 'rbd/absent': does not exist"},
            {"image=present,pool=nopool", "cannot open pool 'nopool': does not exist"},
            {"image=present,key-secret=nokey", "No secret with id 'nokey'"},
        };
        for (String[] k : cases) {
            String blockdev = "driver=rbd,node-name=disk0," + (k[0].contains("pool=") ? "" : "pool=rbd,") + k[0]
                    + ",conf=" + c.conf() + ",user=admin";
            Appliance.Result r = Appliance.run("--blockdev", blockdev, "--export",
                    "type=vhost-user-blk,id=e,node-name=disk0,addr.type=unix,addr.path=" + sock);
            assertEquals(1, r.exit(), k[0] + ": " + r.err());
            assertEquals(1, r.err().strip().lines().count(), "one line: " + r.err());
            assertTrue(r.err().contains(k[1]), r.err());
        }
        Appliance.Result wrongKey = Appliance.run("--object", "secret,id=k,data=AQBzTRRnAAAAABAAQ0bQu/PKkA8Ffq0pGOwvqw==,format=base64",
                "--blockdev", "driver=rbd,node-name=disk0,pool=rbd,image=present,conf=" + c.conf() + ",user=admin,key-secret=k",
                "--export", "type=vhost-user-blk,id=e,node-name=disk0,addr.type=unix,addr.path=" + sock);
        assertEquals(1, wrongKey.exit(), wrongKey.err());
        assertEquals(1, wrongKey.err().strip().lines().count(), "one line: " + wrongKey.err());
        assertTrue(wrongKey.err().contains("cannot connect to the Ceph cluster: permission denied"), wrongKey.err());
    }
}

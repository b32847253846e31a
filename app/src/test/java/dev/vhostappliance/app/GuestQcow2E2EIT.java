package dev.vhostappliance.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * qcow2 disks under a real guest (QEMU, TCG), with QEMU's tools as the referee: fio crc32c verify on a
 * fresh thin image and on an overlay over a raw base; afterwards qemu-img check (no errors, no leaks), the
 * guest's own checksum of the whole disk equal to qemu's view of the image, and qemu-img map showing zero
 * clusters where the guest wrote zeroes or discarded. And crash consistency: the appliance SIGKILLed ten times
 * at random moments while the guest writes; after each, qemu-img check finds no corruption and every record
 * the guest saw flushed is in the image.
 */
class GuestQcow2E2EIT {
    static final long SIZE = 128L << 20;
    static final long ZEROES_AT = 100L << 20;
    static final long DISCARD_AT = 112L << 20;

    @TempDir
    Path dir;

    @BeforeAll
    static void prerequisites() {
        Guest.requirePrerequisites(7, Guest.QEMU, "/usr/bin/fio", "/bin/busybox", "/usr/bin/cpio", "/usr/bin/qemu-img",
                "/usr/bin/qemu-io");
    }

    static String run(String... cmd) throws Exception {
        return HostTools.run(cmd);
    }

    static final String WORKLOAD = String.join("\n",
            "i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done",
            "echo \"DEVICE size=$(cat /sys/block/vda/size)\"",
            "echo none > /sys/block/vda/queue/scheduler",
            "fio --name=verify --filename=/dev/vda --direct=1 --ioengine=libaio --rw=randwrite --bsrange=4k-256k"
                    + " --iodepth=16 --numjobs=2 --size=32m --offset_increment=32m --verify=crc32c --verify_fatal=1"
                    + " --group_reporting > /tmp/fio.out 2>&1",
            "echo \"FIO rc=$?\"",
            "grep -E 'err=' /tmp/fio.out | head -n 3",
            "dd if=/dev/urandom of=/dev/vda bs=65536 count=16 seek=" + (ZEROES_AT / 65536) + " conv=fsync 2>/dev/null",
            "blkdiscard.util-linux -z -o " + ZEROES_AT + " -l 1048576 /dev/vda; echo \"ZEROOUT rc=$?\"",
            "blkdiscard.util-linux -o " + DISCARD_AT + " -l 1048576 /dev/vda; echo \"DISCARD rc=$?\"",
            "sync; echo \"SUM $(md5sum < /dev/vda | cut -d' ' -f1)\"",
            "");

    private String boot(Path sock, List<String> applianceArgs) throws Exception {
        Path log = dir.resolve("appliance.log");
        Process appliance = Appliance.start(Appliance.command(null, applianceArgs.toArray(new String[0])), log);
        try {
            assertTrue(Appliance.awaitFile(sock, 30_000), "appliance listening: " + Files.readString(log));
            Process guest = Guest.start(dir, WORKLOAD, 2, dir.resolve("results.log"), 400, List.of("-chardev",
                    "socket,id=vblk0,path=" + sock, "-device", "vhost-user-blk-pci,chardev=vblk0,num-queues=2"));
            String out = Guest.finish(guest, dir, 420);
            appliance.destroy();
            assertTrue(appliance.waitFor(10, TimeUnit.SECONDS));
            assertEquals(0, appliance.exitValue(), Files.readString(log));
            return out;
        } finally {
            appliance.destroyForcibly();
        }
    }

    /** What qemu-img check, the guest's checksum and qemu-img map must say after a clean run. */
    private void checkAfterRun(String out, Path image) throws Exception {
        assertTrue(out.contains("DEVICE size=" + SIZE / 512), out);
        assertTrue(out.contains("FIO rc=0") && out.contains("err= 0"), "fio verify:\n" + out);
        assertTrue(out.contains("ZEROOUT rc=0") && out.contains("DISCARD rc=0"), out);
        String check = run("qemu-img", "check", image.toString());
        System.out.println("qemu-img check " + image.getFileName() + ":\n" + check);
        assertTrue(check.contains("No errors were found") && !check.contains("leaked"), check);

        Matcher sum = Pattern.compile("SUM ([0-9a-f]{32})").matcher(out);
        assertTrue(sum.find(), out);
        Path raw = dir.resolve("view.raw");
        run("qemu-img", "convert", "-O", "raw", image.toString(), raw.toString());
        assertEquals(sum.group(1), md5(raw), "qemu reads the image as the guest read its disk");
        Files.delete(raw);

        String map = run("qemu-img", "map", "--output=json", image.toString());
        assertTrue(zeroWithoutData(map, ZEROES_AT, 1 << 20), "write-zeroes left zero clusters:\n" + map);
        assertTrue(zeroWithoutData(map, DISCARD_AT, 1 << 20), "the discard left no data:\n" + map);
    }

    @Test
    void freshThinQcow2ThroughTheBlockCommand() throws Exception {
        Path img = dir.resolve("disk.qcow2");
        run("qemu-img", "create", "-q", "-f", "qcow2", img.toString(), Long.toString(SIZE));
        Path sock = dir.resolve("blk.sock");
        String out = boot(sock, List.of("block", "--socket-path=" + sock, "--blk-file=" + img, "--format=qcow2",
                "--num-queues=2"));
        checkAfterRun(out, img);
    }

    /**
     * Images qemu-img made in other layouts, filled by qemu-io (or compressed by qemu-img convert -c): the
     * guest reads the whole disk through a read-only export and its checksum is qemu's view of the image.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"compat=0.10,cluster_size=512",
            "cluster_size=2097152,refcount_bits=64", "cluster_size=65536,extended_l2=on", "zstd", "zlib"})
    void theGuestReadsImagesQemuMadeInOtherLayouts(String layout) throws Exception {
        Path img = dir.resolve("made.qcow2");
        long size = 32L << 20;
        if (layout.equals("zstd") || layout.equals("zlib")) {
            Path raw = dir.resolve("plain.raw");
            run("qemu-img", "create", "-q", "-f", "raw", raw.toString(), Long.toString(size));
            run("qemu-io", "-f", "raw", "-c", "write -P 0x5a 0 4M", "-c", "write -P 0x33 9M 3M", "-c", "write -P 0x71 31M 1M",
                    raw.toString());
            run("qemu-img", "convert", "-c", "-O", "qcow2", "-o", "compression_type=" + layout, raw.toString(), img.toString());
        } else {
            run("qemu-img", "create", "-q", "-f", "qcow2", "-o", layout, img.toString(), Long.toString(size));
            run("qemu-io", "-c", "write -P 0x5a 0 4M", "-c", "write -P 0x33 9437696 3M", "-c", "write -z 10M 64k",
                    "-c", "write -P 0x71 31M 1M", img.toString());
        }
        Path raw = dir.resolve("view.raw");
        run("qemu-img", "convert", "-O", "raw", img.toString(), raw.toString());
        String expected = md5(raw);
        Path sock = dir.resolve("ro.sock");
        Path log = dir.resolve("ro.log");
        Process appliance = Appliance.start(Appliance.command(null, "block", "--socket-path=" + sock, "--blk-file=" + img,
                "--format=qcow2", "--read-only"), log);
        try {
            assertTrue(Appliance.awaitFile(sock, 30_000), Files.readString(log));
            Process guest = Guest.start(dir, String.join("\n",
                    "i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done",
                    "echo \"SUM $(md5sum < /dev/vda | cut -d' ' -f1)\"", ""), 1, dir.resolve("results.log"), 200,
                    List.of("-chardev", "socket,id=vblk0,path=" + sock, "-device", "vhost-user-blk-pci,chardev=vblk0"));
            String out = Guest.finish(guest, dir, 220);
            assertTrue(out.contains("SUM " + expected), layout + ": the guest reads what qemu reads (" + expected + "):\n" + out);
        } finally {
            appliance.destroyForcibly();
        }
    }

    @Test
    void qcow2OverlayOnARawBaseThroughTheStorageDaemonCommandLine() throws Exception {
        Path base = dir.resolve("base.raw");
        byte[] bytes = new byte[(int) SIZE];
        new Random(9).nextBytes(bytes);
        Files.write(base, bytes);
        Path overlay = dir.resolve("overlay.qcow2");
        run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=131072", "-b", base.toString(), "-F", "raw",
                overlay.toString());
        Path sock = dir.resolve("qsd.sock");
        String out = boot(sock, List.of(
                "--blockdev", "driver=qcow2,node-name=disk0,discard=unmap,file.driver=file,file.filename=" + overlay,
                "--export", "type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=" + sock
                        + ",writable=on,num-queues=2"));
        checkAfterRun(out, overlay);
        Process cmp = new ProcessBuilder("qemu-img", "compare", "-q", base.toString(), overlay.toString()).start();
        assertTrue(cmp.waitFor(120, TimeUnit.SECONDS));
        assertEquals(1, cmp.exitValue(), "qemu-img compare: the guest's writes went to the overlay");
        byte[] after = Files.readAllBytes(base);
        assertTrue(java.util.Arrays.equals(bytes, after), "the base is never written");
    }

    static final int KILLS = 10;

    /** Records the guest writes, each flushed (dd conv=fsync) before the next: boot k writes indexes k*1000+i. */
    private static String recordWriter(int boot) {
        return String.join("\n",
                "i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done",
                // background load: allocating writes without flushes, metadata piling up in the caches
                "fio --name=load --filename=/dev/vda --direct=1 --ioengine=libaio --rw=randwrite --bs=4k --iodepth=8"
                        + " --offset=64m --size=64m --time_based --runtime=600 > /dev/null 2>&1 &",
                "echo REC-START",
                "i=0; while [ $i -lt 1000 ]; do",
                "  n=$((" + boot + " * 1000 + i))",
                "  printf 'REC %08d' $n > /tmp/r",
                "  dd if=/tmp/r of=/dev/vda bs=4096 seek=$(( (n * 17) % 16384 )) conv=sync,fsync 2>/dev/null || break",
                "  echo \"FLUSHED $n\"",
                "  i=$((i+1))",
                "done",
                "");
    }

    @Test
    void sigkillAtRandomMomentsNeverCorruptsAndKeepsEveryFlushedWrite() throws Exception {
        Path img = dir.resolve("crash.qcow2");
        run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=65536", img.toString(), Long.toString(SIZE));
        Random random = new Random(11);
        List<Integer> flushed = new ArrayList<>();
        int leakingKills = 0;
        for (int boot = 0; boot < KILLS; boot++) {
            Path sock = dir.resolve("crash" + boot + ".sock");
            Path results = dir.resolve("crash-results" + boot + ".log");
            Process appliance = Appliance.start(Appliance.command(null, "block", "--socket-path=" + sock,
                    "--blk-file=" + img, "--format=qcow2", "--num-queues=1"), dir.resolve("crash-appliance" + boot + ".log"));
            Process guest = null;
            try {
                assertTrue(Appliance.awaitFile(sock, 30_000), "appliance listening");
                guest = Guest.start(dir, recordWriter(boot), 1, results, 300, List.of("-chardev", "socket,id=vblk0,path=" + sock,
                        "-device", "vhost-user-blk-pci,chardev=vblk0"));
                assertTrue(Guest.awaitLine(results, "REC-START", 300_000), Files.readString(results));
                Thread.sleep(1000 + random.nextInt(5000));
                appliance.destroyForcibly(); // SIGKILL: no flush, no clean close
                assertTrue(appliance.waitFor(10, TimeUnit.SECONDS));
                Thread.sleep(300); // the last FLUSHED line, if any, reaches the log
            } finally {
                appliance.destroyForcibly();
                if (guest != null) {
                    guest.descendants().forEach(ProcessHandle::destroyForcibly);
                    guest.destroyForcibly();
                    guest.waitFor(10, TimeUnit.SECONDS);
                }
            }
            int last = -1;
            for (String line : Files.readString(results, StandardCharsets.ISO_8859_1).replace("\r", "").lines().toList()) {
                if (line.startsWith("FLUSHED ")) {
                    last = Integer.parseInt(line.substring(8).trim());
                }
            }
            flushed.add(last);
            ProcessBuilder pb = new ProcessBuilder("qemu-img", "check", img.toString()).redirectErrorStream(true);
            Process check = pb.start();
            String checkOut = new String(check.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            check.waitFor();
            // 0: clean; 3: leaked clusters only (allowed after a crash); 2: corruption
            assertTrue(check.exitValue() == 0 || check.exitValue() == 3, "kill " + boot + ": qemu-img check exit "
                    + check.exitValue() + "\n" + checkOut);
            assertFalse(checkOut.contains("ERROR"), checkOut);
            if (check.exitValue() == 3) {
                leakingKills++;
            }
            verifyRecords(img, flushed);
            System.out.println("crash test: kill " + (boot + 1) + " after record " + last + "; qemu-img check exit "
                    + check.exitValue() + " (" + checkOut.lines().filter(l -> l.contains("leaked") || l.contains("No errors"))
                            .findFirst().orElse("").trim() + ")");
        }
        System.out.println("crash test: " + KILLS + " SIGKILLs, " + flushed.stream().mapToInt(i -> i % 1000 + 1).sum()
                + " flushed records all present, " + leakingKills + " kill(s) left leaked clusters, none corruption");
        assertTrue(flushed.stream().filter(i -> i >= 0).count() >= KILLS / 2, "the guest wrote records: " + flushed);
    }

    /** Every record each boot saw flushed reads back from the image as the guest wrote it. */
    private void verifyRecords(Path img, List<Integer> flushed) throws Exception {
        Path raw = dir.resolve("crash-view.raw");
        run("qemu-img", "convert", "-O", "raw", img.toString(), raw.toString());
        try (var f = new java.io.RandomAccessFile(raw.toFile(), "r")) {
            for (int boot = 0; boot < flushed.size(); boot++) {
                for (int n = boot * 1000; n <= flushed.get(boot); n++) {
                    byte[] b = new byte[12];
                    f.seek(((long) n * 17 % 16384) * 4096);
                    f.readFully(b);
                    assertEquals(String.format("REC %08d", n), new String(b, StandardCharsets.US_ASCII),
                            "boot " + boot + " saw record " + n + " flushed");
                }
            }
        }
        Files.delete(raw);
    }

    static boolean zeroWithoutData(String mapJson, long start, long length) {
        // entries like {"start": 0, "length": 65536, "depth": 0, "present": true, "zero": false, "data": true, ...}
        Matcher m = Pattern.compile("\\{[^}]*\"start\": (\\d+), \"length\": (\\d+)[^}]*\"zero\": (true|false), \"data\": (true|false)[^}]*}")
                .matcher(mapJson);
        long covered = 0;
        while (m.find()) {
            long s = Long.parseLong(m.group(1));
            long l = Long.parseLong(m.group(2));
            long from = Math.max(s, start);
            long to = Math.min(s + l, start + length);
            if (from < to) {
                if (!m.group(3).equals("true") || m.group(4).equals("true")) {
                    return false;
                }
                covered += to - from;
            }
        }
        return covered == length;
    }

    static String md5(Path file) throws IOException {
        try {
            MessageDigest md = MessageDigest.getInstance("MD5");
            try (var in = Files.newInputStream(file)) {
                byte[] buf = new byte[1 << 20];
                for (int n; (n = in.read(buf)) > 0;) {
                    md.update(buf, 0, n);
                }
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IOException(e);
        }
    }
}

package dev.vhostappliance.app;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * End to end under real QEMU (TCG): a Linux guest uses the appliance's vhost-user-blk export; the guest
 * verifies what it wrote (fio crc32c) and the host checks the image afterwards. Prerequisites: {@link Guest}.
 */
class GuestBlockE2EIT {
    static final long IMAGE = 128L << 20;
    static final long MARKER_AT = 96L << 20;
    static final long ZEROES_AT = 100L << 20;
    static final String MARKER = "VHOST-APPLIANCE-E2E-MARKER";

    @TempDir
    Path dir;

    @BeforeAll
    static void prerequisites() {
        Guest.requirePrerequisites(7, Guest.QEMU, "/usr/bin/fio", "/bin/busybox", "/usr/bin/cpio", "/usr/sbin/blkdiscard",
                "/usr/bin/gcc");
    }

    record GuestRun(String output, int applianceExit) {
        String line(String prefix) {
            return output.lines().filter(l -> l.startsWith(prefix)).findFirst()
                    .orElseThrow(() -> new AssertionError("no line " + prefix + " in:\n" + output));
        }
    }

    /** Starts the appliance (block command) on a fresh socket, boots the guest with script, stops it (SIGTERM). */
    private GuestRun boot(Path image, int queues, int smp, String script, String... applianceOptions) throws Exception {
        Path sock = dir.resolve("blk.sock");
        List<String> cmd = new java.util.ArrayList<>(List.of("block", "--socket-path=" + sock, "--blk-file=" + image,
                "--num-queues=" + queues));
        cmd.addAll(List.of(applianceOptions));
        return bootWith(sock, queues, smp, script, cmd);
    }

    private GuestRun bootWith(Path sock, int queues, int smp, String script, List<String> applianceArgs) throws Exception {
        Path log = dir.resolve("appliance.log");
        Process appliance = Appliance.start(Appliance.command(null, applianceArgs.toArray(new String[0])), log);
        try {
            assertTrue(Appliance.awaitFile(sock, 30_000), "appliance listening: " + Files.readString(log));
            Process guest = Guest.start(dir, script, smp, dir.resolve("results.log"), 400, List.of("-chardev",
                    "socket,id=vblk0,path=" + sock, "-device", "vhost-user-blk-pci,chardev=vblk0,num-queues=" + queues));
            String out = Guest.finish(guest, dir, 420);
            appliance.destroy();
            assertTrue(appliance.waitFor(5, TimeUnit.SECONDS));
            return new GuestRun(out, appliance.exitValue());
        } finally {
            appliance.destroyForcibly();
        }
    }

    private Path image() throws Exception {
        Path img = dir.resolve("disk.img");
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.setLength(IMAGE);
        }
        return img;
    }

    private static byte[] read(Path img, long offset, int len) throws Exception {
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "r")) {
            byte[] b = new byte[len];
            f.seek(offset);
            f.readFully(b);
            return b;
        }
    }

    private static String guestScript(int fioJobs, int blockSize) {
        return String.join("\n",
                "i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done",
                "echo \"DEVICE size=$(cat /sys/block/vda/size) lbs=$(cat /sys/block/vda/queue/logical_block_size)"
                        + " queues=$(ls /sys/block/vda/mq | wc -l) ro=$(cat /sys/block/vda/ro)\"",
                "echo none > /sys/block/vda/queue/scheduler",
                // random writes then read-verify with crc32c, one region per job (one job per queue)
                "fio --name=verify --filename=/dev/vda --direct=1 --ioengine=libaio --rw=randwrite --bs=" + blockSize
                        + " --iodepth=16 --numjobs=" + fioJobs + " --size=16m --offset_increment=16m --verify=crc32c"
                        + " --verify_fatal=1 --group_reporting > /tmp/fio.out 2>&1",
                "echo \"FIO rc=$?\"",
                "grep -E 'err=' /tmp/fio.out | head -n 3",
                // a marker the host checks, made durable with fsync (a FLUSH with the write cache on)
                "printf '" + MARKER + "' > /tmp/m",
                "dd if=/tmp/m of=/dev/vda bs=4096 seek=" + (MARKER_AT / 4096) + " conv=sync,fsync 2>/dev/null",
                "echo \"MARKER rc=$?\"",
                // random data, then WRITE_ZEROES (BLKZEROOUT) over it: the host must read zeroes
                "dd if=/dev/urandom of=/dev/vda bs=65536 count=16 seek=" + (ZEROES_AT / 65536) + " conv=fsync 2>/dev/null",
                "blkdiscard.util-linux -z -o " + ZEROES_AT + " -l 1048576 /dev/vda",
                "echo \"ZEROOUT rc=$?\"",
                "blkdiscard.util-linux -o " + (112L << 20) + " -l 1048576 /dev/vda",
                "echo \"DISCARD rc=$?\"",
                "");
    }

    /** The default engine, io_uring. */
    @Test
    void oneQueueLogicalBlocks512() throws Exception {
        Path img = image();
        GuestRun run = boot(img, 1, 1, guestScript(1, 4096));
        assertEquals("DEVICE size=" + IMAGE / 512 + " lbs=512 queues=1 ro=0", run.line("DEVICE"));
        checkRun(run, img);
    }

    /** aio=threads: synchronous calls on the queue threads. */
    @Test
    void fourQueuesLogicalBlocks4096() throws Exception {
        Path img = image();
        GuestRun run = boot(img, 4, 4, guestScript(4, 4096), "--logical-block-size=4096", "--aio=threads");
        assertEquals("DEVICE size=" + IMAGE / 512 + " lbs=4096 queues=4 ro=0", run.line("DEVICE"));
        checkRun(run, img);
    }

    private static void checkRun(GuestRun run, Path img) throws Exception {
        assertEquals("FIO rc=0", run.line("FIO"), run.output());
        assertTrue(run.output().contains("err= 0"), "fio verify reported no error:\n" + run.output());
        assertEquals("MARKER rc=0", run.line("MARKER"));
        assertEquals("ZEROOUT rc=0", run.line("ZEROOUT"));
        assertEquals("DISCARD rc=0", run.line("DISCARD"));
        assertTrue(run.output().contains("===E2E-END rc=0==="));
        assertEquals(0, run.applianceExit(), "appliance exit on SIGTERM");
        assertEquals(MARKER, new String(read(img, MARKER_AT, MARKER.length()), StandardCharsets.US_ASCII),
                "the guest's flushed write is in the image");
        assertArrayEquals(new byte[1 << 20], read(img, ZEROES_AT, 1 << 20), "write-zeroes reached the image");
    }

    /** aio=native (Linux AIO) with cache.direct=on, as qemu-storage-daemon requires. */
    @Test
    void storageDaemonCommandLine() throws Exception {
        Path img = image();
        Path sock = dir.resolve("qsd.sock");
        GuestRun run = bootWith(sock, 2, 2, guestScript(2, 4096), List.of(
                "--blockdev", "{\"driver\":\"file\",\"node-name\":\"disk0\",\"filename\":\"" + img + "\",\"discard\":\"unmap\",\"aio\":\"native\",\"cache\":{\"direct\":true}}",
                "--object", "iothread,id=io0",
                "--export", "type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=" + sock
                        + ",writable=on,num-queues=2,iothread=io0",
                "--pidfile", dir.resolve("qsd.pid").toString()));
        assertEquals("DEVICE size=" + IMAGE / 512 + " lbs=512 queues=2 ro=0", run.line("DEVICE"));
        checkRun(run, img);
    }

    @Test
    void readOnlyExportRefusesWritesAndLeavesTheImageAlone() throws Exception {
        Path img = image();
        byte[] before = Files.readAllBytes(img);
        String script = String.join("\n",
                "i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done",
                "echo \"DEVICE ro=$(cat /sys/block/vda/ro)\"",
                "dd if=/dev/zero of=/dev/vda bs=4096 count=1 conv=fsync 2>/dev/null; echo \"WRITE rc=$?\"",
                "dd if=/dev/vda of=/dev/null bs=1048576 count=4 2>/dev/null; echo \"READ rc=$?\"", "");
        GuestRun run = boot(img, 1, 1, script, "--read-only");
        assertEquals("DEVICE ro=1", run.line("DEVICE"));
        assertTrue(!run.line("WRITE").equals("WRITE rc=0"), run.line("WRITE"));
        assertEquals("READ rc=0", run.line("READ"));
        assertArrayEquals(before, Files.readAllBytes(img), "image unchanged");
    }

    /**
     * One node, two exports: the guest writes through vhost-user-blk and fsyncs, the host reads the same node
     * over NBD (qemu-img, its NBD client) and finds the guest's bytes; then the host writes over NBD and the
     * guest, reading with O_DIRECT, sees it.
     */
    @Test
    void aGuestsWritesThroughVhostUserAreWhatNbdClientsReadAndTheOtherWayRound() throws Exception {
        Path img = image();
        Path sock = dir.resolve("qsd.sock");
        Path nbd = dir.resolve("nbd.sock");
        Path log = dir.resolve("appliance.log");
        Path results = dir.resolve("results.log");
        String uri = "nbd+unix:///disk0?socket=" + nbd;
        String script = String.join("\n",
                "i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done",
                "dd if=/dev/urandom of=/tmp/r bs=1048576 count=8 2>/dev/null",
                "dd if=/tmp/r of=/dev/vda bs=1048576 seek=4 conv=fsync 2>/dev/null",
                "rc=$?; echo \"SHA=$(sha256sum /tmp/r | cut -c1-64)\"; echo \"WROTE rc=$rc\"",
                // the host's write over NBD lands at 64 MiB: poll for it, past the guest's page cache
                "i=0; while [ $i -lt 600 ]; do",
                "  dd if=/dev/vda of=/tmp/m bs=4096 skip=16384 count=1 iflag=direct 2>/dev/null",
                "  if grep -q HOST-WROTE-THIS /tmp/m; then echo SEEN; break; fi; sleep 0.1; i=$((i+1)); done",
                "");
        Process appliance = Appliance.start(Appliance.command(null,
                "--blockdev", "driver=file,node-name=disk0,filename=" + img,
                "--nbd-server", "addr.type=unix,addr.path=" + nbd,
                "--export", "type=nbd,id=n0,node-name=disk0,writable=on",
                "--export", "type=vhost-user-blk,id=v0,node-name=disk0,writable=on,addr.type=unix,addr.path=" + sock), log);
        try {
            assertTrue(Appliance.awaitFile(sock, 30_000) && Appliance.awaitFile(nbd, 30_000), Files.readString(log));
            Process guest = Guest.start(dir, script, 1, results, 400, List.of("-chardev", "socket,id=vblk0,path=" + sock,
                    "-device", "vhost-user-blk-pci,chardev=vblk0"));
            assertTrue(Guest.awaitLine(results, "WROTE rc=0", 300_000), "the guest wrote: " + Files.readString(results));
            String wrote = Files.readString(results).replace("\r", "").lines().filter(l -> l.startsWith("SHA="))
                    .findFirst().orElseThrow();
            Path viaNbd = dir.resolve("via-nbd.raw");
            HostTools.run("qemu-img", "convert", "-f", "raw", "-O", "raw", uri, viaNbd.toString());
            byte[] region = java.util.Arrays.copyOfRange(Files.readAllBytes(viaNbd), 4 << 20, 12 << 20);
            String sha = java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(region));
            assertEquals("SHA=" + sha, wrote, "NBD reads what the guest wrote");
            // the image file (copied: the node holds its lock) against the node over NBD, by qemu-img
            Path copy = Files.copy(img, dir.resolve("copy.raw"));
            assertTrue(HostTools.run("qemu-img", "compare", "-f", "raw", "-F", "raw", copy.toString(), uri).contains("identical"));
            HostTools.run("qemu-io", "-f", "raw", "-c", "write -P 0x41 64M 4k", "-c",
                    "write -s " + marker(dir) + " 64M 15", uri);
            String out = Guest.finish(guest, dir, 420);
            assertTrue(out.lines().anyMatch(l -> l.equals("SEEN")), "the guest read the host's NBD write: " + out);
        } finally {
            appliance.destroyForcibly();
        }
    }

    private static Path marker(Path dir) throws Exception {
        Path m = dir.resolve("marker");
        Files.writeString(m, "HOST-WROTE-THIS", StandardCharsets.US_ASCII);
        return m;
    }
}

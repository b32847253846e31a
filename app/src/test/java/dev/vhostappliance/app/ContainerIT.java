package dev.vhostappliance.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The OCI image (src/main/docker): built with podman from scratch plus the app-image, run unprivileged with the
 * sockets and the image on a volume; a QEMU guest verifies fio writes through the block device served from
 * inside the container; SIGTERM (podman stop) ends it with status 0. Then a config-file setup from a mounted
 * /etc/vhost-appliance. Needs podman and runc (crun does not run in our sandbox); skipped without them unless
 * VHOST_E2E_REQUIRED=1.
 */
class ContainerIT {
    static final String TAG = "localhost/vhost-appliance:it";
    static final List<String> RUN = List.of("podman", "run", "--runtime", "runc", "--ulimit", "nofile=4096:4096",
            "--ulimit", "nproc=4096:4096");

    @TempDir
    Path dir;

    @BeforeAll
    static void buildImage() throws Exception {
        boolean tools = Files.isExecutable(Path.of("/usr/bin/podman")) && Files.isExecutable(Path.of("/usr/sbin/runc"));
        if ("1".equals(System.getenv("VHOST_E2E_REQUIRED"))) {
            assertTrue(tools, "podman and runc are required");
        }
        Assumptions.assumeTrue(tools, "container tests skipped: no podman/runc");
        Guest.requirePrerequisites(7, Guest.QEMU, "/usr/bin/fio", "/bin/busybox", "/usr/bin/cpio");
        Process p = new ProcessBuilder("bash", PackagingIT.ROOT.resolve("src/main/docker/build-image.sh").toString(),
                PackagingIT.ROOT.resolve("app/target/app-image").toString(), TAG).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(300, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        String[] idSize = out.strip().split(" ");
        System.out.printf("container image %s: %.1f MB%n", TAG, Long.parseLong(idSize[idSize.length - 1]) / 1e6);
    }

    @AfterAll
    static void removeImage() throws Exception {
        new ProcessBuilder("podman", "rmi", "-f", TAG).redirectErrorStream(true).start().waitFor(60, TimeUnit.SECONDS);
    }

    static String podman(String... args) throws Exception {
        Process p = new ProcessBuilder(args).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), String.join(" ", args) + ": " + out);
        return out;
    }

    private Path volume() throws Exception {
        Path vol = dir.resolve("vol");
        Files.createDirectories(vol);
        Files.setPosixFilePermissions(vol, PosixFilePermissions.fromString("rwxrwxrwx")); // the image runs as uid 10001
        return vol;
    }

    @Test
    void aGuestVerifiesItsWritesThroughTheContainerAndSigtermEndsItCleanly() throws Exception {
        Path vol = volume();
        Path img = vol.resolve("disk.img");
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.setLength(64 << 20);
        }
        Files.setPosixFilePermissions(img, PosixFilePermissions.fromString("rw-rw-rw-"));
        String name = "vhost-appliance-it-" + ProcessHandle.current().pid();
        List<String> cmd = new ArrayList<>(RUN);
        cmd.addAll(List.of("-d", "--name", name, "-v", vol + ":/run/vhost-appliance", TAG, "block",
                "--socket-path=/run/vhost-appliance/disk.sock", "--blk-file=/run/vhost-appliance/disk.img", "--num-queues=2"));
        podman(cmd.toArray(new String[0]));
        try {
            Path sock = vol.resolve("disk.sock");
            assertTrue(Appliance.awaitFile(sock, 60_000), podman("podman", "logs", name));
            assertEquals("10001", podman("stat", "-c", "%u", sock.toString()), "the socket belongs to the image's user");
            String script = String.join("\n",
                    "i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done",
                    "echo \"DEVICE size=$(cat /sys/block/vda/size) queues=$(ls /sys/block/vda/mq | wc -l)\"",
                    "fio --name=v --filename=/dev/vda --direct=1 --ioengine=libaio --rw=randwrite --bs=4k --iodepth=8"
                            + " --numjobs=2 --size=16m --offset_increment=16m --verify=crc32c --verify_fatal=1"
                            + " --group_reporting > /tmp/f 2>&1; echo \"FIO rc=$?\"",
                    "grep -c 'err= 0' /tmp/f", "");
            Process guest = Guest.start(dir, script, 2, dir.resolve("results.log"), 300, List.of("-chardev",
                    "socket,id=vblk0,path=" + sock, "-device", "vhost-user-blk-pci,chardev=vblk0,num-queues=2"));
            String out = Guest.finish(guest, dir, 320);
            assertTrue(out.contains("DEVICE size=131072 queues=2"), out);
            assertTrue(out.contains("FIO rc=0"), out);
            long t0 = System.nanoTime();
            podman("podman", "stop", "-t", "10", name);
            long stopMillis = (System.nanoTime() - t0) / 1_000_000;
            System.out.println("podman stop (SIGTERM) took " + stopMillis + " ms");
            assertEquals("0", podman("podman", "inspect", name, "--format", "{{.State.ExitCode}}"), "exit status on SIGTERM");
            assertFalse(Files.exists(sock), "socket removed on exit");
        } finally {
            new ProcessBuilder("podman", "rm", "-f", name).start().waitFor(30, TimeUnit.SECONDS);
        }
    }

    @Test
    void aMountedConfigFileServesItsDevices() throws Exception {
        Path vol = volume();
        Path etc = dir.resolve("etc");
        Files.createDirectories(etc);
        Files.writeString(etc.resolve("application.properties"), String.join("\n",
                "appliance.devices.kbd.type=input",
                "appliance.devices.kbd.socket-path=/run/vhost-appliance/kbd.sock",
                "appliance.devices.kbd.event-socket=/run/vhost-appliance/kbd-events.sock",
                "appliance.devices.screen.type=gpu",
                "appliance.devices.screen.socket-path=/run/vhost-appliance/gpu.sock", ""));
        String name = "vhost-appliance-cfg-" + ProcessHandle.current().pid();
        List<String> cmd = new ArrayList<>(RUN);
        cmd.addAll(List.of("-d", "--name", name, "-v", vol + ":/run/vhost-appliance", "-v", etc + ":/etc/vhost-appliance:ro",
                TAG, "run"));
        podman(cmd.toArray(new String[0]));
        try {
            assertTrue(Appliance.awaitFile(vol.resolve("gpu.sock"), 60_000), podman("podman", "logs", name));
            assertEquals(2, ConfigRunIT.queues(vol.resolve("kbd.sock")));
            assertEquals(2, ConfigRunIT.queues(vol.resolve("gpu.sock")));
            podman("podman", "stop", "-t", "10", name);
            assertEquals("0", podman("podman", "inspect", name, "--format", "{{.State.ExitCode}}"));
        } finally {
            new ProcessBuilder("podman", "rm", "-f", name).start().waitFor(30, TimeUnit.SECONDS);
        }
    }
}

package dev.vhostappliance.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * End to end under real QEMU 10 (TCG, -display none): the guest paints a test pattern (colour bars and text,
 * src/test/e2e/fbtool.c) into the virtio-gpu framebuffer and moves a hardware cursor; the host takes QMP
 * screendumps and compares them pixel for pixel with the expected images in src/test/resources/gpu/. Those were
 * captured from QEMU's own built-in virtio-gpu-pci running the same guest, and that reference is re-checked here
 * too, so the appliance is compared with QEMU's device, not with itself.
 */
class GuestGpuE2EIT {
    static final String PAINT_SCRIPT = String.join("\n",
            "i=0; while [ ! -e /dev/fb0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done",
            // the text console would draw a blinking cursor over the picture: unbind it from the framebuffer
            "for v in /sys/class/vtconsole/vtcon*; do grep -q 'frame buffer' $v/name && echo 0 > $v/bind; done",
            "fbtool paint",
            "sleep 1",
            "echo SHOT",
            "sleep 4", // the host takes its screendumps meanwhile
            "fbtool cursor 5", "");
    static final String TWO_HEADS = "video=Virtual-2:1280x800e"; // force the second output on

    @TempDir
    Path dir;

    @BeforeAll
    static void prerequisites() {
        Guest.requirePrerequisites(8, Guest.QEMU, "/bin/busybox", "/usr/bin/cpio", "/usr/bin/gcc");
    }

    static BufferedImage resource(String name) throws Exception {
        try (InputStream in = GuestGpuE2EIT.class.getResourceAsStream("/gpu/" + name)) {
            return ImageIO.read(in);
        }
    }

    /** Number of pixels that differ (RGB) between a and b; sizes must match. */
    static long diff(BufferedImage expected, BufferedImage actual) {
        assertEquals(expected.getWidth() + "x" + expected.getHeight(), actual.getWidth() + "x" + actual.getHeight());
        long n = 0;
        for (int y = 0; y < expected.getHeight(); y++) {
            for (int x = 0; x < expected.getWidth(); x++) {
                if ((expected.getRGB(x, y) & 0xffffff) != (actual.getRGB(x, y) & 0xffffff)) {
                    n++;
                }
            }
        }
        return n;
    }

    /** Boots the guest painting the test pattern with the given display device; one screendump per head. */
    private List<BufferedImage> paintAndShoot(List<String> qemuDevice, int heads, String append) throws Exception {
        Screens s = runAndShoot(PAINT_SCRIPT, qemuDevice, heads, append);
        assertTrue(s.out().contains("PAINTED 1280x800"), s.out());
        return s.heads();
    }

    /** What the guest printed and the screendumps taken when it printed SHOT. */
    private record Screens(List<BufferedImage> heads, String out) {
    }

    /** Boots the guest running script with the given display device, takes one screendump per head at SHOT. */
    private Screens runAndShoot(String guestScript, List<String> qemuDevice, int heads, String append) throws Exception {
        Path results = dir.resolve("results.log");
        Path qmpSock = dir.resolve("qmp.sock");
        List<String> args = new ArrayList<>(List.of("bash", Guest.E2E.resolve("run-guest.sh").toString(), "--results",
                results.toString(), "--qmp", qmpSock.toString()));
        if (append != null) {
            args.addAll(List.of("--append", append));
        }
        Path script = dir.resolve("run.sh");
        Files.writeString(script, guestScript);
        args.addAll(List.of(script.toString(), "240", "--"));
        args.addAll(qemuDevice);
        Process guest = new ProcessBuilder(args).redirectError(dir.resolve("guest.err").toFile()).start();
        assertTrue(Guest.awaitLine(results, "SHOT", 200_000), "guest reached SHOT:\n" + Files.readString(results)
                + Files.readString(dir.resolve("guest.err")));
        List<BufferedImage> shots = new ArrayList<>();
        try (Qmp qmp = Qmp.connect(qmpSock, 10_000)) {
            for (int head = 0; head < heads; head++) {
                Path png = dir.resolve("head" + head + ".png");
                String r = qmp.execute("{\"execute\":\"screendump\",\"arguments\":{\"filename\":\"" + png
                        + "\",\"format\":\"png\",\"device\":\"gpu0\",\"head\":" + head + "}}");
                assertTrue(r.contains("\"return\""), r);
                shots.add(ImageIO.read(png.toFile()));
            }
        }
        String out = Guest.finish(guest, dir, 260);
        assertTrue(out.contains("===E2E-END rc=0==="), out);
        return new Screens(shots, out);
    }

    @Test
    void theExpectedImagesAreTheTestPattern() throws Exception {
        BufferedImage e = resource("expected-1280x800.png");
        int[] bars = {0xffffff, 0xffff00, 0x00ffff, 0x00ff00, 0xff00ff, 0xff0000, 0x0000ff, 0x000000};
        for (int i = 0; i < 8; i++) {
            assertEquals(bars[i], e.getRGB(i * 160 + 80, 300) & 0xffffff, "bar " + i);
        }
        assertEquals(0x000000, e.getRGB(16, 616) & 0xffffff, "the V of the text");
        assertEquals(0xffffff, e.getRGB(640, 700) & 0xffffff, "the band under the text");
        BufferedImage h1 = resource("expected-head1-5120x2160.png");
        assertEquals(0, diff(e, h1.getSubimage(0, 0, 1280, 800)), "the second head shows the same picture top-left");
    }

    @Test
    void qemusBuiltInVirtioGpuShowsTheExpectedImage() throws Exception {
        List<BufferedImage> shots = paintAndShoot(List.of("-device", "virtio-gpu-pci,id=gpu0"), 1, null);
        assertEquals(0, diff(resource("expected-1280x800.png"), shots.get(0)), "QEMU's own device, pixels differing");
    }

    /** The appliance serving a gpu on a fresh socket; shoots heads through QEMU's vhost-user-gpu-pci with deviceOptions. */
    private record Shot(List<BufferedImage> heads, Process appliance, Path log) {
    }

    private Shot applianceShots(String deviceOptions, int heads, String append, String... applianceOptions) throws Exception {
        Path sock = dir.resolve("gpu.sock");
        Path log = dir.resolve("appliance.log");
        List<String> args = new java.util.ArrayList<>(List.of("gpu", "--socket-path=" + sock));
        args.addAll(List.of(applianceOptions));
        Process appliance = Appliance.start(Appliance.command(null, args.toArray(String[]::new)), log);
        try {
            assertTrue(Appliance.awaitFile(sock, 30_000), "appliance listening: " + Files.readString(log));
            return new Shot(paintAndShoot(List.of("-chardev", "socket,id=vgpu,path=" + sock, "-device",
                    "vhost-user-gpu-pci,chardev=vgpu,id=gpu0" + deviceOptions), heads, append), appliance, log);
        } catch (Exception | Error e) {
            appliance.destroyForcibly();
            throw e;
        }
    }

    @Test
    void theApplianceShowsExactlyWhatTheGuestPaintedAndTheCursorMoves() throws Exception {
        Shot shot = applianceShots("", 1, null);
        Process appliance = shot.appliance();
        try {
            long differing = diff(resource("expected-1280x800.png"), shot.heads().get(0));
            System.out.println("gpu e2e, one head: " + differing + " of 1024000 pixels differ from QEMU's virtio-gpu-pci");
            assertEquals(0, differing);
            appliance.destroy();
            assertTrue(appliance.waitFor(5, TimeUnit.SECONDS));
            assertEquals(0, appliance.exitValue());
            String stats = Files.readString(shot.log());
            Matcher m = Pattern.compile("(\\d+) cursor updates, (\\d+) cursor moves").matcher(stats);
            assertTrue(m.find(), stats);
            assertTrue(Integer.parseInt(m.group(1)) >= 1, "cursor shape sent: " + m.group());
            assertTrue(Integer.parseInt(m.group(2)) >= 5, "cursor moves sent: " + m.group());
            assertTrue(stats.contains("(0 errors)"), stats);
        } finally {
            appliance.destroyForcibly();
        }
    }

    /**
     * --virgl (software rendering: no render node here): the guest driver sees VIRTIO_GPU_F_VIRGL and its
     * framebuffer's 2D commands run through virglrenderer; the picture is read back to QEMU's display.
     */
    @Test
    void withVirglTheGuestsFramebufferGoesThroughTheRendererAndLooksTheSame() throws Exception {
        Shot shot = applianceShots("", 1, null, "--virgl");
        Process appliance = shot.appliance();
        try {
            long differing = diff(resource("expected-1280x800.png"), shot.heads().get(0));
            System.out.println("gpu e2e, --virgl: " + differing + " of 1024000 pixels differ from QEMU's virtio-gpu-pci");
            assertEquals(0, differing);
            appliance.destroy();
            assertTrue(appliance.waitFor(10, TimeUnit.SECONDS));
            String log = Files.readString(shot.log());
            assertEquals(0, appliance.exitValue(), log);
            Matcher m = Pattern.compile("gpu 3D \\(virgl\\): (\\d+) commands \\((\\d+) errors\\)").matcher(log);
            assertTrue(m.find(), "the renderer served the commands: " + log);
            System.out.println("gpu e2e, --virgl: " + m.group());
            assertTrue(Integer.parseInt(m.group(1)) > 10, m.group());
            assertEquals("0", m.group(2), m.group());
            Matcher c = Pattern.compile("(\\d+) cursor updates, (\\d+) cursor moves").matcher(log);
            assertTrue(c.find(), log);
            System.out.println("gpu e2e, --virgl: " + c.group());
            assertTrue(Integer.parseInt(c.group(1)) >= 1, "cursor shape sent: " + c.group());
        } finally {
            appliance.destroyForcibly();
        }
    }

    /**
     * The guest's 3D program: the host's root comes in read-only over 9p and gltool runs chrooted into it, so the
     * guest's Mesa (its virgl driver, GBM, EGL) is the host's and nothing is copied into the guest image.
     */
    static final String GL_SCRIPT = String.join("\n",
            "mkdir -p /host",
            "mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=524288 host /host || exit 1",
            "for d in dev proc sys; do mount --bind /$d /host/$d; done",
            "for v in /sys/class/vtconsole/vtcon*; do grep -q 'frame buffer' $v/name && echo 0 > $v/bind; done",
            "MESA_SHADER_CACHE_DISABLE=true chroot /host %s 60 6", "");
    static final String[] HOST_MESA = {"/usr/lib/x86_64-linux-gnu/libgbm.so.1", "/usr/lib/x86_64-linux-gnu/libEGL.so.1",
        "/usr/lib/x86_64-linux-gnu/libGLESv2.so.2", "/usr/lib/x86_64-linux-gnu/libEGL_mesa.so.0"};

    /**
     * gltool's picture at (x, y) of the 1280x800 screen, or -1 within 1.5 pixels of the triangle's edges (where
     * the rasteriser decides): red, green, blue and white quadrants, a yellow triangle (320,600) (960,600) (640,200).
     */
    static int glPicture(int x, int y) {
        double px = x + 0.5;
        double py = y + 0.5;
        double[][] v = {{320, 600}, {960, 600}, {640, 200}};
        double inside = Double.MAX_VALUE;
        for (int i = 0; i < 3; i++) {
            double[] a = v[i];
            double[] b = v[(i + 1) % 3];
            double ex = b[0] - a[0];
            double ey = b[1] - a[1];
            // signed distance from the edge a->b, positive on the triangle's side
            inside = Math.min(inside, ((px - a[0]) * ey - (py - a[1]) * ex) / Math.hypot(ex, ey));
        }
        if (Math.abs(inside) < 1.5) {
            return -1;
        }
        if (inside > 0) {
            return 0xffff00;
        }
        return y < 400 ? (x < 640 ? 0xff0000 : 0x00ff00) : (x < 640 ? 0x0000ff : 0xffffff);
    }

    /** src/test/e2e/gl/gltool.c built into dir. */
    static Path compileGltool(Path dir) throws Exception {
        Path gltool = dir.resolve("gltool");
        Process cc = new ProcessBuilder("gcc", "-O2", "-Wall", "-o", gltool.toString(),
                Guest.E2E.resolve("gl/gltool.c").toString(), "-ldl").redirectErrorStream(true).start();
        String ccOut = new String(cc.getInputStream().readAllBytes());
        assertEquals(0, cc.waitFor(), ccOut);
        return gltool;
    }

    /** Asserts that gltool ran on virgl in the guest (GL_RENDERER, frames, glReadPixels); prints renderer and rate. */
    static void assertGlRun(String out, String label) {
        Matcher renderer = Pattern.compile("GL_RENDERER=(.*)").matcher(out);
        assertTrue(renderer.find(), out);
        System.out.println(label + ": GL_RENDERER=" + renderer.group(1));
        assertTrue(renderer.group(1).startsWith("virgl"), "the guest renders through virgl: " + renderer.group(1));
        Matcher frames = Pattern.compile("FRAMES \\d+ in [0-9.]+ s: ([0-9.]+) fps").matcher(out);
        assertTrue(frames.find(), out);
        System.out.println(label + ": " + frames.group());
        for (String probe : List.of("top-left ff0000", "top-right 00ff00", "bottom-left 0000ff", "bottom-right ffffff",
                "centre ffff00")) {
            assertTrue(out.contains("PIXEL " + probe), "glReadPixels in the guest: " + probe + "\n" + out);
        }
    }

    /** Asserts that shot is gltool's 1280x800 picture, pixel for pixel off the triangle's edges; prints the count. */
    static void assertGlPicture(BufferedImage shot, String label, String what) {
        assertEquals("1280x800", shot.getWidth() + "x" + shot.getHeight(), what);
        long compared = 0;
        long differing = 0;
        for (int y = 0; y < 800; y++) {
            for (int x = 0; x < 1280; x++) {
                int want = glPicture(x, y);
                if (want >= 0) {
                    compared++;
                    if ((shot.getRGB(x, y) & 0xffffff) != want) {
                        differing++;
                    }
                }
            }
        }
        System.out.println(label + ": " + differing + " of " + compared
                + " pixels differ from gltool's picture (the rest are on the triangle's edges)");
        assertEquals(0, differing, what);
    }

    /**
     * 3D end to end: a GLES2 program of ours (src/test/e2e/gl/gltool.c, GBM + EGL + KMS page flips) draws with the
     * guest's Mesa virgl driver; the appliance renders with virglrenderer (llvmpipe here, no render node) and QEMU's
     * display gets the picture read back: the screendump must be gltool's picture.
     */
    @Test
    void aGuestGlProgramRendersThroughVirglAndTheScreendumpShowsItsPicture() throws Exception {
        Guest.requirePrerequisites(10, Guest.QEMU, "/usr/bin/gcc");
        Guest.requireFiles(HOST_MESA);
        Path gltool = compileGltool(dir);
        Path sock = dir.resolve("gpu.sock");
        Path log = dir.resolve("appliance.log");
        Process appliance = Appliance.start(Appliance.command(null, "gpu", "--socket-path=" + sock, "--virgl"), log);
        try {
            assertTrue(Appliance.awaitFile(sock, 30_000), "appliance listening: " + Files.readString(log));
            Screens s = runAndShoot(String.format(GL_SCRIPT, gltool), List.of("-chardev", "socket,id=vgpu,path=" + sock,
                    "-device", "vhost-user-gpu-pci,chardev=vgpu,id=gpu0", "-virtfs",
                    "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap"), 1, null);
            assertGlRun(s.out(), "gpu e2e, guest GL");
            assertGlPicture(s.heads().get(0), "gpu e2e, guest GL", "screendump " + dir.resolve("head0.png"));
            appliance.destroy();
            assertTrue(appliance.waitFor(10, TimeUnit.SECONDS));
            String applianceLog = Files.readString(log);
            Matcher m = Pattern.compile("gpu 3D \\(virgl\\): (\\d+) commands \\((\\d+) errors\\)").matcher(applianceLog);
            assertTrue(m.find(), applianceLog);
            System.out.println("gpu e2e, guest GL: " + m.group());
            assertEquals("0", m.group(2), m.group());
        } finally {
            appliance.destroyForcibly();
        }
    }

    @Test
    void twoScanoutsBothShowTheGuestsPicture() throws Exception {
        Shot shot = applianceShots(",max_outputs=2", 2, TWO_HEADS);
        Process appliance = shot.appliance();
        List<BufferedImage> shots = shot.heads();
        try {
            long d0 = diff(resource("expected-1280x800.png"), shots.get(0));
            long d1 = diff(resource("expected-head1-5120x2160.png"), shots.get(1));
            System.out.println("gpu e2e, two heads: " + d0 + " and " + d1 + " pixels differ from QEMU's virtio-gpu-pci");
            assertEquals(0, d0, "head 0");
            assertEquals(0, d1, "head 1");
        } finally {
            appliance.destroy();
            appliance.waitFor(5, TimeUnit.SECONDS);
            appliance.destroyForcibly();
        }
    }
}

package dev.vhostappliance.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.TimeUnit;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * libvirt runs our gpu backend for a domain with 3D acceleration, as a libvirt user installs it: the descriptor
 * we ship (config/vhost-user) is the user's, and a domain with {@code <video><driver name='vhostuser'/><model
 * type='virtio'><acceleration accel3d='yes'/></model></video>} makes libvirt ask the backend for its capabilities
 * and start it with --fd and --virgl (src/test/e2e/libvirt-guest.sh: libvirt in session mode, unprivileged;
 * libvirt refuses accel3d unless the backend's --print-capabilities lists virgl).
 * The guest's GL program then renders through virgl and libvirt's screenshot shows its picture.
 */
class GuestLibvirtGpuE2EIT {
    @TempDir
    Path dir;

    @Test
    void libvirtStartsOurBackendWithVirglForAnAccel3dDomainAndTheGuestRendersThroughIt() throws Exception {
        Guest.requirePrerequisites(10, Guest.QEMU, "/usr/bin/gcc", "/usr/bin/virsh", "/usr/sbin/libvirtd",
                "/usr/sbin/runuser");
        Guest.requireFiles(GuestGpuE2EIT.HOST_MESA);
        // Readable by everyone: libvirt, QEMU (its 9p share of / carries gltool to the guest) and the backend run
        // as an unprivileged user.
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path gltool = GuestGpuE2EIT.compileGltool(dir);
        Path script = dir.resolve("run.sh");
        Files.writeString(script, String.format(GuestGpuE2EIT.GL_SCRIPT, gltool));
        Path shot = dir.resolve("screen.png");
        Process p = new ProcessBuilder("bash", Guest.E2E.resolve("libvirt-guest.sh").toString(),
                PackagingIT.ROOT.resolve("config/vhost-user/60-vhost-appliance-gpu.json").toString(),
                launcher(dir).toString(), script.toString(), "300", shot.toString())
                .redirectError(dir.resolve("libvirt-guest.err").toFile()).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(330, TimeUnit.SECONDS));
        System.out.println(out);
        assertEquals(0, p.exitValue(), out + Files.readString(dir.resolve("libvirt-guest.err")));
        String backend = out.lines().filter(l -> l.startsWith("BACKEND ")).findFirst().orElse("");
        System.out.println("gpu e2e, libvirt: " + backend);
        assertTrue(backend.contains("vhost.invoked-as=vhost-user-gpu"), "libvirt started our gpu backend: " + backend);
        assertTrue(backend.matches(".* --fd=\\d+ .*--virgl.*|.* --virgl .*--fd=\\d+.*"),
                "with libvirt's socket and --virgl for accel3d: " + backend);
        GuestGpuE2EIT.assertGlRun(out, "gpu e2e, libvirt");
        BufferedImage screen = ImageIO.read(shot.toFile()); // libvirt 11 asks QEMU for PNG
        assertNotNull(screen, "virsh screenshot wrote an image ImageIO reads");
        GuestGpuE2EIT.assertGlPicture(screen, "gpu e2e, libvirt", "virsh screenshot");
    }

    /**
     * The program libvirt runs: the app-image's vhost-user-gpu launcher (the tested distribution) when it was
     * built, otherwise a link of that name to the repository's launcher script (it is then that device).
     */
    private static Path launcher(Path dir) throws IOException {
        Path appImage = PackagingIT.ROOT.resolve("app/target/app-image/bin/vhost-user-gpu");
        if (Files.isExecutable(appImage)) {
            return appImage;
        }
        return Files.createSymbolicLink(dir.resolve("vhost-user-gpu"), PackagingIT.ROOT.resolve("vhost-appliance"));
    }
}

package dev.vhostappliance.gpu;

import dev.vhostappliance.cli.DeviceCommand;
import dev.vhostappliance.cli.StartupException;
import dev.vhostappliance.device.VhostDeviceProvider;
import dev.vhostappliance.device.VirtioDevice;
import dev.vhostappliance.gpu.virgl.VirglRenderer;
import dev.vhostappliance.gpu.virgl.VirglUnavailableException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.jboss.logging.Logger;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

/** {@code vhost-appliance gpu} / {@code vhost-user-gpu}: QEMU's vhost-user-gpu command line. */
@Command(name = "gpu", description = "Serve a vhost-user-gpu device (virtio-gpu 2D, 3D with --virgl).", sortOptions = false)
public final class GpuCommand extends DeviceCommand {
    private static final Logger LOG = Logger.getLogger(GpuCommand.class);
    @Option(names = "--render-node", paramLabel = "PATH", description = "DRM render node for 3D (virgl).")
    Path renderNode;

    @Option(names = "--virgl", description = "Enable virgl 3D rendering (virglrenderer: on the render node, or in software without one).")
    boolean virgl;

    @Option(names = "--max-hostmem", paramLabel = "BYTES", defaultValue = "268435456",
            description = "Most memory guest resources may use (QEMU's max_hostmem; default 256 MiB).")
    long maxHostmem;

    @Override
    protected VhostDeviceProvider provider() {
        return new GpuDeviceProvider();
    }

    @Override
    protected VirtioDevice createDevice() throws StartupException {
        if (maxHostmem < 1 << 20) {
            throw new ParameterException(spec.commandLine(), "--max-hostmem must be at least 1 MiB, not " + maxHostmem);
        }
        if (renderNode != null && !virgl) {
            throw new StartupException("--render-node is for 3D rendering: add --virgl");
        }
        if (!virgl) {
            return new VirtioGpuDevice(maxHostmem);
        }
        // Fail early (the conventions): the renderer is up before the socket exists, or the start fails here
        return new VirtioGpuDevice(maxHostmem, startRenderer());
    }

    /** --render-node, else the first render node there is (falling back to software), else surfaceless. */
    private VirglRenderer startRenderer() throws StartupException {
        try {
            if (renderNode != null) {
                if (!Files.exists(renderNode)) {
                    throw new StartupException("--render-node: " + renderNode + " does not exist");
                }
                return VirglRenderer.start(renderNode);
            }
            Path first = VirglRenderer.firstRenderNode();
            if (first != null) {
                try {
                    return VirglRenderer.start(first);
                } catch (VirglUnavailableException e) {
                    LOG.warnf("virgl on %s: %s; rendering in software (EGL surfaceless) instead", first, e.getMessage());
                }
            }
            return VirglRenderer.start(null);
        } catch (VirglUnavailableException e) {
            throw new StartupException("--virgl: " + e.getMessage());
        }
    }
}

package dev.vhostappliance.gpu;

import dev.vhostappliance.cli.DeviceCommand;
import dev.vhostappliance.cli.StartupException;
import dev.vhostappliance.device.VhostDeviceProvider;
import dev.vhostappliance.device.VirtioDevice;
import java.nio.file.Path;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code vhost-appliance gpu} / {@code vhost-user-gpu}: QEMU's vhost-user-gpu command line. */
@Command(name = "gpu", description = "Serve a vhost-user-gpu device.", sortOptions = false)
public final class GpuCommand extends DeviceCommand {

    @Option(names = "--render-node", paramLabel = "PATH", description = "DRM render node for 3D (virgl).")
    Path renderNode;

    @Option(names = "--virgl", description = "Enable virgl 3D rendering.")
    boolean virgl;

    @Override
    protected VhostDeviceProvider provider() {
        return new GpuDeviceProvider();
    }

    @Override
    protected VirtioDevice createDevice() throws StartupException {
        if (virgl || renderNode != null) {
            throw new StartupException("3D (--virgl, --render-node) is not available on this host");
        }
        throw new StartupException("the gpu device is not implemented yet");
    }
}

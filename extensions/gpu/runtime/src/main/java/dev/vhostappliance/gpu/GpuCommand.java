package dev.vhostappliance.gpu;

import dev.vhostappliance.cli.DeviceCommand;
import dev.vhostappliance.cli.StartupException;
import dev.vhostappliance.device.VhostDeviceProvider;
import dev.vhostappliance.device.VirtioDevice;
import java.nio.file.Path;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

/** {@code vhost-appliance gpu} / {@code vhost-user-gpu}: QEMU's vhost-user-gpu command line. */
@Command(name = "gpu", description = "Serve a vhost-user-gpu device (virtio-gpu 2D).", sortOptions = false)
public final class GpuCommand extends DeviceCommand {
    @Option(names = "--render-node", paramLabel = "PATH", description = "DRM render node for 3D (virgl).")
    Path renderNode;

    @Option(names = "--virgl", description = "Enable virgl 3D rendering.")
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
        if (virgl || renderNode != null) {
            // Refused before the socket exists: QEMU's own backend only fails once a guest is attached.
            throw new StartupException("3D (--virgl, --render-node) is not available: this build renders 2D only");
        }
        if (maxHostmem < 1 << 20) {
            throw new ParameterException(spec.commandLine(), "--max-hostmem must be at least 1 MiB, not " + maxHostmem);
        }
        return new VirtioGpuDevice(maxHostmem);
    }
}

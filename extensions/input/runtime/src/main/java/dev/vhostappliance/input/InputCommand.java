package dev.vhostappliance.input;

import dev.vhostappliance.cli.DeviceCommand;
import dev.vhostappliance.cli.StartupException;
import dev.vhostappliance.device.VhostDeviceProvider;
import dev.vhostappliance.device.VirtioDevice;
import java.nio.file.Path;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code vhost-appliance input} / {@code vhost-user-input}: QEMU's contrib vhost-user-input command line. */
@Command(name = "input", description = "Serve a vhost-user-input device.", sortOptions = false)
public final class InputCommand extends DeviceCommand {

    @Option(names = "--evdev-path", paramLabel = "PATH", description = "The Linux input device to forward.")
    Path evdevPath;

    @Option(names = "--no-grab", description = "Do not request exclusive access to the input device.")
    boolean noGrab;

    @Override
    protected VhostDeviceProvider provider() {
        return new InputDeviceProvider();
    }

    @Override
    protected VirtioDevice createDevice() throws StartupException {
        throw new StartupException("the input device is not implemented yet");
    }
}

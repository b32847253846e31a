package dev.vhostappliance.gpu;

import dev.vhostappliance.device.VhostDeviceProvider;
import java.util.List;

/** The gpu device as the appliance sees it: type, program name, capabilities, command. */
public final class GpuDeviceProvider implements VhostDeviceProvider {

    public static final String TYPE = "gpu";

    @Override
    public String type() {
        return TYPE;
    }

    @Override
    public String programName() {
        return "vhost-user-gpu";
    }

    @Override
    public String description() {
        return "virtio-gpu: 2D display through QEMU (vhost-user-gpu)";
    }

    @Override
    public List<String> capabilities() {
        return List.of();
    }

    @Override
    public Object newCommand() {
        return new GpuCommand();
    }
}

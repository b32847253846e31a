package dev.vhostappliance.input;

import dev.vhostappliance.device.VhostDeviceProvider;
import java.util.List;

/** The input device as the appliance sees it: type, program name, capabilities, command. */
public final class InputDeviceProvider implements VhostDeviceProvider {

    public static final String TYPE = "input";

    @Override
    public String type() {
        return TYPE;
    }

    @Override
    public String programName() {
        return "vhost-user-input";
    }

    @Override
    public String description() {
        return "virtio-input: keyboard, mouse, tablet from evdev or a virtual source (vhost-user-input)";
    }

    @Override
    public List<String> capabilities() {
        return List.of("evdev-path", "no-grab");
    }

    @Override
    public Object newCommand() {
        return new InputCommand();
    }
}

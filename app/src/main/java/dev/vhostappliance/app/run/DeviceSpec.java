package dev.vhostappliance.app.run;

import java.util.List;

/** One device of a config-file setup: its id, type, and the device command's arguments built from its keys. */
public record DeviceSpec(String id, String type, List<String> arguments) {
}

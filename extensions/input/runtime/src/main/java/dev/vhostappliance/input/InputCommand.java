package dev.vhostappliance.input;

import dev.vhostappliance.cli.DeviceCommand;
import dev.vhostappliance.cli.StartupException;
import dev.vhostappliance.device.VhostDeviceProvider;
import dev.vhostappliance.device.VirtioDevice;
import dev.vhostappliance.input.evdev.EvdevSource;
import dev.vhostappliance.input.virtual.EventFormat;
import dev.vhostappliance.input.virtual.VirtualIdentity;
import dev.vhostappliance.input.virtual.VirtualInputSource;
import dev.vhostappliance.libc.NativeCallException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

/**
 * {@code vhost-appliance input} / {@code vhost-user-input}: QEMU's contrib vhost-user-input command line
 * (--evdev-path, --no-grab), plus a virtual source: a device described by options whose events come over
 * a Unix socket.
 */
@Command(name = "input", description = "Serve a vhost-user-input device.", sortOptions = false)
public final class InputCommand extends DeviceCommand {

    @Option(names = "--evdev-path", paramLabel = "PATH", description = "The Linux input device to forward.")
    Path evdevPath;

    @Option(names = "--no-grab", description = "Do not request exclusive access to the input device.")
    boolean noGrab;

    @Option(names = "--event-socket", paramLabel = "PATH",
            description = "Virtual source: take events from programs connected to the Unix socket PATH.")
    Path eventSocket;

    @Option(names = "--event-format", paramLabel = "json|raw", defaultValue = "json",
            description = "Virtual source: JSON lines (default) or raw 24-byte struct input_event records.")
    String eventFormat;

    @Option(names = "--preset", paramLabel = "NAME", split = ",",
            description = "Virtual source: keyboard, mouse, tablet, touchscreen (comma-separated; default keyboard).")
    List<String> presets = new ArrayList<>();

    @Option(names = "--name", paramLabel = "TEXT", description = "Virtual source: the device name the guest sees.")
    String name;

    @Option(names = "--serial", paramLabel = "TEXT", description = "Virtual source: the serial (unique id).")
    String serial;

    @Option(names = "--ids", paramLabel = "BUS:VENDOR:PRODUCT:VERSION",
            description = "Virtual source: device ids, hexadecimal.")
    String ids;

    @Option(names = "--keys", paramLabel = "CODE", split = ",",
            description = "Virtual source: extra keys and buttons (KEY_A, BTN_LEFT, ...).")
    List<String> keys = new ArrayList<>();

    @Option(names = "--rel", paramLabel = "AXIS", split = ",", description = "Virtual source: relative axes (REL_X, ...).")
    List<String> rel = new ArrayList<>();

    @Option(names = "--abs", paramLabel = "AXIS:MIN:MAX[:FUZZ[:FLAT[:RES]]]", split = ",",
            description = "Virtual source: absolute axes with their ranges.")
    List<String> abs = new ArrayList<>();

    @Option(names = "--leds", paramLabel = "LED", split = ",", description = "Virtual source: LEDs (LED_CAPSL, ...).")
    List<String> leds = new ArrayList<>();

    @Option(names = "--props", paramLabel = "PROP", split = ",",
            description = "Virtual source: input properties (INPUT_PROP_DIRECT, ...).")
    List<String> props = new ArrayList<>();

    @Option(names = "--repeat", description = "Virtual source: announce autorepeat (EV_REP).")
    boolean repeat;

    @Override
    protected VhostDeviceProvider provider() {
        return new InputDeviceProvider();
    }

    @Override
    protected VirtioDevice createDevice() throws StartupException {
        if ((evdevPath == null) == (eventSocket == null)) {
            throw new ParameterException(spec.commandLine(), evdevPath == null
                    ? "one of --evdev-path=PATH or --event-socket=PATH is required"
                    : "--evdev-path and --event-socket are mutually exclusive");
        }
        boolean virtualOptions = !presets.isEmpty() || name != null || serial != null || ids != null || !keys.isEmpty()
                || !rel.isEmpty() || !abs.isEmpty() || !leds.isEmpty() || !props.isEmpty() || repeat;
        if (evdevPath != null && virtualOptions) {
            throw new ParameterException(spec.commandLine(),
                    "--preset, --name, --keys and the other virtual source options need --event-socket, not --evdev-path");
        }
        if (eventSocket != null && noGrab) {
            throw new ParameterException(spec.commandLine(), "--no-grab applies to --evdev-path only");
        }
        InputSource source;
        if (evdevPath != null) {
            try {
                source = new EvdevSource(evdevPath.toString(), !noGrab);
            } catch (NativeCallException | RuntimeException e) {
                throw new StartupException("cannot use " + evdevPath + ": " + e.getMessage());
            }
        } else {
            EventFormat format = switch (eventFormat) {
                case "json" -> EventFormat.JSON;
                case "raw" -> EventFormat.RAW;
                default -> throw new ParameterException(spec.commandLine(), "--event-format must be json or raw, not " + eventFormat);
            };
            InputIdentity identity;
            try {
                identity = VirtualIdentity.build(presets, name, serial, ids, keys, rel, abs, leds, props, repeat);
            } catch (IllegalArgumentException e) {
                throw new ParameterException(spec.commandLine(), "virtual input device: " + e.getMessage());
            }
            try {
                source = new VirtualInputSource(identity, eventSocket, format);
            } catch (IOException e) {
                throw new StartupException(e.getMessage());
            }
        }
        return new VirtioInputDevice(source);
    }
}

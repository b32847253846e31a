package dev.vhostappliance.input.virtual;

import dev.vhostappliance.input.AbsInfo;
import dev.vhostappliance.input.InputEventCodes;
import dev.vhostappliance.input.InputIdentity;
import dev.vhostappliance.input.VirtioInput;
import java.util.List;
import java.util.Locale;

/**
 * Builds a virtual device's identity from presets (like QEMU's virtio-keyboard, -mouse and -tablet, plus a
 * multi-touch screen) and explicit lists of keys, relative and absolute axes, LEDs and properties. All names
 * are the kernel's (KEY_A, BTN_LEFT, REL_WHEEL, ABS_X, LED_CAPSL, INPUT_PROP_DIRECT) or numbers.
 */
public final class VirtualIdentity {
    /** BUS_VIRTUAL (linux/input.h). */
    public static final int BUS_VIRTUAL = 0x06;
    /** Our vendor id on the virtual bus; product ids follow the first preset. */
    public static final int VENDOR = 0x1af4; // the virtio vendor id, as QEMU's virtio-input devices report
    public static final int TABLET_MAX = 32767;
    public static final List<String> PRESETS = List.of("keyboard", "mouse", "tablet", "touchscreen");

    private VirtualIdentity() {
    }

    /** Every argument may be empty; with no preset and no codes the device is a keyboard. */
    public static InputIdentity build(List<String> presets, String name, String serial, String ids, List<String> keys,
            List<String> rel, List<String> abs, List<String> leds, List<String> props, boolean repeat) {
        boolean explicit = !keys.isEmpty() || !rel.isEmpty() || !abs.isEmpty() || !leds.isEmpty();
        List<String> chosen = presets.isEmpty() && !explicit ? List.of("keyboard") : presets;
        InputIdentity.Builder b = InputIdentity.builder(name);
        int product = 0x1000;
        for (String p : chosen) {
            switch (p.trim().toLowerCase(Locale.ROOT)) {
                case "keyboard" -> keyboard(b);
                case "mouse" -> mouse(b);
                case "tablet" -> tablet(b);
                case "touchscreen" -> touchscreen(b);
                default -> throw new IllegalArgumentException("unknown preset \"" + p + "\" (one of " + String.join(", ", PRESETS) + ")");
            }
            product |= 1 << PRESETS.indexOf(p.trim().toLowerCase(Locale.ROOT));
        }
        b.ids(BUS_VIRTUAL, VENDOR, product, 1);
        for (String k : keys) {
            b.code(VirtioInput.EV_KEY, InputEventCodes.code(VirtioInput.EV_KEY, k));
        }
        for (String r : rel) {
            b.code(VirtioInput.EV_REL, InputEventCodes.code(VirtioInput.EV_REL, r));
        }
        for (String a : abs) {
            axis(b, a);
        }
        for (String l : leds) {
            b.code(VirtioInput.EV_LED, InputEventCodes.code(VirtioInput.EV_LED, l));
        }
        for (String p : props) {
            b.property(InputEventCodes.property(p));
        }
        if (repeat) {
            b.type(VirtioInput.EV_REP);
        }
        if (ids != null && !ids.isBlank()) {
            int[] v = parseIds(ids);
            b.ids(v[0], v[1], v[2], v[3]);
        }
        if (name == null || name.isBlank()) {
            b.name("vhost-appliance virtual " + String.join("+", chosen.isEmpty() ? List.of("input") : chosen));
        }
        b.serial(serial);
        return b.build();
    }

    /** AXIS:MIN:MAX[:FUZZ[:FLAT[:RESOLUTION]]], e.g. ABS_X:0:32767 or ABS_PRESSURE:0:255:0:0:0. */
    static void axis(InputIdentity.Builder b, String spec) {
        String[] f = spec.split(":");
        if (f.length < 3 || f.length > 6) {
            throw new IllegalArgumentException("axis \"" + spec + "\" is not AXIS:MIN:MAX[:FUZZ[:FLAT[:RESOLUTION]]]");
        }
        int code = InputEventCodes.code(VirtioInput.EV_ABS, f[0]);
        int[] v = new int[5];
        for (int i = 1; i < f.length; i++) {
            try {
                v[i - 1] = Integer.parseInt(f[i].trim());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("axis \"" + spec + "\": \"" + f[i] + "\" is not a number");
            }
        }
        b.axis(code, new AbsInfo(v[0], v[1], v[2], v[3], v[4]));
    }

    /** BUSTYPE:VENDOR:PRODUCT:VERSION, each hexadecimal (as lsusb and /proc/bus/input/devices print them). */
    static int[] parseIds(String ids) {
        String[] f = ids.split(":");
        if (f.length != 4) {
            throw new IllegalArgumentException("ids \"" + ids + "\" is not BUSTYPE:VENDOR:PRODUCT:VERSION (hexadecimal)");
        }
        int[] v = new int[4];
        for (int i = 0; i < 4; i++) {
            try {
                v[i] = Integer.parseInt(f[i].trim(), 16);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("ids \"" + ids + "\": \"" + f[i] + "\" is not hexadecimal");
            }
            if (v[i] < 0 || v[i] > 0xffff) {
                throw new IllegalArgumentException("ids \"" + ids + "\": \"" + f[i] + "\" is over 16 bits");
            }
        }
        return v;
    }

    private static void keyboard(InputIdentity.Builder b) {
        // Every KEY_ code below BTN_MISC's block, and the extended keys above the buttons (KEY_OK and on).
        for (int code = 1; code < 0x100; code++) {
            if (InputEventCodes.codeName(VirtioInput.EV_KEY, code).startsWith("KEY_")) {
                b.code(VirtioInput.EV_KEY, code);
            }
        }
        for (String led : List.of("LED_NUML", "LED_CAPSL", "LED_SCROLLL")) {
            b.code(VirtioInput.EV_LED, InputEventCodes.code(VirtioInput.EV_LED, led));
        }
        b.code(VirtioInput.EV_MSC, InputEventCodes.code(VirtioInput.EV_MSC, "MSC_SCAN"));
        b.type(VirtioInput.EV_REP);
    }

    private static void buttons(InputIdentity.Builder b, String... names) {
        for (String n : names) {
            b.code(VirtioInput.EV_KEY, InputEventCodes.code(VirtioInput.EV_KEY, n));
        }
    }

    private static void mouse(InputIdentity.Builder b) {
        buttons(b, "BTN_LEFT", "BTN_RIGHT", "BTN_MIDDLE", "BTN_SIDE", "BTN_EXTRA");
        for (String r : List.of("REL_X", "REL_Y", "REL_WHEEL", "REL_HWHEEL")) {
            b.code(VirtioInput.EV_REL, InputEventCodes.code(VirtioInput.EV_REL, r));
        }
        b.property(InputEventCodes.property("INPUT_PROP_POINTER"));
    }

    private static void tablet(InputIdentity.Builder b) {
        buttons(b, "BTN_LEFT", "BTN_RIGHT", "BTN_MIDDLE");
        b.code(VirtioInput.EV_REL, InputEventCodes.code(VirtioInput.EV_REL, "REL_WHEEL"));
        axis(b, "ABS_X:0:" + TABLET_MAX);
        axis(b, "ABS_Y:0:" + TABLET_MAX);
    }

    private static void touchscreen(InputIdentity.Builder b) {
        buttons(b, "BTN_TOUCH");
        axis(b, "ABS_X:0:" + TABLET_MAX);
        axis(b, "ABS_Y:0:" + TABLET_MAX);
        axis(b, "ABS_MT_SLOT:0:9");
        axis(b, "ABS_MT_TRACKING_ID:0:65535");
        axis(b, "ABS_MT_POSITION_X:0:" + TABLET_MAX);
        axis(b, "ABS_MT_POSITION_Y:0:" + TABLET_MAX);
        b.property(InputEventCodes.property("INPUT_PROP_DIRECT"));
    }
}

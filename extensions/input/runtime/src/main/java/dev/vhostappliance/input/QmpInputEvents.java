package dev.vhostappliance.input;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * QEMU's {@code input-send-event} events (qapi/ui.json InputEvent: key, btn, rel, abs) as evdev events for a
 * virtio-input device: QKeyCode names and key numbers to KEY_ codes, buttons to BTN_ codes (the wheel to
 * REL_WHEEL steps), axes x/y, absolute values scaled from QEMU's 0..0x7fff to the device's range. Like QEMU,
 * a SYN_REPORT follows the list. Codes the device does not have are an error, not silently lost.
 */
public final class QmpInputEvents {
    /** QEMU's absolute axis range (INPUT_EVENT_ABS_MAX). */
    static final int QEMU_ABS_MAX = 0x7fff;
    private static final Map<String, String> QCODE_NAMES = Map.ofEntries(
            Map.entry("ret", "KEY_ENTER"), Map.entry("spc", "KEY_SPACE"), Map.entry("shift", "KEY_LEFTSHIFT"),
            Map.entry("shift_r", "KEY_RIGHTSHIFT"), Map.entry("ctrl", "KEY_LEFTCTRL"), Map.entry("ctrl_r", "KEY_RIGHTCTRL"),
            Map.entry("alt", "KEY_LEFTALT"), Map.entry("alt_r", "KEY_RIGHTALT"), Map.entry("meta_l", "KEY_LEFTMETA"),
            Map.entry("meta_r", "KEY_RIGHTMETA"), Map.entry("caps_lock", "KEY_CAPSLOCK"), Map.entry("num_lock", "KEY_NUMLOCK"),
            Map.entry("scroll_lock", "KEY_SCROLLLOCK"), Map.entry("bracket_left", "KEY_LEFTBRACE"),
            Map.entry("bracket_right", "KEY_RIGHTBRACE"), Map.entry("grave_accent", "KEY_GRAVE"), Map.entry("pgup", "KEY_PAGEUP"),
            Map.entry("pgdn", "KEY_PAGEDOWN"), Map.entry("kp_add", "KEY_KPPLUS"), Map.entry("kp_subtract", "KEY_KPMINUS"),
            Map.entry("kp_multiply", "KEY_KPASTERISK"), Map.entry("kp_divide", "KEY_KPSLASH"), Map.entry("kp_enter", "KEY_KPENTER"),
            Map.entry("kp_decimal", "KEY_KPDOT"), Map.entry("kp_equals", "KEY_KPEQUAL"), Map.entry("kp_comma", "KEY_KPCOMMA"),
            Map.entry("less", "KEY_102ND"), Map.entry("print", "KEY_SYSRQ"), Map.entry("sysrq", "KEY_SYSRQ"),
            Map.entry("audiomute", "KEY_MUTE"), Map.entry("volumeup", "KEY_VOLUMEUP"), Map.entry("volumedown", "KEY_VOLUMEDOWN"),
            Map.entry("audionext", "KEY_NEXTSONG"), Map.entry("audioprev", "KEY_PREVIOUSSONG"),
            Map.entry("audioplay", "KEY_PLAYPAUSE"), Map.entry("audiostop", "KEY_STOPCD"), Map.entry("ac_home", "KEY_HOMEPAGE"),
            Map.entry("ac_back", "KEY_BACK"), Map.entry("ac_forward", "KEY_FORWARD"), Map.entry("ac_refresh", "KEY_REFRESH"));
    private static final Map<String, String> BUTTONS = Map.of("left", "BTN_LEFT", "middle", "BTN_MIDDLE", "right", "BTN_RIGHT",
            "side", "BTN_SIDE", "extra", "BTN_EXTRA", "touch", "BTN_TOUCH");

    private QmpInputEvents() {
    }

    /** The evdev events of an input-send-event "events" array, SYN_REPORT last, as {type, code, value} triples. */
    public static List<int[]> toEvdev(JsonNode events, InputIdentity device) {
        if (events == null || !events.isArray() || events.isEmpty()) {
            throw new IllegalArgumentException("Parameter 'events' must be a non-empty array");
        }
        List<int[]> out = new ArrayList<>();
        for (JsonNode e : events) {
            String type = e.path("type").asText("");
            JsonNode data = e.path("data");
            switch (type) {
                case "key" -> {
                    int code = keyCode(data.path("key"));
                    out.add(checked(device, VirtioInput.EV_KEY, code, down(data) ? 1 : 0));
                }
                case "btn" -> button(device, data, out);
                case "rel", "abs" -> {
                    String axis = data.path("axis").asText("");
                    if (!axis.equals("x") && !axis.equals("y")) {
                        throw new IllegalArgumentException("Parameter 'axis' does not accept value '" + axis + "'");
                    }
                    if (!data.path("value").canConvertToInt()) {
                        throw new IllegalArgumentException("Parameter 'value' must be an integer");
                    }
                    int value = data.path("value").asInt();
                    if (type.equals("rel")) {
                        out.add(checked(device, VirtioInput.EV_REL, axis.equals("x") ? 0 : 1, value));
                    } else {
                        int code = axis.equals("x") ? 0 : 1;
                        AbsInfo a = device.axis(code);
                        if (a == null) {
                            throw new IllegalArgumentException("the device has no absolute axis " + axis);
                        }
                        long scaled = a.min() + (long) Math.clamp(value, 0, QEMU_ABS_MAX) * ((long) a.max() - a.min()) / QEMU_ABS_MAX;
                        out.add(new int[] {VirtioInput.EV_ABS, code, (int) scaled});
                    }
                }
                default -> throw new IllegalArgumentException("event type '" + type + "' is not supported (key, btn, rel, abs)");
            }
        }
        out.add(new int[] {VirtioInput.EV_SYN, VirtioInput.SYN_REPORT, 0});
        return out;
    }

    private static boolean down(JsonNode data) {
        JsonNode d = data.get("down");
        if (d == null || !d.isBoolean()) {
            throw new IllegalArgumentException("Parameter 'down' must be true or false");
        }
        return d.asBoolean();
    }

    /** A KeyValue: {"type": "qcode", "data": "a"} or {"type": "number", "data": 30} (XT scancodes below 0x59). */
    static int keyCode(JsonNode key) {
        String kind = key.path("type").asText("");
        JsonNode data = key.path("data");
        if (kind.equals("number")) {
            int n = data.asInt(-1);
            if (!data.canConvertToInt() || n <= 0 || n >= 0x59) {
                throw new IllegalArgumentException("key number " + data + " is not supported (1..0x58)");
            }
            return n; // XT set 1 scancodes below 0x59 equal the Linux key codes
        }
        if (!kind.equals("qcode") || !data.isTextual()) {
            throw new IllegalArgumentException("Parameter 'key' must be {\"type\": \"qcode\"|\"number\", \"data\": ...}");
        }
        String q = data.asText().toLowerCase(Locale.ROOT);
        String name = QCODE_NAMES.getOrDefault(q, "KEY_" + q.toUpperCase(Locale.ROOT));
        try {
            return InputEventCodes.code(VirtioInput.EV_KEY, name);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown QKeyCode '" + data.asText() + "'");
        }
    }

    private static void button(InputIdentity device, JsonNode data, List<int[]> out) {
        String b = data.path("button").asText("");
        boolean down = down(data);
        switch (b) {
            case "wheel-up", "wheel-down", "wheel-left", "wheel-right" -> {
                if (down) { // QEMU sends the wheel as a press and a release: one step
                    int code = b.endsWith("up") || b.endsWith("down") ? 8 : 6; // REL_WHEEL, REL_HWHEEL
                    out.add(checked(device, VirtioInput.EV_REL, code, b.endsWith("up") || b.endsWith("right") ? 1 : -1));
                }
            }
            default -> {
                String name = BUTTONS.get(b);
                if (name == null) {
                    throw new IllegalArgumentException("Parameter 'button' does not accept value '" + b + "'");
                }
                out.add(checked(device, VirtioInput.EV_KEY, InputEventCodes.code(VirtioInput.EV_KEY, name), down ? 1 : 0));
            }
        }
    }

    private static int[] checked(InputIdentity device, int type, int code, int value) {
        if (!device.supports(type, code)) {
            throw new IllegalArgumentException("the device has no " + InputEventCodes.codeName(type, code));
        }
        return new int[] {type, code, value};
    }
}

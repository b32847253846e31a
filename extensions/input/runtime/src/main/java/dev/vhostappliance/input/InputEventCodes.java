package dev.vhostappliance.input;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/**
 * Linux input event names (EV_KEY, KEY_A, BTN_LEFT, ABS_X, LED_CAPSL ...) and their numbers, from the kernel's
 * UAPI header (resource input-event-codes.txt). A code name's prefix says its event type: KEY_ and BTN_ are
 * EV_KEY codes, REL_ EV_REL, ABS_ EV_ABS, and so on.
 */
public final class InputEventCodes {
    private static final Map<String, Integer> BY_NAME = new HashMap<>();
    /** "type:code" to the first name the header gives that code. */
    private static final Map<Long, String> BY_CODE = new HashMap<>();
    /** EV_ names by type number. */
    private static final String[] TYPE_NAMES = new String[VirtioInput.EV_CNT];
    private static final Map<String, Integer> PREFIX_TYPE = Map.of("SYN_", VirtioInput.EV_SYN, "KEY_",
            VirtioInput.EV_KEY, "BTN_", VirtioInput.EV_KEY, "REL_", VirtioInput.EV_REL, "ABS_", VirtioInput.EV_ABS,
            "MSC_", VirtioInput.EV_MSC, "SW_", VirtioInput.EV_SW, "LED_", VirtioInput.EV_LED, "SND_",
            VirtioInput.EV_SND, "REP_", VirtioInput.EV_REP);

    static {
        try (InputStream in = InputEventCodes.class.getResourceAsStream("input-event-codes.txt");
                BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.US_ASCII))) {
            for (String line = r.readLine(); line != null; line = r.readLine()) {
                if (line.isBlank() || line.startsWith("#")) {
                    continue;
                }
                int sp = line.indexOf(' ');
                String name = line.substring(0, sp);
                int value = Integer.parseInt(line.substring(sp + 1).trim());
                BY_NAME.put(name, value);
                if (name.startsWith("EV_") && value >= 0 && value < TYPE_NAMES.length && TYPE_NAMES[value] == null) {
                    TYPE_NAMES[value] = name;
                }
                Integer type = typeOfCodeName(name);
                if (type != null) {
                    BY_CODE.putIfAbsent(key(type, value), name);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private InputEventCodes() {
    }

    private static long key(int type, int code) {
        return ((long) type << 32) | (code & 0xffffffffL);
    }

    /** The event type a code name belongs to (KEY_A: EV_KEY), or null if the name has no known prefix. */
    public static Integer typeOfCodeName(String name) {
        for (Map.Entry<String, Integer> e : PREFIX_TYPE.entrySet()) {
            if (name.startsWith(e.getKey())) {
                return e.getValue();
            }
        }
        return null;
    }

    /** The number of an event type name (EV_KEY) or a number; IllegalArgumentException otherwise. */
    public static int type(String nameOrNumber) {
        String s = nameOrNumber.trim().toUpperCase(Locale.ROOT);
        if (s.startsWith("EV_")) {
            Integer v = BY_NAME.get(s);
            if (v == null) {
                throw new IllegalArgumentException("unknown event type " + nameOrNumber);
            }
            return v;
        }
        return number(nameOrNumber, VirtioInput.EV_CNT - 1, "event type");
    }

    /** The number of a code name of the given type (KEY_A, BTN_LEFT, ABS_X ...) or a number. */
    public static int code(int type, String nameOrNumber) {
        String s = nameOrNumber.trim().toUpperCase(Locale.ROOT);
        Integer v = BY_NAME.get(s);
        if (v != null) {
            Integer t = typeOfCodeName(s);
            if (t == null || t != type) {
                throw new IllegalArgumentException(nameOrNumber + " is not a code of " + typeName(type));
            }
            return v;
        }
        if (!s.isEmpty() && (Character.isDigit(s.charAt(0)) || s.startsWith("-"))) {
            return number(nameOrNumber, 0xffff, "event code");
        }
        throw new IllegalArgumentException("unknown event code " + nameOrNumber);
    }

    /** A code name, its type taken from the prefix (KEY_A to {EV_KEY, 30}). */
    public static int[] typedCode(String name) {
        String s = name.trim().toUpperCase(Locale.ROOT);
        Integer type = typeOfCodeName(s);
        Integer v = BY_NAME.get(s);
        if (type == null || v == null) {
            throw new IllegalArgumentException("unknown event code " + name);
        }
        return new int[] {type, v};
    }

    /** An INPUT_PROP_ name or number. */
    public static int property(String nameOrNumber) {
        String s = nameOrNumber.trim().toUpperCase(Locale.ROOT);
        Integer v = BY_NAME.get(s.startsWith("INPUT_PROP_") ? s : "INPUT_PROP_" + s);
        if (v != null) {
            return v;
        }
        return number(nameOrNumber, VirtioInput.INPUT_PROP_CNT - 1, "input property");
    }

    public static String typeName(int type) {
        return type >= 0 && type < TYPE_NAMES.length && TYPE_NAMES[type] != null ? TYPE_NAMES[type] : String.valueOf(type);
    }

    /** The name of a code of a type, or its number as text. */
    public static String codeName(int type, int code) {
        String n = BY_CODE.get(key(type, code));
        return n != null ? n : String.valueOf(code);
    }

    private static int number(String text, int max, String what) {
        try {
            int v = Integer.decode(text.trim());
            if (v < 0 || v > max) {
                throw new IllegalArgumentException(what + " " + text + " out of range 0.." + max);
            }
            return v;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("unknown " + what + " " + text);
        }
    }
}

package dev.vhostappliance.device;

import java.util.LinkedHashMap;
import java.util.Map;

/** Builds a device's {@link VirtioDevice#counters()}: names and values, in order. */
public final class Counters {
    private Counters() {
    }

    /** names[i] to values[i], in the order given. */
    public static Map<String, Long> of(String[] names, long... values) {
        if (names.length != values.length) {
            throw new IllegalArgumentException(names.length + " names for " + values.length + " values");
        }
        Map<String, Long> m = new LinkedHashMap<>();
        for (int i = 0; i < names.length; i++) {
            m.put(names[i], values[i]);
        }
        return m;
    }
}

package dev.vhostappliance.block;

import java.util.LinkedHashMap;
import java.util.Map;

/** Option trees as --blockdev/--export JSON makes them, written inline in tests: tree("driver", "file", ...). */
public final class Trees {
    private Trees() {
    }

    public static Map<String, Object> tree(Object... keysAndValues) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < keysAndValues.length; i += 2) {
            m.put((String) keysAndValues[i], keysAndValues[i + 1]);
        }
        return m;
    }
}

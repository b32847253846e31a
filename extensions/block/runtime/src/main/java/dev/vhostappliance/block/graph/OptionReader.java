package dev.vhostappliance.block.graph;

import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

/**
 * Typed reading of one parsed option (a {@code KeyValue} tree) with QEMU's value syntax: booleans
 * on/off/yes/no/true/false, sizes with k/M/G/T suffixes. Every key read is remembered, so
 * {@link #finish()} can reject what nobody understood: nothing is silently ignored.
 */
public final class OptionReader {
    private final Map<String, Object> map;
    private final String prefix;
    private final Set<String> used = new LinkedHashSet<>();

    public OptionReader(Map<String, Object> map) {
        this(map, "");
    }

    private OptionReader(Map<String, Object> map, String prefix) {
        this.map = map;
        this.prefix = prefix;
    }

    private final Map<String, Object> defaults = new java.util.HashMap<>();

    private Object raw(String key) {
        used.add(key);
        return map.containsKey(key) ? map.get(key) : defaults.get(key);
    }

    /** A value key takes when the tree does not give one (a child inheriting its parent's read-only). */
    public void setDefault(String key, Object value) {
        defaults.put(key, value);
    }

    public boolean has(String key) {
        return map.containsKey(key);
    }

    public String string(String key, String def) throws OptionException {
        Object v = raw(key);
        if (v == null) {
            return def;
        }
        if (v instanceof Map) {
            throw new OptionException("Parameter '" + prefix + key + "' expects a string");
        }
        return String.valueOf(v);
    }

    public String required(String key) throws OptionException {
        String v = string(key, null);
        if (v == null) {
            throw new OptionException("Parameter '" + prefix + key + "' is missing");
        }
        return v;
    }

    public boolean bool(String key, boolean def) throws OptionException {
        Object v = raw(key);
        if (v == null) {
            return def;
        }
        if (v instanceof Boolean b) {
            return b;
        }
        return switch (String.valueOf(v)) {
            case "on", "yes", "true" -> true;
            case "off", "no", "false" -> false;
            default -> throw new OptionException("Parameter '" + prefix + key + "' expects 'on' or 'off'");
        };
    }

    public long integer(String key, long def, long min, long max) throws OptionException {
        Object v = raw(key);
        if (v == null) {
            return def;
        }
        long n;
        if (v instanceof Number num) {
            n = num.longValue();
        } else {
            try {
                n = Long.parseLong(String.valueOf(v));
            } catch (NumberFormatException e) {
                throw new OptionException("Parameter '" + prefix + key + "' expects a number");
            }
        }
        if (n < min || n > max) {
            throw new OptionException("Parameter '" + prefix + key + "' expects a value between " + min + " and " + max);
        }
        return n;
    }

    /** A file descriptor number given as a string (QAPI's SocketAddress {@code fd} branch: {@code str}). */
    public int fileDescriptor(String key) throws OptionException {
        String v = required(key);
        try {
            return Integer.parseInt(v);
        } catch (NumberFormatException e) {
            throw new OptionException(prefix + key + " must be a file descriptor number, is '" + v + "'");
        }
    }

    /** A size: a number with an optional k, M, G, T suffix (powers of 1024), or a JSON number. */
    public long size(String key, long def) throws OptionException {
        Object v = raw(key);
        if (v == null) {
            return def;
        }
        if (v instanceof Number num) {
            return num.longValue();
        }
        String s = String.valueOf(v).trim();
        long mult = 1;
        if (!s.isEmpty()) {
            switch (Character.toLowerCase(s.charAt(s.length() - 1))) {
                case 'k' -> mult = 1L << 10;
                case 'm' -> mult = 1L << 20;
                case 'g' -> mult = 1L << 30;
                case 't' -> mult = 1L << 40;
                case 'b' -> mult = 1;
                default -> mult = 0;
            }
            if (mult != 0) {
                s = s.substring(0, s.length() - 1);
            } else {
                mult = 1;
            }
        }
        try {
            long n = Long.parseLong(s);
            if (n < 0 || n > Long.MAX_VALUE / mult) {
                throw new NumberFormatException();
            }
            return n * mult;
        } catch (NumberFormatException e) {
            throw new OptionException("Parameter '" + prefix + key + "' expects a size");
        }
    }

    /** The nested object at key (e.g. addr, cache, file), or null. */
    public OptionReader child(String key) throws OptionException {
        Object v = raw(key);
        if (v == null) {
            return null;
        }
        if (!(v instanceof Map)) {
            throw new OptionException("Parameter '" + prefix + key + "' expects an object");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> m = (Map<String, Object>) v;
        return new OptionReader(m, prefix + key + ".");
    }

    /** True if key holds a non-empty list (a JSON array, or key.0=... on the command line); marks it read. */
    public boolean nonEmptyList(String key) {
        Object v = raw(key);
        return v instanceof java.util.Collection<?> c ? !c.isEmpty() : v instanceof Map<?, ?> m ? !m.isEmpty() : v != null;
    }

    /**
     * The list at key: a JSON array, or {@code key.0=...,key.1=...} on the command line (a map with the keys
     * 0, 1, ... in order); empty if absent. Its elements as they are (strings, maps).
     */
    private java.util.List<Object> list(String key) throws OptionException {
        Object v = raw(key);
        if (v == null) {
            return java.util.List.of();
        }
        if (v instanceof java.util.List<?> l) {
            return new java.util.ArrayList<>(l);
        }
        if (v instanceof Map<?, ?> m) {
            java.util.List<Object> out = new java.util.ArrayList<>();
            for (int i = 0; i < m.size(); i++) {
                if (!m.containsKey(String.valueOf(i))) {
                    throw new OptionException("Parameter '" + prefix + key + "' expects a list (" + key + ".0, " + key + ".1, ...)");
                }
                out.add(m.get(String.valueOf(i)));
            }
            return out;
        }
        throw new OptionException("Parameter '" + prefix + key + "' expects a list");
    }

    /** A list of strings at key (see {@link #list}). */
    public java.util.List<String> strings(String key) throws OptionException {
        java.util.List<String> out = new java.util.ArrayList<>();
        for (Object o : list(key)) {
            if (o instanceof Map || o instanceof java.util.Collection) {
                throw new OptionException("Parameter '" + prefix + key + "' expects a list of strings");
            }
            out.add(String.valueOf(o));
        }
        return out;
    }

    /** A list of objects at key (see {@link #list}), each read with its own reader. */
    public java.util.List<OptionReader> objects(String key) throws OptionException {
        java.util.List<OptionReader> out = new java.util.ArrayList<>();
        java.util.List<Object> items = list(key);
        for (int i = 0; i < items.size(); i++) {
            if (!(items.get(i) instanceof Map<?, ?> m)) {
                throw new OptionException("Parameter '" + prefix + key + "." + i + "' expects an object");
            }
            @SuppressWarnings("unchecked")
            Map<String, Object> map = (Map<String, Object>) m;
            out.add(new OptionReader(map, prefix + key + "." + i + "."));
        }
        return out;
    }

    /** True if key holds an object (a nested blockdev) rather than a string (a node name). */
    public boolean isObject(String key) {
        return map.get(key) instanceof Map;
    }

    /** Rejects every key that was not read. */
    public void finish() throws OptionException {
        for (String k : map.keySet()) {
            if (!used.contains(k)) {
                throw new OptionException("Invalid parameter '" + prefix + k + "'");
            }
        }
    }
}

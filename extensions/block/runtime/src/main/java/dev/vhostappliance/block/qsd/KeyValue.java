package dev.vhostappliance.block.qsd;

import dev.vhostappliance.block.graph.OptionException;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * QEMU's option syntax, as qemu-storage-daemon reads {@code --blockdev}, {@code --export} and
 * {@code --object}: either JSON ({@code {"driver":"file",...}}, what libvirt passes) or keyval
 * ({@code driver=file,node-name=disk0,file.filename=x.img}): elements split at commas ({@code ,,} is a
 * literal comma), dotted keys nest, and the first element may omit its key when the option has an implied
 * one ({@code --export vhost-user-blk,...}, {@code --object iothread,...}). Keyval values are strings;
 * JSON values keep their JSON types. A key given twice is an error.
 */
public final class KeyValue {
    /** Made on first JSON option only: Jackson is ~370 classes that a keyval command line never needs. */
    private static final class Json {
        static final ObjectMapper MAPPER = new ObjectMapper();
    }

    private KeyValue() {
    }

    /** Parses arg into a tree of maps; impliedKey may be null. */
    public static Map<String, Object> parse(String arg, String impliedKey) throws OptionException {
        if (arg.startsWith("{")) {
            try {
                Object tree = Json.MAPPER.readValue(arg, Object.class);
                if (!(tree instanceof Map)) {
                    throw new OptionException("JSON option must be an object");
                }
                @SuppressWarnings("unchecked")
                Map<String, Object> map = (Map<String, Object>) tree;
                return map;
            } catch (JsonProcessingException e) {
                throw new OptionException("invalid JSON: " + e.getOriginalMessage());
            }
        }
        Map<String, Object> root = new LinkedHashMap<>();
        int i = 0;
        boolean first = true;
        while (i <= arg.length()) {
            StringBuilder element = new StringBuilder();
            while (i < arg.length()) {
                char c = arg.charAt(i);
                if (c == ',') {
                    if (i + 1 < arg.length() && arg.charAt(i + 1) == ',') {
                        element.append(',');
                        i += 2;
                        continue;
                    }
                    break;
                }
                element.append(c);
                i++;
            }
            i++; // past the comma (or the end)
            String e = element.toString();
            if (e.isEmpty()) {
                if (i > arg.length() && !first) {
                    break;
                }
                throw new OptionException("Invalid parameter ''");
            }
            int eq = e.indexOf('=');
            String key;
            String value;
            if (eq < 0) {
                if (!first || impliedKey == null) {
                    throw new OptionException("Expected '=' after parameter '" + e + "'");
                }
                key = impliedKey;
                value = e;
            } else {
                key = e.substring(0, eq);
                value = e.substring(eq + 1);
            }
            put(root, key, value);
            first = false;
        }
        return root;
    }

    private static void put(Map<String, Object> root, String key, String value) throws OptionException {
        String[] parts = key.split("\\.", -1);
        Map<String, Object> m = root;
        for (int k = 0; k < parts.length; k++) {
            String p = parts[k];
            if (p.isEmpty()) {
                throw new OptionException("Invalid parameter '" + key + "'");
            }
            if (k == parts.length - 1) {
                if (m.containsKey(p)) {
                    throw new OptionException("Parameter '" + key + "' is set more than once");
                }
                m.put(p, value);
            } else {
                Object next = m.get(p);
                if (next == null) {
                    Map<String, Object> child = new LinkedHashMap<>();
                    m.put(p, child);
                    m = child;
                } else if (next instanceof Map) {
                    @SuppressWarnings("unchecked")
                    Map<String, Object> child = (Map<String, Object>) next;
                    m = child;
                } else {
                    throw new OptionException("Parameter '" + String.join(".", java.util.Arrays.copyOf(parts, k + 1))
                            + "' is set both as a value and as an object");
                }
            }
        }
    }
}

package dev.vhostappliance.input.virtual;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vhostappliance.input.InputEventCodes;
import dev.vhostappliance.input.VirtioInput;

/**
 * The JSON-lines event format of the virtual input source. Each line is one of:
 * <pre>
 *   {"type": "EV_KEY", "code": "KEY_A", "value": 1}    one event (numbers work too; type may be left out
 *   {"code": "ABS_X", "value": 16000}                  when the code's name says it: KEY_/BTN_, REL_, ABS_ ...)
 *   {"code": "SYN_REPORT"}                             value defaults to 0; SYN_REPORT ends a batch
 *   {"key": "KEY_A"}                                   a tap: press, SYN_REPORT, release, SYN_REPORT
 * </pre>
 * Blank lines and lines starting with '#' are ignored. Status events from the guest are written back to
 * every connected client in the first shape with names: {"type":"EV_LED","code":"LED_CAPSL","value":1}.
 */
public final class JsonEventLine {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Receives one parsed event. */
    @FunctionalInterface
    public interface Events {
        void event(int type, int code, int value);
    }

    private JsonEventLine() {
    }

    /** Parses one line into events; IllegalArgumentException with a short reason if it is not valid. */
    public static void parse(String line, Events out) {
        String s = line.strip();
        if (s.isEmpty() || s.startsWith("#")) {
            return;
        }
        JsonNode n;
        try {
            n = JSON.readTree(s);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("not JSON: " + e.getOriginalMessage());
        }
        if (n == null || !n.isObject()) {
            throw new IllegalArgumentException("expected a JSON object");
        }
        n.fieldNames().forEachRemaining(f -> {
            if (!f.equals("type") && !f.equals("code") && !f.equals("value") && !f.equals("key")) {
                throw new IllegalArgumentException("unknown member \"" + f + "\"");
            }
        });
        if (n.has("key")) {
            if (n.size() != 1) {
                throw new IllegalArgumentException("\"key\" stands alone");
            }
            int code = InputEventCodes.code(VirtioInput.EV_KEY, text(n.get("key"), "key"));
            out.event(VirtioInput.EV_KEY, code, 1);
            out.event(VirtioInput.EV_SYN, VirtioInput.SYN_REPORT, 0);
            out.event(VirtioInput.EV_KEY, code, 0);
            out.event(VirtioInput.EV_SYN, VirtioInput.SYN_REPORT, 0);
            return;
        }
        JsonNode codeNode = n.get("code");
        if (codeNode == null) {
            throw new IllegalArgumentException("missing \"code\"");
        }
        int type;
        if (n.has("type")) {
            type = InputEventCodes.type(text(n.get("type"), "type"));
        } else {
            Integer t = codeNode.isTextual() ? InputEventCodes.typeOfCodeName(codeNode.asText().toUpperCase(java.util.Locale.ROOT)) : null;
            if (t == null) {
                throw new IllegalArgumentException("missing \"type\" (the code does not name one)");
            }
            type = t;
        }
        int code = InputEventCodes.code(type, text(codeNode, "code"));
        JsonNode v = n.get("value");
        int value = 0;
        if (v != null) {
            if (!v.isIntegralNumber() || !v.canConvertToInt()) {
                throw new IllegalArgumentException("\"value\" must be a 32-bit integer");
            }
            value = v.intValue();
        }
        out.event(type, code, value);
    }

    private static String text(JsonNode n, String what) {
        if (n.isTextual()) {
            return n.asText();
        }
        if (n.isIntegralNumber()) {
            return n.asText();
        }
        throw new IllegalArgumentException("\"" + what + "\" must be a name or a number");
    }

    /** A status event as a JSON line (with its newline). */
    public static String format(int type, int code, int value) {
        return "{\"type\":\"" + InputEventCodes.typeName(type) + "\",\"code\":\"" + InputEventCodes.codeName(type, code)
                + "\",\"value\":" + value + "}\n";
    }

}

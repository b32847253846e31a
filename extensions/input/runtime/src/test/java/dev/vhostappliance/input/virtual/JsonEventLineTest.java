package dev.vhostappliance.input.virtual;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class JsonEventLineTest {

    private static List<String> parse(String line) {
        List<String> out = new ArrayList<>();
        JsonEventLine.parse(line, (t, c, v) -> out.add(t + ":" + c + ":" + v));
        return out;
    }

    @Test
    void namesNumbersAndTheImpliedType() {
        assertEquals(List.of("1:30:1"), parse("{\"type\":\"EV_KEY\",\"code\":\"KEY_A\",\"value\":1}"));
        assertEquals(List.of("1:272:0"), parse("{\"code\":\"btn_left\",\"value\":0}"));
        assertEquals(List.of("3:0:16000"), parse("{\"code\":\"ABS_X\",\"value\":16000}"));
        assertEquals(List.of("2:8:-1"), parse("{\"type\":2,\"code\":8,\"value\":-1}"));
        assertEquals(List.of("0:0:0"), parse("{\"code\":\"SYN_REPORT\"}"));
        assertEquals(List.of("17:1:1"), parse("  {\"type\":\"EV_LED\",\"code\":\"LED_CAPSL\",\"value\":1}  "));
        assertEquals(List.of("1:30:1", "0:0:0", "1:30:0", "0:0:0"), parse("{\"key\":\"KEY_A\"}"));
        assertEquals(List.of(), parse(""));
        assertEquals(List.of(), parse("# a comment"));
    }

    @Test
    void badLinesSayWhy() {
        assertEquals("not JSON: Unexpected character ('x' (code 120)): was expecting double-quote to start field name",
                assertThrows(IllegalArgumentException.class, () -> parse("{x}")).getMessage());
        assertEquals("expected a JSON object", assertThrows(IllegalArgumentException.class, () -> parse("[1]")).getMessage());
        assertEquals("missing \"code\"", assertThrows(IllegalArgumentException.class, () -> parse("{\"value\":1}")).getMessage());
        assertEquals("KEY_A is not a code of EV_REL", assertThrows(IllegalArgumentException.class,
                () -> parse("{\"type\":\"EV_REL\",\"code\":\"KEY_A\"}")).getMessage());
        assertEquals("unknown event code KEY_NOPE",
                assertThrows(IllegalArgumentException.class, () -> parse("{\"code\":\"KEY_NOPE\"}")).getMessage());
        assertEquals("\"value\" must be a 32-bit integer", assertThrows(IllegalArgumentException.class,
                () -> parse("{\"code\":\"KEY_A\",\"value\":4294967296}")).getMessage());
        assertEquals("\"value\" must be a 32-bit integer", assertThrows(IllegalArgumentException.class,
                () -> parse("{\"code\":\"KEY_A\",\"value\":\"1\"}")).getMessage());
        assertEquals("unknown member \"valu\"", assertThrows(IllegalArgumentException.class,
                () -> parse("{\"code\":\"KEY_A\",\"valu\":1}")).getMessage());
        assertEquals("missing \"type\" (the code does not name one)",
                assertThrows(IllegalArgumentException.class, () -> parse("{\"code\":5}")).getMessage());
        assertEquals("event type 99 out of range 0..31",
                assertThrows(IllegalArgumentException.class, () -> parse("{\"type\":99,\"code\":5}")).getMessage());
    }

    @Test
    void statusEventsAreWrittenWithNames() {
        assertEquals("{\"type\":\"EV_LED\",\"code\":\"LED_CAPSL\",\"value\":1}\n", JsonEventLine.format(17, 1, 1));
        assertEquals("{\"type\":\"EV_SND\",\"code\":\"SND_BELL\",\"value\":1}\n", JsonEventLine.format(18, 1, 1));
    }
}

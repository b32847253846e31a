package dev.vhostappliance.input;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vhostappliance.input.virtual.VirtualIdentity;
import java.util.List;
import org.junit.jupiter.api.Test;

/** QEMU's input-send-event shapes to evdev events. */
class QmpInputEventsTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final InputIdentity KBD_TABLET = VirtualIdentity.build(List.of("keyboard", "tablet"), null, null, null,
            List.of(), List.of(), List.of("ABS_X:-1000:1000"), List.of(), List.of(), false);

    static List<String> events(String json) throws Exception {
        return QmpInputEvents.toEvdev(JSON.readTree(json), KBD_TABLET).stream().map(e -> e[0] + ":" + e[1] + ":" + e[2]).toList();
    }

    @Test
    void keysButtonsAxesAndTheWheel() throws Exception {
        assertEquals(List.of("1:35:1", "1:28:1", "1:42:0", "0:0:0"), events("[{\"type\":\"key\",\"data\":{\"down\":true,"
                + "\"key\":{\"type\":\"qcode\",\"data\":\"h\"}}},{\"type\":\"key\",\"data\":{\"down\":true,\"key\":{\"type\":"
                + "\"qcode\",\"data\":\"ret\"}}},{\"type\":\"key\",\"data\":{\"down\":false,\"key\":{\"type\":\"number\",\"data\":42}}}]"));
        assertEquals(List.of("1:272:1", "2:8:-1", "0:0:0"), events("[{\"type\":\"btn\",\"data\":{\"down\":true,\"button\":\"left\"}},"
                + "{\"type\":\"btn\",\"data\":{\"down\":true,\"button\":\"wheel-down\"}},"
                + "{\"type\":\"btn\",\"data\":{\"down\":false,\"button\":\"wheel-down\"}}]"));
        // ABS_X was re-declared -1000..1000: QEMU's 0..0x7fff is scaled to it; ABS_Y keeps 0..32767
        assertEquals(List.of("3:0:-1000", "3:0:1000", "3:1:16384", "0:0:0"), events("[{\"type\":\"abs\",\"data\":{\"axis\":\"x\",\"value\":0}},"
                + "{\"type\":\"abs\",\"data\":{\"axis\":\"x\",\"value\":32767}},{\"type\":\"abs\",\"data\":{\"axis\":\"y\",\"value\":16384}}]"));
    }

    @Test
    void whatTheDeviceCannotDoIsAnError() {
        assertEquals("the device has no REL_X", assertThrows(IllegalArgumentException.class,
                () -> events("[{\"type\":\"rel\",\"data\":{\"axis\":\"x\",\"value\":3}}]")).getMessage());
        assertEquals("unknown QKeyCode 'nokey'", assertThrows(IllegalArgumentException.class, () -> events(
                "[{\"type\":\"key\",\"data\":{\"down\":true,\"key\":{\"type\":\"qcode\",\"data\":\"nokey\"}}}]")).getMessage());
        assertEquals("Parameter 'events' must be a non-empty array", assertThrows(IllegalArgumentException.class,
                () -> events("[]")).getMessage());
        assertEquals("event type 'mtt' is not supported (key, btn, rel, abs)", assertThrows(IllegalArgumentException.class,
                () -> events("[{\"type\":\"mtt\",\"data\":{}}]")).getMessage());
        assertEquals("Parameter 'down' must be true or false", assertThrows(IllegalArgumentException.class,
                () -> events("[{\"type\":\"btn\",\"data\":{\"button\":\"left\"}}]")).getMessage());
    }
}

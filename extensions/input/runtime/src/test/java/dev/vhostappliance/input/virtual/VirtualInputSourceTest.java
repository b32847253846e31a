package dev.vhostappliance.input.virtual;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostappliance.input.InputIdentity;
import dev.vhostappliance.input.VirtioInput;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class VirtualInputSourceTest {
    @TempDir
    Path dir;

    private static InputIdentity keyboard() {
        return VirtualIdentity.build(List.of("keyboard"), null, null, null, List.of(), List.of(), List.of(), List.of(),
                List.of(), false);
    }

    private static void send(SocketChannel c, String text) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8));
        while (b.hasRemaining()) {
            c.write(b);
        }
    }

    @Test
    void jsonLinesArriveAsWholeBatchesAndStatusEventsComeBack() throws Exception {
        Path sock = dir.resolve("events.sock");
        LinkedBlockingQueue<String> got = new LinkedBlockingQueue<>();
        try (VirtualInputSource src = new VirtualInputSource(keyboard(), sock, EventFormat.JSON)) {
            src.start((t, c, v) -> got.add(t + ":" + c + ":" + v));
            try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(sock))) {
                BufferedReader replies = new BufferedReader(new InputStreamReader(Channels.newInputStream(c), StandardCharsets.UTF_8));
                send(c, "{\"code\":\"KEY_B\",\"value\":1}\n");
                assertEquals(null, got.poll(200, TimeUnit.MILLISECONDS), "held until SYN_REPORT");
                send(c, "{\"code\":\"SYN_REPORT\"}\n{\"key\":\"KEY_C\"}\n");
                for (String want : List.of("1:48:1", "0:0:0", "1:46:1", "0:0:0", "1:46:0", "0:0:0")) {
                    assertEquals(want, got.poll(5, TimeUnit.SECONDS));
                }
                send(c, "{\"code\":\"KEY_NOPE\"}\n");
                assertEquals("{\"error\":\"line 4: unknown event code KEY_NOPE\"}", replies.readLine());
                src.statusEvent(VirtioInput.EV_LED, 1, 1);
                assertEquals("{\"type\":\"EV_LED\",\"code\":\"LED_CAPSL\",\"value\":1}", replies.readLine());
            }
        }
        assertFalse(Files.exists(sock), "socket removed on close");
    }

    @Test
    void rawRecordsWork() throws Exception {
        Path sock = dir.resolve("raw.sock");
        LinkedBlockingQueue<String> got = new LinkedBlockingQueue<>();
        try (VirtualInputSource src = new VirtualInputSource(keyboard(), sock, EventFormat.RAW)) {
            src.start((t, c, v) -> got.add(t + ":" + c + ":" + v));
            try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(sock))) {
                ByteBuffer b = ByteBuffer.allocate(48).order(ByteOrder.nativeOrder());
                b.putLong(0, 1234).putShort(16, (short) 1).putShort(18, (short) 30).putInt(20, 1);
                b.putShort(40, (short) 0).putShort(42, (short) 0).putInt(44, 0);
                // split across writes: records are reassembled
                c.write(b.slice(0, 10));
                Thread.sleep(20);
                c.write(b.slice(10, 38));
                assertEquals("1:30:1", got.poll(5, TimeUnit.SECONDS));
                assertEquals("0:0:0", got.poll(5, TimeUnit.SECONDS));
                src.statusEvent(VirtioInput.EV_LED, 0, 1);
                ByteBuffer in = ByteBuffer.allocate(24).order(ByteOrder.nativeOrder());
                while (in.hasRemaining()) {
                    c.read(in);
                }
                assertEquals(VirtioInput.EV_LED, in.getShort(16));
                assertEquals(1, in.getInt(20));
            }
        }
    }

    @Test
    void aLiveSocketIsRefusedAStaleOneReplaced() throws Exception {
        Path sock = dir.resolve("busy.sock");
        try (VirtualInputSource first = new VirtualInputSource(keyboard(), sock, EventFormat.JSON)) {
            IOException e = assertThrows(IOException.class, () -> new VirtualInputSource(keyboard(), sock, EventFormat.JSON));
            assertEquals("event socket " + sock + " is in use by another process", e.getMessage());
        }
        try (var stale = java.nio.channels.ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            stale.bind(UnixDomainSocketAddress.of(sock));
        } // closed without unlinking: a stale socket file
        assertTrue(Files.exists(sock));
        try (VirtualInputSource again = new VirtualInputSource(keyboard(), sock, EventFormat.JSON)) {
            assertTrue(Files.exists(sock));
        }
    }

    @Test
    void presetsAndExplicitCodes() {
        InputIdentity kbd = keyboard();
        assertEquals("vhost-appliance virtual keyboard", kbd.name());
        assertTrue(kbd.supports(VirtioInput.EV_KEY, 30));
        assertTrue(kbd.supports(VirtioInput.EV_LED, 1));
        assertTrue(kbd.supportsType(VirtioInput.EV_REP));
        InputIdentity tablet = VirtualIdentity.build(List.of("tablet"), "My Tablet", "S1", "3:56a:374:110", List.of("KEY_A"),
                List.of(), List.of("ABS_PRESSURE:0:255:1:2:3"), List.of(), List.of("INPUT_PROP_DIRECT"), false);
        assertEquals("My Tablet", tablet.name());
        assertEquals(32767, tablet.axis(0).max());
        assertEquals(3, tablet.axis(0x18).resolution());
        assertTrue(tablet.supports(VirtioInput.EV_KEY, 30));
        assertFalse(tablet.supportsType(VirtioInput.EV_REP));
        byte[] u = new byte[128];
        assertEquals(8, tablet.select(VirtioInput.CFG_ID_DEVIDS, 0, u));
        assertEquals(0x56a, ByteBuffer.wrap(u).order(ByteOrder.LITTLE_ENDIAN).getShort(2));
        InputIdentity touch = VirtualIdentity.build(List.of("touchscreen"), null, null, null, List.of(), List.of(),
                List.of(), List.of(), List.of(), false);
        assertEquals(9, touch.axis(0x2f).max(), "ABS_MT_SLOT: 10 slots");
    }

    @Test
    void badVirtualOptionsSayWhy() {
        assertEquals("unknown preset \"joystick\" (one of keyboard, mouse, tablet, touchscreen)", assertThrows(
                IllegalArgumentException.class, () -> VirtualIdentity.build(List.of("joystick"), null, null, null, List.of(),
                        List.of(), List.of(), List.of(), List.of(), false)).getMessage());
        assertEquals("axis \"ABS_X:0\" is not AXIS:MIN:MAX[:FUZZ[:FLAT[:RESOLUTION]]]", assertThrows(
                IllegalArgumentException.class, () -> VirtualIdentity.build(List.of(), null, null, null, List.of(),
                        List.of(), List.of("ABS_X:0"), List.of(), List.of(), false)).getMessage());
        assertEquals("axis minimum 10 is above its maximum 0", assertThrows(
                IllegalArgumentException.class, () -> VirtualIdentity.build(List.of(), null, null, null, List.of(),
                        List.of(), List.of("ABS_X:10:0"), List.of(), List.of(), false)).getMessage());
        assertEquals("REL_X is not a code of EV_KEY", assertThrows(
                IllegalArgumentException.class, () -> VirtualIdentity.build(List.of(), null, null, null, List.of("REL_X"),
                        List.of(), List.of(), List.of(), List.of(), false)).getMessage());
        assertEquals("ids \"1:2:3\" is not BUSTYPE:VENDOR:PRODUCT:VERSION (hexadecimal)", assertThrows(
                IllegalArgumentException.class, () -> VirtualIdentity.build(List.of(), null, null, "1:2:3", List.of(),
                        List.of(), List.of(), List.of(), List.of(), false)).getMessage());
    }
}

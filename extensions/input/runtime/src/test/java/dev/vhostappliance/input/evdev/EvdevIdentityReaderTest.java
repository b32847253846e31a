package dev.vhostappliance.input.evdev;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostappliance.input.InputIdentity;
import dev.vhostappliance.input.VirtioInput;
import dev.vhostappliance.libc.Errno;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The evdev ioctl layer without a device (this kernel can create none): request numbers against the values
 * the C headers give (printed by a C program on x86-64 with linux/input.h), and identity parsing from
 * replies recorded from a USB tablet's evdev node.
 */
class EvdevIdentityReaderTest {

    @Test
    void requestNumbersMatchLinuxInputH() {
        assertEquals(0x80084502L, EvdevIoctl.eviocgid());
        assertEquals(0x81004506L, EvdevIoctl.eviocgname(256));
        assertEquals(0x81004508L, EvdevIoctl.eviocguniq(256));
        assertEquals(0x80804509L, EvdevIoctl.eviocgprop(128));
        assertEquals(0x80804520L, EvdevIoctl.eviocgbit(0, 128));
        assertEquals(0x80804521L, EvdevIoctl.eviocgbit(VirtioInput.EV_KEY, 128));
        assertEquals(0x80184540L, EvdevIoctl.eviocgabs(0));
        assertEquals(0x8018456fL, EvdevIoctl.eviocgabs(0x2f)); // ABS_MT_SLOT
        assertEquals(0x40044590L, EvdevIoctl.eviocgrab());
        assertThrows(IllegalArgumentException.class, () -> EvdevIoctl.eviocgname(1 << 14));
    }

    /** Replies keyed by request number, as the kernel would fill the buffer; the result is the byte count. */
    private static final class Recorded implements EvdevIdentityReader.Ioctl {
        final Map<Long, byte[]> replies = new HashMap<>();
        int calls;

        Recorded put(long request, byte[] reply) {
            replies.put(request, reply);
            return this;
        }

        @Override
        public int call(long request, MemorySegment arg) {
            calls++;
            byte[] r = replies.get(request);
            if (r == null) {
                return -Errno.EINVAL;
            }
            int n = (int) Math.min(r.length, arg.byteSize());
            MemorySegment.copy(r, 0, arg, ValueLayout.JAVA_BYTE, 0, n);
            return n;
        }
    }

    private static byte[] bits(int... set) {
        int max = 0;
        for (int b : set) {
            max = Math.max(max, b);
        }
        byte[] out = new byte[max / 8 + 1];
        for (int b : set) {
            out[b / 8] |= (byte) (1 << (b % 8));
        }
        return out;
    }

    private static byte[] absinfo(int value, int min, int max, int fuzz, int flat, int res) {
        return ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN).putInt(value).putInt(min).putInt(max).putInt(fuzz)
                .putInt(flat).putInt(res).array();
    }

    @Test
    void aRecordedTabletBecomesItsIdentity() {
        // "Wacom Intuos S Pen": EV_SYN, EV_KEY, EV_ABS, EV_MSC; BTN_TOOL_PEN, BTN_TOUCH, BTN_STYLUS; ABS_X/Y/PRESSURE
        Recorded r = new Recorded()
                .put(EvdevIoctl.eviocgname(256), "Wacom Intuos S Pen\0".getBytes(StandardCharsets.UTF_8))
                .put(EvdevIoctl.eviocguniq(256), "8BQ00A1000001\0".getBytes(StandardCharsets.UTF_8))
                .put(EvdevIoctl.eviocgid(), ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putShort((short) 3)
                        .putShort((short) 0x056a).putShort((short) 0x0374).putShort((short) 0x0110).array())
                .put(EvdevIoctl.eviocgprop(128), bits(0)) // INPUT_PROP_POINTER
                .put(EvdevIoctl.eviocgbit(0, 128), bits(VirtioInput.EV_SYN, VirtioInput.EV_KEY, VirtioInput.EV_ABS,
                        VirtioInput.EV_MSC))
                .put(EvdevIoctl.eviocgbit(VirtioInput.EV_KEY, 128), bits(0x140, 0x14a, 0x14b))
                .put(EvdevIoctl.eviocgbit(VirtioInput.EV_ABS, 128), bits(0, 1, 0x18))
                .put(EvdevIoctl.eviocgbit(VirtioInput.EV_MSC, 128), bits(0)) // MSC_SERIAL
                .put(EvdevIoctl.eviocgabs(0), absinfo(1200, 0, 15200, 4, 0, 100))
                .put(EvdevIoctl.eviocgabs(1), absinfo(800, 0, 9500, 4, 0, 100))
                .put(EvdevIoctl.eviocgabs(0x18), absinfo(0, 0, 4095, 0, 0, 0));
        InputIdentity id = EvdevIdentityReader.read(r, "/dev/input/event7");
        assertEquals("Wacom Intuos S Pen", id.name());
        assertEquals("8BQ00A1000001", id.serial());
        assertTrue(id.supports(VirtioInput.EV_KEY, 0x14a));
        assertTrue(id.supports(VirtioInput.EV_MSC, 0));
        assertFalse(id.supports(VirtioInput.EV_REL, 0));
        assertEquals(15200, id.axis(0).max());
        assertEquals(100, id.axis(0).resolution());
        assertEquals(4095, id.axis(0x18).max());
        byte[] union = new byte[128];
        assertEquals(8, id.select(VirtioInput.CFG_ID_DEVIDS, 0, union));
        assertEquals(0x056a, ByteBuffer.wrap(union).order(ByteOrder.LITTLE_ENDIAN).getShort(2));
        assertEquals(20, id.select(VirtioInput.CFG_ABS_INFO, 1, union));
        assertEquals(9500, ByteBuffer.wrap(union).order(ByteOrder.LITTLE_ENDIAN).getInt(4));
    }

    @Test
    void anAxisWhoseRangeCannotBeReadIsLeftOutAndANodeWithoutTypesIsRefused() {
        Recorded r = new Recorded().put(EvdevIoctl.eviocgname(256), "x\0".getBytes(StandardCharsets.UTF_8))
                .put(EvdevIoctl.eviocgbit(0, 128), bits(VirtioInput.EV_ABS))
                .put(EvdevIoctl.eviocgbit(VirtioInput.EV_ABS, 128), bits(0, 1))
                .put(EvdevIoctl.eviocgabs(0), absinfo(0, 0, 10, 0, 0, 0));
        InputIdentity id = EvdevIdentityReader.read(r, "/dev/input/event1");
        assertTrue(id.supports(VirtioInput.EV_ABS, 0));
        assertFalse(id.supports(VirtioInput.EV_ABS, 1), "no EVIOCGABS reply: not offered to the guest");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> EvdevIdentityReader.read(new Recorded(), "/dev/null"));
        assertTrue(e.getMessage().contains("no event types"), e.getMessage());
    }
}

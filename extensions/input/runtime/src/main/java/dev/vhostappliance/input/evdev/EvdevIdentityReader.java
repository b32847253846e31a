package dev.vhostappliance.input.evdev;

import dev.vhostappliance.input.AbsInfo;
import dev.vhostappliance.input.InputIdentity;
import dev.vhostappliance.input.VirtioInput;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;

/**
 * Reads an evdev device's identity and capabilities with the EVIOCG* ioctls: name, unique id (our serial),
 * bus/vendor/product/version, properties, the codes of each event type and every axis's range. The ioctl is
 * a parameter so recorded replies can stand in for a device (this build machine's kernel creates none).
 */
public final class EvdevIdentityReader {

    /** One ioctl call: fills arg, returns the kernel's result or -errno. */
    @FunctionalInterface
    public interface Ioctl {
        int call(long request, MemorySegment arg);
    }

    private static final int STRING_BYTES = 256;
    private static final int BITMAP_BYTES = VirtioInput.CONFIG_UNION_BYTES;

    private EvdevIdentityReader() {
    }

    public static InputIdentity read(Ioctl ioctl, String path) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(STRING_BYTES, 8);
            String name = string(ioctl, EvdevIoctl.eviocgname(STRING_BYTES), buf);
            InputIdentity.Builder b = InputIdentity.builder(name == null ? path : name);
            b.serial(string(ioctl, EvdevIoctl.eviocguniq(STRING_BYTES), buf));
            buf.fill((byte) 0);
            if (ioctl.call(EvdevIoctl.eviocgid(), buf) >= 0) {
                b.ids(u16(buf, 0), u16(buf, 2), u16(buf, 4), u16(buf, 6));
            }
            for (int p : bits(ioctl, EvdevIoctl.eviocgprop(BITMAP_BYTES), buf, VirtioInput.INPUT_PROP_CNT)) {
                b.property(p);
            }
            int[] types = bits(ioctl, EvdevIoctl.eviocgbit(0, BITMAP_BYTES), buf, VirtioInput.EV_CNT);
            if (types.length == 0) {
                throw new IllegalArgumentException(path + " reports no event types (not an evdev device?)");
            }
            for (int type : types) {
                if (type == VirtioInput.EV_SYN) {
                    continue;
                }
                b.type(type);
                for (int code : bits(ioctl, EvdevIoctl.eviocgbit(type, BITMAP_BYTES), buf, VirtioInput.MAX_CODES)) {
                    if (type == VirtioInput.EV_ABS) {
                        if (code >= VirtioInput.ABS_CNT) {
                            continue;
                        }
                        buf.fill((byte) 0);
                        if (ioctl.call(EvdevIoctl.eviocgabs(code), buf) < 0) {
                            continue; // an axis we cannot describe is left out rather than guessed
                        }
                        b.axis(code, new AbsInfo(s32(buf, 4), s32(buf, 8), s32(buf, 12), s32(buf, 16), s32(buf, 20)));
                    } else {
                        b.code(type, code);
                    }
                }
            }
            return b.build();
        }
    }

    private static String string(Ioctl ioctl, long request, MemorySegment buf) {
        buf.fill((byte) 0);
        int rc = ioctl.call(request, buf);
        if (rc <= 0) {
            return null;
        }
        byte[] b = buf.asSlice(0, Math.min(rc, STRING_BYTES)).toArray(ValueLayout.JAVA_BYTE);
        int n = 0;
        while (n < b.length && b[n] != 0) {
            n++;
        }
        return new String(b, 0, n, StandardCharsets.UTF_8);
    }

    /** The set bits of a bitmap ioctl (result: bytes written), below limit. */
    private static int[] bits(Ioctl ioctl, long request, MemorySegment buf, int limit) {
        buf.fill((byte) 0);
        int rc = ioctl.call(request, buf);
        if (rc <= 0) {
            return new int[0];
        }
        int bytes = Math.min(rc, BITMAP_BYTES);
        return java.util.BitSet.valueOf(buf.asSlice(0, bytes).toArray(ValueLayout.JAVA_BYTE)).stream()
                .filter(bit -> bit < limit).toArray();
    }

    private static int u16(MemorySegment m, long off) {
        return m.get(ValueLayout.JAVA_SHORT_UNALIGNED, off) & 0xffff;
    }

    private static int s32(MemorySegment m, long off) {
        return m.get(ValueLayout.JAVA_INT_UNALIGNED, off);
    }
}

package dev.vhostappliance.input.evdev;

/**
 * The evdev ioctl request numbers (linux/input.h), encoded as the kernel's _IOC macro does on x86-64 and
 * arm64: direction in bits 30-31, argument size in bits 16-29, type 'E' in bits 8-15, number in bits 0-7.
 */
public final class EvdevIoctl {
    static final int IOC_WRITE = 1;
    static final int IOC_READ = 2;
    static final int TYPE = 'E';
    /** struct input_id: four u16. */
    public static final int INPUT_ID_BYTES = 8;
    /** struct input_absinfo: value, minimum, maximum, fuzz, flat, resolution (s32 each). */
    public static final int ABSINFO_BYTES = 24;
    /** struct input_event on 64-bit Linux: struct timeval (16), u16 type, u16 code, s32 value. */
    public static final int EVENT_BYTES = 24;

    private EvdevIoctl() {
    }

    static long ioc(int dir, int nr, int size) {
        if (size < 0 || size >= 1 << 14) {
            throw new IllegalArgumentException("ioctl argument size " + size);
        }
        return ((long) dir << 30) | ((long) size << 16) | (TYPE << 8) | nr;
    }

    public static long eviocgid() {
        return ioc(IOC_READ, 0x02, INPUT_ID_BYTES);
    }

    public static long eviocgname(int len) {
        return ioc(IOC_READ, 0x06, len);
    }

    public static long eviocguniq(int len) {
        return ioc(IOC_READ, 0x08, len);
    }

    public static long eviocgprop(int len) {
        return ioc(IOC_READ, 0x09, len);
    }

    /** EVIOCGBIT(type, len): the codes of an event type; type 0 gives the bitmap of types. */
    public static long eviocgbit(int type, int len) {
        return ioc(IOC_READ, 0x20 + type, len);
    }

    public static long eviocgabs(int axis) {
        return ioc(IOC_READ, 0x40 + axis, ABSINFO_BYTES);
    }

    public static long eviocgrab() {
        return ioc(IOC_WRITE, 0x90, Integer.BYTES);
    }
}

package dev.vhostappliance.input;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.BitSet;
import java.util.Map;
import java.util.TreeMap;

/**
 * What the guest learns about an input device through the virtio-input config space: name, serial, ids,
 * properties, the codes of every event type and the range of every absolute axis. Immutable; built from an
 * evdev device's ioctls or from a virtual source's configuration.
 */
public final class InputIdentity {
    private final String name;
    private final String serial;
    private final short[] ids; // bustype, vendor, product, version
    private final BitSet properties;
    private final BitSet[] codes = new BitSet[VirtioInput.EV_CNT];
    private final Map<Integer, AbsInfo> axes;

    private InputIdentity(Builder b) {
        this.name = b.name;
        this.serial = b.serial;
        this.ids = b.ids.clone();
        this.properties = (BitSet) b.properties.clone();
        for (int t = 0; t < codes.length; t++) {
            codes[t] = b.codes[t] == null ? null : (BitSet) b.codes[t].clone();
        }
        this.axes = new TreeMap<>(b.axes);
    }

    public String name() {
        return name;
    }

    public String serial() {
        return serial;
    }

    public boolean supports(int type, int code) {
        return type >= 0 && type < codes.length && codes[type] != null && codes[type].get(code);
    }

    public boolean supportsType(int type) {
        return type >= 0 && type < codes.length && codes[type] != null;
    }

    public AbsInfo axis(int code) {
        return axes.get(code);
    }

    /**
     * Fills the config union for selector/subsel (the union is zeroed first) and returns the size byte: the
     * number of meaningful bytes, 0 for anything this device does not have (an unknown selector included).
     */
    public int select(int select, int subsel, byte[] union) {
        Arrays.fill(union, (byte) 0);
        return switch (select) {
            case VirtioInput.CFG_ID_NAME -> subsel == 0 ? string(name, union) : 0;
            case VirtioInput.CFG_ID_SERIAL -> subsel == 0 ? string(serial, union) : 0;
            case VirtioInput.CFG_ID_DEVIDS -> {
                if (subsel != 0) {
                    yield 0;
                }
                ByteBuffer b = ByteBuffer.wrap(union).order(ByteOrder.LITTLE_ENDIAN);
                for (int i = 0; i < 4; i++) {
                    b.putShort(i * 2, ids[i]);
                }
                yield VirtioInput.DEVIDS_BYTES;
            }
            case VirtioInput.CFG_PROP_BITS -> subsel == 0 ? bitmap(properties, union) : 0;
            case VirtioInput.CFG_EV_BITS -> {
                if (subsel >= codes.length || codes[subsel] == null) {
                    yield 0;
                }
                // A type with no codes of its own (EV_REP with none listed) still says it exists: one zero byte.
                yield Math.max(1, bitmap(codes[subsel], union));
            }
            case VirtioInput.CFG_ABS_INFO -> {
                AbsInfo a = supports(VirtioInput.EV_ABS, subsel) ? axes.get(subsel) : null;
                if (a == null) {
                    yield 0;
                }
                ByteBuffer b = ByteBuffer.wrap(union).order(ByteOrder.LITTLE_ENDIAN);
                b.putInt(0, a.min()).putInt(4, a.max()).putInt(8, a.fuzz()).putInt(12, a.flat()).putInt(16, a.resolution());
                yield VirtioInput.ABSINFO_BYTES;
            }
            default -> 0;
        };
    }

    private static int string(String s, byte[] union) {
        if (s == null || s.isEmpty()) {
            return 0;
        }
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        int n = Math.min(b.length, union.length);
        System.arraycopy(b, 0, union, 0, n);
        return n;
    }

    private static int bitmap(BitSet bits, byte[] union) {
        byte[] b = bits.toByteArray(); // little-endian bit order, trailing zero bytes dropped
        int n = Math.min(b.length, union.length);
        System.arraycopy(b, 0, union, 0, n);
        return n;
    }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder("\"").append(name).append('"');
        for (int t = 0; t < codes.length; t++) {
            if (codes[t] != null) {
                s.append(' ').append(InputEventCodes.typeName(t)).append('(').append(codes[t].cardinality()).append(')');
            }
        }
        return s.toString();
    }

    public static Builder builder(String name) {
        return new Builder(name);
    }

    /** Collects identity and capabilities; code numbers are checked against what a config bitmap can hold. */
    public static final class Builder {
        private String name;
        private String serial = "";
        private final short[] ids = new short[4];
        private final BitSet properties = new BitSet();
        private final BitSet[] codes = new BitSet[VirtioInput.EV_CNT];
        private final Map<Integer, AbsInfo> axes = new TreeMap<>();

        private Builder(String name) {
            this.name = name;
        }

        public Builder name(String n) {
            this.name = n;
            return this;
        }

        public Builder serial(String s) {
            this.serial = s == null ? "" : s;
            return this;
        }

        public Builder ids(int bustype, int vendor, int product, int version) {
            ids[0] = (short) bustype;
            ids[1] = (short) vendor;
            ids[2] = (short) product;
            ids[3] = (short) version;
            return this;
        }

        public Builder property(int p) {
            if (p < 0 || p >= VirtioInput.INPUT_PROP_CNT) {
                throw new IllegalArgumentException("input property " + p + " out of range");
            }
            properties.set(p);
            return this;
        }

        /** Declares an event type without codes (EV_REP for autorepeat, EV_SYN). */
        public Builder type(int type) {
            if (type < 0 || type >= VirtioInput.EV_CNT) {
                throw new IllegalArgumentException("event type " + type + " out of range");
            }
            if (codes[type] == null) {
                codes[type] = new BitSet();
            }
            return this;
        }

        public Builder code(int type, int code) {
            type(type);
            if (code < 0 || code >= VirtioInput.MAX_CODES) {
                throw new IllegalArgumentException("event code " + code + " of " + InputEventCodes.typeName(type)
                        + " out of range 0.." + (VirtioInput.MAX_CODES - 1));
            }
            codes[type].set(code);
            return this;
        }

        public Builder axis(int code, AbsInfo info) {
            if (code < 0 || code >= VirtioInput.ABS_CNT) {
                throw new IllegalArgumentException("absolute axis " + code + " out of range");
            }
            code(VirtioInput.EV_ABS, code);
            axes.put(code, info);
            return this;
        }

        public InputIdentity build() {
            type(VirtioInput.EV_SYN);
            codes[VirtioInput.EV_SYN].set(VirtioInput.SYN_REPORT);
            for (int t = 0; t < codes.length; t++) {
                if (codes[t] != null && t != VirtioInput.EV_SYN) {
                    codes[VirtioInput.EV_SYN].set(t); // EV_SYN's bitmap lists the types, as evdev reports it
                }
            }
            for (int code = codes[VirtioInput.EV_ABS] == null ? -1 : codes[VirtioInput.EV_ABS].nextSetBit(0); code >= 0;
                    code = codes[VirtioInput.EV_ABS].nextSetBit(code + 1)) {
                if (!axes.containsKey(code)) {
                    throw new IllegalArgumentException("absolute axis " + InputEventCodes.codeName(VirtioInput.EV_ABS, code)
                            + " has no range");
                }
            }
            return new InputIdentity(this);
        }
    }
}

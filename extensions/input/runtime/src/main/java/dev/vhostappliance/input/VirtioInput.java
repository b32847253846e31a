package dev.vhostappliance.input;

/** virtio-input constants (virtio spec "Input Device", linux/virtio_input.h) and the evdev ones it reuses. */
public final class VirtioInput {
    public static final int VIRTIO_ID_INPUT = 18;
    public static final int EVENTQ = 0;
    public static final int STATUSQ = 1;

    // config space selectors
    public static final int CFG_UNSET = 0x00;
    public static final int CFG_ID_NAME = 0x01;
    public static final int CFG_ID_SERIAL = 0x02;
    public static final int CFG_ID_DEVIDS = 0x03;
    public static final int CFG_PROP_BITS = 0x10;
    public static final int CFG_EV_BITS = 0x11;
    public static final int CFG_ABS_INFO = 0x12;

    /** struct virtio_input_config: select, subsel, size, 5 reserved, then a 128-byte union. */
    public static final int CONFIG_BYTES = 136;
    public static final int CONFIG_UNION_OFFSET = 8;
    public static final int CONFIG_UNION_BYTES = 128;
    /** struct virtio_input_event: le16 type, le16 code, le32 value. */
    public static final int EVENT_BYTES = 8;
    public static final int ABSINFO_BYTES = 20;
    public static final int DEVIDS_BYTES = 8;

    // linux/input-event-codes.h
    public static final int EV_SYN = 0x00;
    public static final int EV_KEY = 0x01;
    public static final int EV_REL = 0x02;
    public static final int EV_ABS = 0x03;
    public static final int EV_MSC = 0x04;
    public static final int EV_SW = 0x05;
    public static final int EV_LED = 0x11;
    public static final int EV_SND = 0x12;
    public static final int EV_REP = 0x14;
    public static final int EV_FF = 0x15;
    public static final int EV_CNT = 0x20;
    public static final int SYN_REPORT = 0;
    public static final int SYN_DROPPED = 3;
    public static final int INPUT_PROP_CNT = 0x20;
    /** Codes per type a virtio-input bitmap can describe (128 bytes). */
    public static final int MAX_CODES = CONFIG_UNION_BYTES * 8;
    public static final int ABS_CNT = 0x40;

    private VirtioInput() {
    }
}

package dev.vhostappliance.block.request;

/** virtio-blk constants (virtio_blk.h). */
public final class VirtioBlk {
    public static final int VIRTIO_ID_BLOCK = 2;

    public static final int F_SIZE_MAX = 1;
    public static final int F_SEG_MAX = 2;
    public static final int F_RO = 5;
    public static final int F_BLK_SIZE = 6;
    public static final int F_FLUSH = 9;
    public static final int F_TOPOLOGY = 10;
    public static final int F_CONFIG_WCE = 11;
    public static final int F_MQ = 12;
    public static final int F_DISCARD = 13;
    public static final int F_WRITE_ZEROES = 14;

    public static final int T_IN = 0;
    public static final int T_OUT = 1;
    public static final int T_FLUSH = 4;
    public static final int T_GET_ID = 8;
    public static final int T_DISCARD = 11;
    public static final int T_WRITE_ZEROES = 13;

    public static final byte S_OK = 0;
    public static final byte S_IOERR = 1;
    public static final byte S_UNSUPP = 2;

    public static final int SECTOR = 512;
    public static final int ID_BYTES = 20;
    public static final int HEADER_BYTES = 16;
    /** Bytes of struct virtio_blk_config we expose (up to write_zeroes_may_unmap and its padding). */
    public static final int CONFIG_BYTES = 60;

    private VirtioBlk() {
    }
}

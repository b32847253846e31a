package dev.vhostappliance.block;

/** virtio-blk constants (virtio_blk.h). */
final class VirtioBlk {
    static final int VIRTIO_ID_BLOCK = 2;

    static final int F_SIZE_MAX = 1;
    static final int F_SEG_MAX = 2;
    static final int F_RO = 5;
    static final int F_BLK_SIZE = 6;
    static final int F_FLUSH = 9;
    static final int F_TOPOLOGY = 10;
    static final int F_CONFIG_WCE = 11;
    static final int F_MQ = 12;
    static final int F_DISCARD = 13;
    static final int F_WRITE_ZEROES = 14;

    static final int T_IN = 0;
    static final int T_OUT = 1;
    static final int T_FLUSH = 4;
    static final int T_GET_ID = 8;
    static final int T_DISCARD = 11;
    static final int T_WRITE_ZEROES = 13;

    static final byte S_OK = 0;
    static final byte S_IOERR = 1;
    static final byte S_UNSUPP = 2;

    static final int SECTOR = 512;
    static final int ID_BYTES = 20;
    static final int HEADER_BYTES = 16;
    /** Bytes of struct virtio_blk_config we expose (up to write_zeroes_may_unmap and its padding). */
    static final int CONFIG_BYTES = 60;

    private VirtioBlk() {
    }
}

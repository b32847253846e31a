package dev.vhostappliance.block.export.fuse;

/** The numbers of the Linux FUSE protocol (linux/fuse.h) this export speaks, all little-endian host order. */
final class Fuse {
    private Fuse() {
    }

    static final int KERNEL_VERSION = 7;
    /** The protocol minor we speak at most: 7.31 has everything used here (max_pages, FOPEN_DIRECT_IO, LSEEK). */
    static final int KERNEL_MINOR = 31;

    static final int IN_HEADER = 40;
    static final int OUT_HEADER = 16;

    static final int LOOKUP = 1;
    static final int FORGET = 2;
    static final int GETATTR = 3;
    static final int SETATTR = 4;
    static final int OPEN = 14;
    static final int READ = 15;
    static final int WRITE = 16;
    static final int STATFS = 17;
    static final int RELEASE = 18;
    static final int FSYNC = 20;
    static final int FLUSH = 25;
    static final int INIT = 26;
    static final int INTERRUPT = 36;
    static final int DESTROY = 38;
    static final int BATCH_FORGET = 42;
    static final int FALLOCATE = 43;
    static final int LSEEK = 46;

    static final int ASYNC_READ = 1;
    static final int BIG_WRITES = 1 << 5;
    static final int MAX_PAGES = 1 << 22;
    static final int FOPEN_DIRECT_IO = 1;

    static final int FATTR_MODE = 1;
    static final int FATTR_UID = 1 << 1;
    static final int FATTR_GID = 1 << 2;
    static final int FATTR_SIZE = 1 << 3;

    static final int S_IFREG = 0100000;
    static final int ROOT_ID = 1;

    static final int FALLOC_FL_KEEP_SIZE = 1;
    static final int FALLOC_FL_PUNCH_HOLE = 2;
    static final int FALLOC_FL_ZERO_RANGE = 0x10;
    static final int SEEK_DATA = 3;
    static final int SEEK_HOLE = 4;

    /** Largest write the kernel sends us (and read it asks for): 1 MiB. */
    static final int MAX_WRITE = 1 << 20;
    /** A request buffer holds the largest write and its headers (the kernel wants at least 8 KiB). */
    static final int REQUEST_BUFFER = MAX_WRITE + 4096;
}

package dev.vhostappliance.block.qcow2;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * The qcow2 header and its extensions (QEMU's docs/interop/qcow2.txt), parsed and checked from the image's
 * first cluster. Everything a hostile image can put here is checked before any of it is used: field ranges,
 * alignment, tables inside the file and clear of the header, feature bits we do not know. The extensions are
 * only read: the image keeps them byte for byte (we never rewrite the extension area).
 */
public record Qcow2Header(
        int version,
        int clusterBits,
        long size,
        int l1Size,
        long l1TableOffset,
        long refcountTableOffset,
        int refcountTableClusters,
        int nbSnapshots,
        long snapshotsOffset,
        long incompatibleFeatures,
        long compatibleFeatures,
        long autoclearFeatures,
        int refcountOrder,
        int headerLength,
        int compressionType,
        String backingFile,
        String backingFormat,
        boolean hasBitmaps) {

    public static final int MAGIC = 0x514649fb; // "QFI\xfb"
    static final ValueLayout.OfLong BE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    static final ValueLayout.OfInt BE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    public static final long INCOMPAT_DIRTY = 1;
    public static final long INCOMPAT_CORRUPT = 2;
    public static final long INCOMPAT_DATA_FILE = 4;
    public static final long INCOMPAT_COMPRESSION = 8;
    public static final long INCOMPAT_EXTL2 = 16;
    static final long INCOMPAT_KNOWN = 31;
    public static final long COMPAT_LAZY_REFCOUNTS = 1;
    public static final long AUTOCLEAR_BITMAPS = 1;

    /** Header field offsets we write back. */
    static final int OFF_SIZE = 24;
    static final int OFF_L1_SIZE = 36;
    static final int OFF_L1_OFFSET = 40;
    static final int OFF_REFTABLE_OFFSET = 48;
    static final int OFF_REFTABLE_CLUSTERS = 56;
    static final int OFF_INCOMPATIBLE = 72;

    static final int EXT_END = 0;
    static final int EXT_BACKING_FORMAT = 0xe2792aca;
    static final int EXT_FEATURE_NAMES = 0x6803f857;
    static final int EXT_BITMAPS = 0x23852875;
    static final int EXT_CRYPTO = 0x0537be77;
    static final int EXT_DATA_FILE = 0x44415441;

    /** QEMU's implementation limits: a 32 MiB L1 table, an 8 MiB refcount table, 2 MiB clusters. */
    public static final long MAX_L1_BYTES = 32L << 20;
    public static final long MAX_REFTABLE_BYTES = 8L << 20;
    public static final int MIN_CLUSTER_BITS = 9;
    public static final int MAX_CLUSTER_BITS = 21;
    /** Host offsets are 56 bits (bits 9-55 of an entry). */
    public static final long MAX_HOST_OFFSET = 1L << 56;

    public int clusterSize() {
        return 1 << clusterBits;
    }

    public int refcountBits() {
        return 1 << refcountOrder;
    }

    public boolean extendedL2() {
        return (incompatibleFeatures & INCOMPAT_EXTL2) != 0;
    }

    public boolean dirty() {
        return (incompatibleFeatures & INCOMPAT_DIRTY) != 0;
    }

    public boolean corrupt() {
        return (incompatibleFeatures & INCOMPAT_CORRUPT) != 0;
    }

    public boolean lazyRefcounts() {
        return (compatibleFeatures & COMPAT_LAZY_REFCOUNTS) != 0;
    }

    /** Bytes of one L2 entry (16 with extended L2 entries: entry and subcluster bitmap). */
    public int l2EntryBytes() {
        return extendedL2() ? 16 : 8;
    }

    /** Guest clusters one L2 table maps. */
    public int l2Entries() {
        return clusterSize() / l2EntryBytes();
    }

    /** True if start (the image's first bytes) begins with the qcow2 magic. */
    public static boolean hasMagic(MemorySegment start) {
        return start.byteSize() >= 4 && start.get(BE_INT, 0) == MAGIC;
    }

    /** The cluster bits of the image whose first 24 bytes or more start holds: qcow2 magic, 512 B to 2 MiB clusters. */
    static int clusterBits(MemorySegment start) throws Qcow2FormatException {
        if (!hasMagic(start)) {
            throw new Qcow2FormatException("image is not in qcow2 format");
        }
        int clusterBits = start.get(BE_INT, 20);
        if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
            throw new Qcow2FormatException("unsupported cluster size: 2^" + Integer.toUnsignedString(clusterBits)
                    + " (512 B to 2 MiB are)");
        }
        return clusterBits;
    }

    /**
     * Parses the header at the start of first (the image's first cluster, or as much of it as the file has),
     * checked against an image file of fileSize bytes.
     */
    public static Qcow2Header parse(MemorySegment first, long fileSize) throws Qcow2FormatException {
        if (first.byteSize() < 72) {
            throw new Qcow2FormatException("image is too small for a qcow2 header");
        }
        int clusterBits = clusterBits(first);
        int version = first.get(BE_INT, 4);
        if (version != 2 && version != 3) {
            throw new Qcow2FormatException("unsupported qcow2 version " + Integer.toUnsignedString(version));
        }
        long backingOffset = first.get(BE_LONG, 8);
        int backingSize = first.get(BE_INT, 16);
        long clusterSize = 1L << clusterBits;
        long size = first.get(BE_LONG, 24);
        int cryptMethod = first.get(BE_INT, 32);
        if (cryptMethod != 0) {
            throw new Qcow2FormatException("encrypted images are not supported (crypt_method " + Integer.toUnsignedString(cryptMethod) + ")");
        }
        int l1Size = first.get(BE_INT, 36);
        long l1Offset = first.get(BE_LONG, 40);
        long reftableOffset = first.get(BE_LONG, 48);
        int reftableClusters = first.get(BE_INT, 56);
        int nbSnapshots = first.get(BE_INT, 60);
        long snapshotsOffset = first.get(BE_LONG, 64);

        long incompatible = 0;
        long compatible = 0;
        long autoclear = 0;
        int refcountOrder = 4;
        int headerLength = 72;
        int compressionType = 0;
        if (version == 3) {
            if (first.byteSize() < 104) {
                throw new Qcow2FormatException("image is too small for a qcow2 v3 header");
            }
            incompatible = first.get(BE_LONG, 72);
            compatible = first.get(BE_LONG, 80);
            autoclear = first.get(BE_LONG, 88);
            refcountOrder = first.get(BE_INT, 96);
            headerLength = first.get(BE_INT, 100);
            if (headerLength < 104 || headerLength % 8 != 0 || headerLength > Math.min(clusterSize, first.byteSize())) {
                throw new Qcow2FormatException("invalid header length " + Integer.toUnsignedString(headerLength));
            }
            if (headerLength > 104) {
                compressionType = first.get(ValueLayout.JAVA_BYTE, 104) & 0xff;
            }
        }
        if ((incompatible & ~INCOMPAT_KNOWN) != 0) {
            throw new Qcow2FormatException("unsupported qcow2 feature(s): incompatible bits 0x"
                    + Long.toHexString(incompatible & ~INCOMPAT_KNOWN) + featureNames(first, headerLength, incompatible & ~INCOMPAT_KNOWN));
        }
        if ((incompatible & INCOMPAT_DATA_FILE) != 0) {
            throw new Qcow2FormatException("images with an external data file are not supported");
        }
        if (((incompatible & INCOMPAT_COMPRESSION) != 0) != (compressionType != 0)) {
            throw new Qcow2FormatException("compression type field and feature bit disagree");
        }
        if (compressionType > 1) {
            throw new Qcow2FormatException("unknown compression type " + compressionType);
        }
        if ((incompatible & INCOMPAT_EXTL2) != 0 && clusterBits < 14) {
            throw new Qcow2FormatException("extended L2 entries need clusters of 16 KiB or more");
        }
        if (refcountOrder < 0 || refcountOrder > 6) {
            throw new Qcow2FormatException("invalid refcount order " + Integer.toUnsignedString(refcountOrder));
        }
        if (size < 0) {
            throw new Qcow2FormatException("invalid virtual size");
        }
        int entryBytes = (incompatible & INCOMPAT_EXTL2) != 0 ? 16 : 8;
        long l2Entries = clusterSize / entryBytes;
        long neededL1 = ceilDiv(ceilDiv(size, clusterSize), l2Entries);
        if (Integer.toUnsignedLong(l1Size) * 8 > MAX_L1_BYTES || neededL1 * 8 > MAX_L1_BYTES) {
            throw new Qcow2FormatException("L1 table too large (" + Integer.toUnsignedString(l1Size) + " entries)");
        }
        if (l1Size < neededL1) {
            throw new Qcow2FormatException("L1 table (" + l1Size + " entries) too small for the virtual size");
        }
        checkTable("L1 table", l1Offset, (long) l1Size * 8, clusterSize, fileSize, l1Size == 0);
        if (reftableClusters <= 0 || (long) reftableClusters * clusterSize > MAX_REFTABLE_BYTES) {
            throw new Qcow2FormatException("invalid refcount table size (" + Integer.toUnsignedString(reftableClusters) + " clusters)");
        }
        checkTable("refcount table", reftableOffset, (long) reftableClusters * clusterSize, clusterSize, fileSize, false);
        if (rangesOverlap(l1Offset, (long) l1Size * 8, reftableOffset, (long) reftableClusters * clusterSize)) {
            throw new Qcow2FormatException("L1 table and refcount table overlap");
        }
        if (nbSnapshots < 0 || nbSnapshots > 65536) {
            throw new Qcow2FormatException("invalid number of snapshots");
        }
        if (nbSnapshots > 0) {
            checkTable("snapshot table", snapshotsOffset, 40, clusterSize, fileSize, false);
        }

        String backingFile = null;
        if (backingOffset != 0) {
            if (backingSize <= 0 || backingSize > 1023 || backingOffset < headerLength
                    || backingOffset + backingSize > Math.min(clusterSize, first.byteSize())) {
                throw new Qcow2FormatException("invalid backing file name location");
            }
            backingFile = utf8(first, backingOffset, backingSize);
        }
        // header extensions, from the end of the header to the backing file name (or the cluster's end)
        String backingFormat = null;
        boolean bitmaps = false;
        long end = backingOffset != 0 ? backingOffset : Math.min(clusterSize, first.byteSize());
        long at = headerLength;
        while (at + 8 <= end) {
            int type = first.get(BE_INT, at);
            long length = Integer.toUnsignedLong(first.get(BE_INT, at + 4));
            if (type == EXT_END) {
                break;
            }
            if (at + 8 + length > end) {
                throw new Qcow2FormatException("header extension 0x" + Integer.toHexString(type) + " overruns the header cluster");
            }
            switch (type) {
                case EXT_BACKING_FORMAT -> backingFormat = utf8(first, at + 8, (int) length);
                case EXT_BITMAPS -> bitmaps = true;
                case EXT_CRYPTO -> throw new Qcow2FormatException("encrypted images are not supported");
                case EXT_DATA_FILE -> throw new Qcow2FormatException("images with an external data file are not supported");
                default -> {
                    // feature names and unknown extensions: kept as they are
                }
            }
            at += 8 + ((length + 7) & ~7L);
        }
        return new Qcow2Header(version, clusterBits, size, l1Size, l1Offset, reftableOffset, reftableClusters,
                nbSnapshots, snapshotsOffset, incompatible, compatible, autoclear, refcountOrder, headerLength,
                compressionType, backingFile, backingFormat, bitmaps);
    }

    private static void checkTable(String what, long offset, long bytes, long clusterSize, long fileSize, boolean empty)
            throws Qcow2FormatException {
        if (empty) {
            return;
        }
        if (offset <= 0 || offset % clusterSize != 0) {
            throw new Qcow2FormatException(what + " offset 0x" + Long.toHexString(offset) + " is invalid"
                    + (offset == 0 ? " (it would overlap the header)" : " (not cluster aligned)"));
        }
        if (offset >= MAX_HOST_OFFSET || bytes > fileSize || offset > fileSize - bytes) {
            throw new Qcow2FormatException(what + " lies past the end of the image");
        }
    }

    static boolean rangesOverlap(long a, long aLen, long b, long bLen) {
        return aLen > 0 && bLen > 0 && a < b + bLen && b < a + aLen;
    }

    static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }

    private static String utf8(MemorySegment s, long offset, int length) {
        byte[] bytes = new byte[length];
        MemorySegment.copy(s, ValueLayout.JAVA_BYTE, offset, bytes, 0, length);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    /** The names the image's feature name table gives the bits (for the error message), if it has them. */
    private static String featureNames(MemorySegment first, int headerLength, long bits) {
        StringBuilder names = new StringBuilder();
        long at = headerLength;
        long end = first.byteSize();
        while (at + 8 <= end) {
            int type = first.get(BE_INT, at);
            long length = Integer.toUnsignedLong(first.get(BE_INT, at + 4));
            if (type == EXT_END || at + 8 + length > end) {
                break;
            }
            if (type == EXT_FEATURE_NAMES) {
                for (long e = at + 8; e + 48 <= at + 8 + length; e += 48) {
                    int bit = first.get(ValueLayout.JAVA_BYTE, e + 1) & 0xff;
                    if (first.get(ValueLayout.JAVA_BYTE, e) == 0 && bit < 64 && (bits & (1L << bit)) != 0) {
                        names.append(names.isEmpty() ? " (" : ", ").append(utf8(first, e + 2, 46).replace("\0", ""));
                    }
                }
            }
            at += 8 + ((length + 7) & ~7L);
        }
        return names.isEmpty() ? "" : names.append(")").toString();
    }
}

package dev.vhostappliance.block.qcow2;

import java.util.BitSet;

/**
 * Where an image's metadata lies: the header cluster, the L1 and refcount tables, and the clusters of every
 * L2 table and refcount block. The overlap checks ask it before any write: data must not land on metadata,
 * one kind of table not on another (QEMU's overlap-check=cached, with all L2 tables and refcount blocks
 * known rather than only the cached ones).
 */
final class MetadataLayout {
    /** What a metadata write is. */
    enum Kind { L1, L2, REFBLOCK }

    private final int clusterBits;
    private final long clusterSize;
    private long l1Offset;
    private long l1Bytes;
    private long reftableOffset;
    private long reftableBytes;
    private final BitSet l2 = new BitSet();
    private final BitSet refblocks = new BitSet();

    MetadataLayout(int clusterBits) {
        this.clusterBits = clusterBits;
        this.clusterSize = 1L << clusterBits;
    }

    /** The L1 table: offset and entries (its clusters are whole). */
    void l1At(long offset, long entries) {
        l1Offset = offset;
        l1Bytes = Qcow2Header.ceilDiv(entries * 8, clusterSize) * clusterSize;
    }

    void reftableAt(long offset, long clusters) {
        reftableOffset = offset;
        reftableBytes = clusters * clusterSize;
    }

    boolean isL2(long offset) {
        long c = offset >>> clusterBits;
        return c <= Integer.MAX_VALUE && l2.get((int) c);
    }

    void addL2(long offset) {
        l2.set(index(offset));
    }

    void addRefblock(long offset) {
        refblocks.set(index(offset));
    }

    void clearRefblocks() {
        refblocks.clear();
    }

    /** A cluster was freed: whatever table it held is gone. */
    void freed(long cluster) {
        if (cluster <= Integer.MAX_VALUE) {
            l2.clear((int) cluster);
        }
    }

    /** Tables lie below 2^31 clusters (the caller refused images with metadata further out). */
    private int index(long offset) {
        return (int) (offset >>> clusterBits);
    }

    /** The header cluster (unless exceptHeader), the L1 table, the refcount table. */
    boolean overlapsFixed(long offset, long len, boolean exceptHeader) {
        return (!exceptHeader && Qcow2Header.rangesOverlap(offset, len, 0, clusterSize))
                || Qcow2Header.rangesOverlap(offset, len, l1Offset, l1Bytes)
                || Qcow2Header.rangesOverlap(offset, len, reftableOffset, reftableBytes);
    }

    /** True if [offset, offset+len) touches any metadata. */
    boolean overlapsAny(long offset, long len) {
        return overlapsFixed(offset, len, false) || anyBit(l2, offset, len) || anyBit(refblocks, offset, len);
    }

    /** True if a metadata write of kind to [offset, offset+len) would land on metadata of another kind. */
    boolean conflicts(Kind kind, long offset, long len) {
        return switch (kind) {
            case L1 -> Qcow2Header.rangesOverlap(offset, len, 0, clusterSize)
                    || Qcow2Header.rangesOverlap(offset, len, reftableOffset, reftableBytes)
                    || anyBit(l2, offset, len) || anyBit(refblocks, offset, len);
            case L2 -> overlapsFixed(offset, len, false) || anyBit(refblocks, offset, len);
            case REFBLOCK -> overlapsFixed(offset, len, false) || anyBit(l2, offset, len);
        };
    }

    private boolean anyBit(BitSet set, long offset, long len) {
        long first = offset >>> clusterBits;
        long last = (offset + len - 1) >>> clusterBits;
        if (first > Integer.MAX_VALUE) {
            return false;
        }
        int next = set.nextSetBit((int) first);
        return next >= 0 && next <= last;
    }
}

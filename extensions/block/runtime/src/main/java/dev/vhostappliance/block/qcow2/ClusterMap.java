package dev.vhostappliance.block.qcow2;

import dev.vhostappliance.libc.Errno;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * Guest cluster to L2 entry: the L1 table in memory and the L2 tables through a write-back cache of slices
 * ({@code l2-cache-entry-size}). A lookup is an index computation and a cache probe, no allocation. An L2
 * table is made on the first entry set under an empty L1 slot; L2 slices reach the disk only after the
 * refcounts they depend on ({@link RefcountTable#makeDurable}, the cache's ordering hook), and the L1 table
 * only after its new L2 tables (the image's flush). Runs under the image's lock.
 */
final class ClusterMap {
    private final Qcow2Image image;
    private final MetadataLayout layout;
    private final RefcountTable refs;
    private final int clusterSize;
    private final int clusterBits;
    private final boolean extendedL2;
    private final int entryBytes;
    /** Guest clusters one L2 table maps. */
    final int l2Entries;
    private final int sliceEntries;
    private final MetadataCache cache;
    private long[] l1;
    private long l1Offset;
    private boolean l1Dirty;

    ClusterMap(Qcow2Image image, MetadataLayout layout, RefcountTable refs, Qcow2Header h, long sliceSize, int slots, Arena arena) {
        this.image = image;
        this.layout = layout;
        this.refs = refs;
        this.clusterSize = h.clusterSize();
        this.clusterBits = h.clusterBits();
        this.extendedL2 = h.extendedL2();
        this.entryBytes = h.l2EntryBytes();
        this.l2Entries = h.l2Entries();
        this.sliceEntries = (int) (sliceSize / entryBytes);
        this.cache = new MetadataCache(new SliceIo(), slots, (int) sliceSize, arena);
    }

    /** Reads the L1 table the header names and checks its entries against the file and the fixed metadata. */
    void load(Qcow2Header h, long fileSize) throws Qcow2FormatException {
        l1Offset = h.l1TableOffset();
        l1 = image.readTable(l1Offset, h.l1Size());
        layout.l1At(l1Offset, l1.length);
        for (int i = 0; i < l1.length; i++) {
            long off = l1[i] & Qcow2Image.OFFSET_MASK;
            if (off == 0) {
                continue;
            }
            if ((l1[i] & ~(Qcow2Image.OFFSET_MASK | Qcow2Image.COPIED)) != 0 || off % clusterSize != 0
                    || off > fileSize - clusterSize || off >>> clusterBits > Integer.MAX_VALUE) {
                throw new Qcow2FormatException("L1 entry " + i + " is invalid (0x" + Long.toHexString(l1[i]) + ")");
            }
            if (layout.overlapsFixed(off, clusterSize, false)) {
                throw new Qcow2FormatException("L2 table of L1 entry " + i + " overlaps the header or a table");
            }
            layout.addL2(off);
        }
    }

    int l1Size() {
        return l1.length;
    }

    long l1Offset() {
        return l1Offset;
    }

    /** The L2 table of L1 entry i, or 0. */
    long l2Table(int i) {
        return l1[i] & Qcow2Image.OFFSET_MASK;
    }

    /** The L2 entry (and, extended, its bitmap in bitmapOut[0]) of guest cluster gc; 0 when unallocated. */
    long entry(long gc, long[] bitmapOut) {
        int l1Index = (int) (gc / l2Entries);
        if (l1Index >= l1.length) {
            throw new Qcow2IoException(-Errno.EIO, "guest cluster past the L1 table");
        }
        long l2Offset = l1[l1Index] & Qcow2Image.OFFSET_MASK;
        if (l2Offset == 0) {
            bitmapOut[0] = 0;
            return 0;
        }
        int l2Index = (int) (gc % l2Entries);
        MemorySegment slice = cache.buffer(cache.get(sliceOffset(l2Offset, l2Index)));
        long at = (long) (l2Index % sliceEntries) * entryBytes;
        bitmapOut[0] = extendedL2 ? slice.get(Qcow2Header.BE_LONG, at + 8) : 0;
        return slice.get(Qcow2Header.BE_LONG, at);
    }

    private long sliceOffset(long l2Offset, int l2Index) {
        return l2Offset + (long) (l2Index / sliceEntries) * sliceEntries * entryBytes;
    }

    /** Sets guest cluster gc's L2 entry (and bitmap), making its L2 table if it has none. */
    void set(long gc, long entry, long bitmap) {
        int l1Index = (int) (gc / l2Entries);
        long l2Offset = l1[l1Index] & Qcow2Image.OFFSET_MASK;
        if (l2Offset == 0) {
            if (entry == 0 && bitmap == 0) {
                return; // already unallocated
            }
            l2Offset = refs.allocate(1);
            if (layout.conflicts(MetadataLayout.Kind.L2, l2Offset, clusterSize)) {
                throw image.corruptNow("new L2 table would overlap metadata");
            }
            layout.addL2(l2Offset);
            for (long s = 0; s < clusterSize; s += (long) sliceEntries * entryBytes) {
                cache.create(l2Offset + s);
            }
            l1[l1Index] = l2Offset | Qcow2Image.COPIED;
            l1Dirty = true;
        } else if ((l1[l1Index] & Qcow2Image.COPIED) == 0) {
            throw new Qcow2IoException(-Errno.EIO, "shared L2 table (internal snapshots) cannot be written");
        }
        int l2Index = (int) (gc % l2Entries);
        int slot = cache.get(sliceOffset(l2Offset, l2Index));
        MemorySegment slice = cache.buffer(slot);
        long at = (long) (l2Index % sliceEntries) * entryBytes;
        slice.set(Qcow2Header.BE_LONG, at, entry);
        if (extendedL2) {
            slice.set(Qcow2Header.BE_LONG, at + 8, bitmap);
        }
        cache.markDirty(slot);
    }

    boolean dirty() {
        return cache.anyDirty() || l1Dirty;
    }

    /** Writes the dirty L2 slices, flushed, then the L1 table if it changed, flushed. */
    void writeBack() {
        if (cache.anyDirty()) {
            cache.writeDirty();
            image.sync();
        }
        if (l1Dirty) {
            writeL1();
            image.sync();
        }
    }

    private void writeL1() {
        image.checkMetadataWrite(MetadataLayout.Kind.L1, l1Offset, (long) l1.length * 8);
        image.writeTable(l1, l1Offset);
        l1Dirty = false;
    }

    /**
     * Grows the L1 table to entries (block_resize): in place when its clusters have room, else a new table,
     * written and flushed before the header points at it; the old one is freed at the next flush. The caller
     * flushed everything before.
     */
    void growL1(int entries) {
        long have = Qcow2Header.ceilDiv((long) l1.length * 8, clusterSize);
        long need = Qcow2Header.ceilDiv((long) entries * 8, clusterSize);
        long[] grown = Arrays.copyOf(l1, entries);
        if (need > have) {
            long newOffset = refs.allocate((int) need);
            refs.makeDurable();
            image.checkMetadataWrite(MetadataLayout.Kind.L1, newOffset, need * clusterSize);
            image.writeTable(grown, newOffset);
            image.sync();
            image.moveL1(newOffset, entries);
            long oldOffset = l1Offset;
            l1 = grown;
            l1Offset = newOffset;
            layout.l1At(newOffset, entries);
            if (have > 0) {
                refs.free(oldOffset >>> clusterBits, have, false);
            }
        } else {
            l1 = grown;
            layout.l1At(l1Offset, entries);
            writeL1();
            image.sync();
            image.moveL1(l1Offset, entries);
        }
    }

    private final class SliceIo implements MetadataCache.Backing {
        @Override
        public int read(MemorySegment buf, long offset) {
            return image.file().readSync(buf, offset);
        }

        @Override
        public int beforeWrite() {
            return refs.makeDurable();
        }

        @Override
        public int write(MemorySegment buf, long offset) {
            image.checkMetadataWrite(MetadataLayout.Kind.L2, offset, buf.byteSize());
            return image.file().writeSync(buf, offset);
        }
    }
}

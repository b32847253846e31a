package dev.vhostappliance.block.qcow2;

import dev.vhostappliance.libc.Errno;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * The refcounts of one image: the refcount table, its blocks (through a write-back cache), cluster
 * allocation, and the clusters given up that wait for the next flush before they are freed. Refcount blocks
 * and the table reach the disk, flushed, before anything that depends on them ({@link #makeDurable}); a
 * missing block is made where it counts itself; a full table grows into a new, larger one past the end of
 * everything it covers. Runs under the image's lock.
 */
final class RefcountTable {
    private final Qcow2Image image;
    private final MetadataLayout layout;
    private final Refcounts codec;
    private final int clusterBits;
    private final int clusterSize;
    private final long blockEntries;
    private final MetadataCache cache;

    private long[] table;
    private long tableOffset;
    private int tableClusters;
    private boolean tableDirty;
    /** Lowest cluster that may be free. */
    private long freeHint;
    /** One past the highest cluster allocated while open (tables not yet written lie beyond the file's end). */
    private long allocatedEnd;
    /** (first cluster, count, punch) triples to free at the next flush. */
    private long[] pendingFrees = new long[64];
    private int pendingFreeCount;

    RefcountTable(Qcow2Image image, MetadataLayout layout, Qcow2Header h, int cacheSlots, Arena arena) {
        this.image = image;
        this.layout = layout;
        this.codec = new Refcounts(h.refcountOrder());
        this.clusterBits = h.clusterBits();
        this.clusterSize = h.clusterSize();
        this.blockEntries = codec.entriesPerBlock(clusterSize);
        this.cache = new MetadataCache(new BlockIo(), cacheSlots, clusterSize, arena);
    }

    /** Reads the table the header names and checks its entries against the file and the other metadata. */
    void load(Qcow2Header h, long fileSize) throws Qcow2FormatException {
        tableOffset = h.refcountTableOffset();
        tableClusters = h.refcountTableClusters();
        table = image.readTable(tableOffset, (int) ((long) tableClusters * clusterSize / 8));
        layout.reftableAt(tableOffset, tableClusters);
        for (int i = 0; i < table.length; i++) {
            long off = table[i] & Qcow2Image.OFFSET_MASK;
            if (table[i] == 0) {
                continue;
            }
            if ((table[i] & ~Qcow2Image.OFFSET_MASK) != 0 || off % clusterSize != 0 || off > fileSize - clusterSize
                    || off >>> clusterBits > Integer.MAX_VALUE) {
                throw new Qcow2FormatException("refcount table entry " + i + " is invalid (0x" + Long.toHexString(table[i]) + ")");
            }
            if (layout.overlapsFixed(off, clusterSize, false) || layout.isL2(off)) {
                throw new Qcow2FormatException("refcount block " + i + " overlaps other metadata");
            }
            layout.addRefblock(off);
        }
        if (table.length == 0 || table[0] == 0) {
            throw new Qcow2FormatException("refcount table has no block for the header");
        }
    }

    /** The refcount of host cluster c (0 where no refcount block covers it). */
    long refcount(long c) {
        long ti = c / blockEntries;
        if (ti >= table.length || table[(int) ti] == 0) {
            return 0;
        }
        int slot = cache.get(table[(int) ti] & Qcow2Image.OFFSET_MASK);
        return codec.get(cache.buffer(slot), c % blockEntries);
    }

    private void set(long c, long value) {
        ensureBlock(c);
        long ti = c / blockEntries;
        int slot = cache.get(table[(int) ti] & Qcow2Image.OFFSET_MASK);
        codec.set(cache.buffer(slot), c % blockEntries, value);
        cache.markDirty(slot);
    }

    /** Host clusters one refcount block counts. */
    int blockEntries() {
        return (int) Math.min(blockEntries, Integer.MAX_VALUE);
    }

    /** Allocates n contiguous host clusters (refcount one each); their offset. */
    long allocate(int n) {
        long start = freeHint;
        while (true) {
            long run = 0;
            long c = start;
            long end = Math.max(Qcow2Header.ceilDiv(image.file().size(), clusterSize), allocatedEnd);
            while (run < n) {
                if (refcount(c) != 0) {
                    if (c >= end) {
                        // a consistent image counts nothing past its end: never follow it out there
                        throw image.corruptNow("refcounts claim clusters past the end of the image");
                    }
                    run = 0;
                    start = c + 1;
                } else {
                    run++;
                }
                c++;
            }
            boolean made = false;
            for (long k = start; k < start + n; k++) {
                made |= ensureBlock(k);
            }
            if (made && anyCounted(start, n)) {
                continue; // a new refcount block (or table) took a cluster of the run: search again
            }
            if (((start + n) << clusterBits) > Qcow2Header.MAX_HOST_OFFSET || start + n > Integer.MAX_VALUE) {
                throw new Qcow2IoException(-Errno.ENOSPC, "image file full");
            }
            for (long k = start; k < start + n; k++) {
                set(k, 1);
            }
            if (n == 1) {
                freeHint = start + 1;
            }
            allocatedEnd = Math.max(allocatedEnd, start + n);
            return start << clusterBits;
        }
    }

    /** One past the last cluster this open may write (the file's end or what it allocated beyond). */
    long end() {
        return Math.max(Qcow2Header.ceilDiv(image.file().size(), clusterSize), allocatedEnd);
    }

    private boolean anyCounted(long start, int n) {
        for (long k = start; k < start + n; k++) {
            if (refcount(k) != 0) {
                return true;
            }
        }
        return false;
    }

    /**
     * Makes sure a refcount block covers host cluster c: a missing one is put at the first cluster of the
     * range it covers (free, as nothing there is counted) and counts itself. True if clusters were taken.
     */
    private boolean ensureBlock(long c) {
        long ti = c / blockEntries;
        boolean grown = false;
        if (ti >= table.length) {
            grow(ti);
            grown = true; // the new table and its blocks took clusters
        }
        if (table[(int) ti] != 0) {
            return grown;
        }
        long blockCluster = ti * blockEntries;
        long offset = blockCluster << clusterBits;
        if (blockCluster == 0 || layout.overlapsAny(offset, clusterSize) || blockCluster > Integer.MAX_VALUE) {
            throw image.corruptNow("no place for a new refcount block");
        }
        int slot = cache.create(offset);
        codec.set(cache.buffer(slot), 0, 1);
        table[(int) ti] = offset;
        layout.addRefblock(offset);
        allocatedEnd = Math.max(allocatedEnd, blockCluster + 1);
        tableDirty = true;
        return true;
    }

    /**
     * Grows the table to cover index ti: a new, larger table and the refcount blocks for its own clusters
     * are placed past everything the old table covers, written, and made current in the header; the old
     * table is freed at the next flush.
     */
    private void grow(long ti) {
        long oldEntries = table.length;
        long coverEnd = oldEntries * blockEntries; // first cluster the old table does not cover
        long area = Math.max(coverEnd, Qcow2Header.ceilDiv(image.file().size(), clusterSize));
        long entries = Math.max(ti + 1, oldEntries + oldEntries / 2 + 1);
        long blocks;
        long newClusters;
        while (true) {
            newClusters = Qcow2Header.ceilDiv(entries * 8, clusterSize);
            long firstBlock = area / blockEntries;
            blocks = 0;
            for (int iter = 0; iter < 64; iter++) {
                long need = (area + blocks + newClusters - 1) / blockEntries - firstBlock + 1;
                if (need == blocks) {
                    break;
                }
                blocks = need;
            }
            long lastIndex = (area + blocks + newClusters - 1) / blockEntries;
            if (lastIndex < entries) {
                break;
            }
            entries = lastIndex + 1;
        }
        if (newClusters * clusterSize > Qcow2Header.MAX_REFTABLE_BYTES) {
            throw new Qcow2IoException(-Errno.ENOSPC, "refcount table would exceed its limit");
        }
        long[] grown = Arrays.copyOf(table, (int) (newClusters * clusterSize / 8));
        long firstBlockIndex = area / blockEntries;
        for (long b = 0; b < blocks; b++) {
            long blockIndex = firstBlockIndex + b;
            long blockOffset = (area + b) << clusterBits;
            if (grown[(int) blockIndex] != 0) {
                throw image.corruptNow("refcount table growth found a refcount block in place");
            }
            grown[(int) blockIndex] = blockOffset;
            MemorySegment block = cache.buffer(cache.create(blockOffset));
            for (long k = area; k < area + blocks + newClusters; k++) {
                if (k / blockEntries == blockIndex) {
                    codec.set(block, k % blockEntries, 1);
                }
            }
            layout.addRefblock(blockOffset);
        }
        long newOffset = (area + blocks) << clusterBits;
        allocatedEnd = Math.max(allocatedEnd, area + blocks + newClusters);
        long oldOffset = tableOffset;
        int oldClusters = tableClusters;
        long[] old = table;
        table = grown;
        try {
            cache.writeDirty();
            image.writeTable(table, newOffset);
            image.sync();
            image.moveReftable(newOffset, (int) newClusters);
        } catch (Qcow2IoException e) {
            table = old;
            cache.clear();
            throw e;
        }
        tableOffset = newOffset;
        tableClusters = (int) newClusters;
        layout.reftableAt(newOffset, newClusters);
        tableDirty = false;
        free(oldOffset >>> clusterBits, oldClusters, false);
    }

    /** Host clusters to free once what used them is on disk (the next flush); punched in the file then. */
    void free(long firstCluster, long count, boolean punch) {
        if (pendingFreeCount + 3 > pendingFrees.length) {
            pendingFrees = Arrays.copyOf(pendingFrees, pendingFrees.length * 2);
        }
        pendingFrees[pendingFreeCount++] = firstCluster;
        pendingFrees[pendingFreeCount++] = count;
        pendingFrees[pendingFreeCount++] = punch ? 1 : 0;
    }

    /** Clusters waiting for a flush to be freed. */
    int pendingFrees() {
        return pendingFreeCount / 3;
    }

    boolean dirty() {
        return cache.anyDirty() || tableDirty;
    }

    /** Refcount blocks, then the table, on disk and flushed (what L2 and L1 writes depend on). */
    int makeDurable() {
        if (dirty()) {
            cache.writeDirty();
            if (tableDirty) {
                image.writeTable(table, tableOffset);
                tableDirty = false;
            }
            image.sync();
        }
        return 0;
    }

    /** Frees what waited for the flush that just put its users' new entries on disk. */
    void applyFrees() {
        int n = pendingFreeCount;
        pendingFreeCount = 0;
        long punchStart = -1; // clusters freed one after the other are punched as one range
        long punchEnd = -1;
        for (int i = 0; i < n; i += 3) {
            long first = pendingFrees[i];
            long count = pendingFrees[i + 1];
            boolean punch = pendingFrees[i + 2] != 0;
            for (long c = first; c < first + count; c++) {
                long rc = refcount(c);
                if (rc == 0) {
                    throw image.corruptNow("freeing host cluster " + c + " whose refcount is already 0");
                }
                set(c, rc - 1);
                if (rc == 1) {
                    freeHint = Math.min(freeHint, c);
                    layout.freed(c);
                    if (punch && c == punchEnd) {
                        punchEnd++;
                    } else if (punch) {
                        punchRange(punchStart, punchEnd);
                        punchStart = c;
                        punchEnd = c + 1;
                    }
                }
            }
        }
        punchRange(punchStart, punchEnd);
        makeDurable();
    }

    private void punchRange(long first, long end) {
        if (first >= 0) {
            image.file().discardSync(first << clusterBits, (end - first) << clusterBits);
        }
    }

    /**
     * Replaces the refcount structures with new ones holding counts (by cluster, up to countedEnd), placed
     * past everything counted: blocks, then the table, written and flushed before the header points at them.
     * The old ones become free space.
     */
    void rebuild(int[] counts, long countedEnd) throws Qcow2FormatException {
        long area = Math.max(Qcow2Header.ceilDiv(image.file().size(), clusterSize), countedEnd);
        long blocks = 0;
        long newClusters = 1;
        for (int iter = 0; iter < 64; iter++) {
            long nb = Qcow2Header.ceilDiv(area + blocks + newClusters, blockEntries);
            long tc = Qcow2Header.ceilDiv(nb * 8, clusterSize);
            if (nb == blocks && tc == newClusters) {
                break;
            }
            blocks = nb;
            newClusters = tc;
        }
        if (newClusters * clusterSize > Qcow2Header.MAX_REFTABLE_BYTES) {
            throw new Qcow2FormatException("image too large to repair");
        }
        long end = area + blocks + newClusters;
        long[] rebuilt = new long[(int) (newClusters * clusterSize / 8)];
        cache.clear();
        try (Arena temp = Arena.ofConfined()) {
            MemorySegment block = temp.allocate(clusterSize, 4096);
            for (long b = 0; b < blocks; b++) {
                block.fill((byte) 0);
                for (long k = 0; k < blockEntries; k++) {
                    long c = b * blockEntries + k;
                    long value = c < countedEnd ? counts[(int) c] : (c >= area && c < end ? 1 : 0);
                    if (value > 0) {
                        codec.set(block, k, codec.max == -1 ? value : Math.min(value, codec.max));
                    }
                }
                long offset = (area + b) << clusterBits;
                rebuilt[(int) b] = offset;
                int rc = image.file().writeSync(block, offset);
                if (rc < 0) {
                    throw new Qcow2IoException(rc, "cannot write a refcount block");
                }
            }
        }
        long newOffset = (area + blocks) << clusterBits;
        image.writeTable(rebuilt, newOffset);
        image.sync();
        image.moveReftable(newOffset, (int) newClusters);
        table = rebuilt;
        tableOffset = newOffset;
        tableClusters = (int) newClusters;
        layout.reftableAt(newOffset, newClusters);
        layout.clearRefblocks();
        for (long b = 0; b < blocks; b++) {
            layout.addRefblock((area + b) << clusterBits);
        }
        freeHint = 0;
    }

    private final class BlockIo implements MetadataCache.Backing {
        @Override
        public int read(MemorySegment buf, long offset) {
            return image.file().readSync(buf, offset);
        }

        @Override
        public int beforeWrite() {
            return 0; // blocks depend on nothing: increments go first, decrements only after a flush
        }

        @Override
        public int write(MemorySegment buf, long offset) {
            image.checkMetadataWrite(MetadataLayout.Kind.REFBLOCK, offset, buf.byteSize());
            return image.file().writeSync(buf, offset);
        }
    }
}

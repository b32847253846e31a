package dev.vhostappliance.block.qcow2;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A write-back cache of metadata tables (L2 table slices or refcount blocks) by their offset in the image
 * file: a fixed number of aligned slots, found through an open-addressing table (no allocation per lookup),
 * the least recently used evicted. Dirty slots are written when evicted or when the image flushes; the
 * image's {@link Backing#beforeWrite} hook runs first, so what this table's entries depend on reaches the
 * disk before them. Not thread-safe: the image's lock covers it.
 */
final class MetadataCache {
    /** The image under the cache. */
    interface Backing {
        /** Reads one table at offset into buf; 0 or -errno. */
        int read(MemorySegment buf, long offset);

        /** Runs before dirty entries are written (ordering against the other cache); 0 or -errno. */
        int beforeWrite();

        /** Writes one table at offset from buf (after the overlap check); 0 or -errno. */
        int write(MemorySegment buf, long offset);
    }

    private final Backing backing;
    private final int entrySize;
    private final MemorySegment[] buffers;
    private final long[] offsets;
    private final boolean[] dirty;
    private final long[] lastUse;
    private long clock;
    private int dirtyCount;
    /** Open addressing: offset keys and slot values, -1 empty. */
    private final long[] keys;
    private final int[] values;
    private final int mask;

    MetadataCache(Backing backing, int slots, int entrySize, Arena arena) {
        this.backing = backing;
        this.entrySize = entrySize;
        this.buffers = new MemorySegment[slots];
        this.offsets = new long[slots];
        this.dirty = new boolean[slots];
        this.lastUse = new long[slots];
        java.util.Arrays.fill(offsets, -1);
        MemorySegment all = arena.allocate((long) slots * entrySize, 4096);
        for (int i = 0; i < slots; i++) {
            buffers[i] = all.asSlice((long) i * entrySize, entrySize);
        }
        int capacity = Integer.highestOneBit(Math.max(4, slots * 2 - 1)) << 1;
        this.keys = new long[capacity];
        this.values = new int[capacity];
        this.mask = capacity - 1;
        java.util.Arrays.fill(keys, -1);
    }

    int slots() {
        return buffers.length;
    }

    int entrySize() {
        return entrySize;
    }

    MemorySegment buffer(int slot) {
        return buffers[slot];
    }

    /** The slot holding the table at offset, read from the image on a miss. */
    int get(long offset) {
        int slot = find(offset);
        if (slot >= 0) {
            lastUse[slot] = ++clock;
            return slot;
        }
        slot = evict();
        int rc = backing.read(buffers[slot], offset);
        if (rc < 0) {
            throw new Qcow2IoException(rc, "cannot read metadata at 0x" + Long.toHexString(offset));
        }
        install(slot, offset);
        return slot;
    }

    /** A slot for a new table at offset, zero-filled and dirty (nothing is read). */
    int create(long offset) {
        int slot = find(offset);
        if (slot < 0) {
            slot = evict();
            install(slot, offset);
        }
        buffers[slot].fill((byte) 0);
        lastUse[slot] = ++clock;
        markDirty(slot);
        return slot;
    }

    void markDirty(int slot) {
        if (!dirty[slot]) {
            dirty[slot] = true;
            dirtyCount++;
        }
    }

    boolean anyDirty() {
        return dirtyCount > 0;
    }

    /** Writes every dirty table (after the ordering hook); throws on failure, leaving the rest dirty. */
    void writeDirty() {
        if (dirtyCount == 0) {
            return;
        }
        check(backing.beforeWrite(), "cannot order metadata writes");
        for (int i = 0; i < buffers.length && dirtyCount > 0; i++) {
            if (dirty[i]) {
                writeBack(i);
            }
        }
    }

    /** Forgets the table at offset without writing it (its cluster was freed). */
    void drop(long offset) {
        int slot = find(offset);
        if (slot >= 0) {
            if (dirty[slot]) {
                dirty[slot] = false;
                dirtyCount--;
            }
            remove(offset);
            offsets[slot] = -1;
            lastUse[slot] = 0;
        }
    }

    /** Forgets everything (after a failed write left the cache unsure); dirty entries are lost. */
    void clear() {
        java.util.Arrays.fill(offsets, -1);
        java.util.Arrays.fill(dirty, false);
        java.util.Arrays.fill(keys, -1);
        dirtyCount = 0;
    }

    private void writeBack(int slot) {
        check(backing.write(buffers[slot], offsets[slot]), "cannot write metadata at 0x" + Long.toHexString(offsets[slot]));
        dirty[slot] = false;
        dirtyCount--;
    }

    private static void check(int rc, String what) {
        if (rc < 0) {
            throw new Qcow2IoException(rc, what);
        }
    }

    /** An empty slot, or the least recently used one, written back if dirty. */
    private int evict() {
        int victim = 0;
        for (int i = 0; i < buffers.length; i++) {
            if (offsets[i] < 0) {
                return i;
            }
            if (lastUse[i] < lastUse[victim]) {
                victim = i;
            }
        }
        if (dirty[victim]) {
            check(backing.beforeWrite(), "cannot order metadata writes");
            writeBack(victim);
        }
        remove(offsets[victim]);
        offsets[victim] = -1;
        return victim;
    }

    private void install(int slot, long offset) {
        offsets[slot] = offset;
        lastUse[slot] = ++clock;
        int i = hash(offset);
        while (keys[i] >= 0) {
            i = (i + 1) & mask;
        }
        keys[i] = offset;
        values[i] = slot;
    }

    private int find(long offset) {
        for (int i = hash(offset); keys[i] >= 0; i = (i + 1) & mask) {
            if (keys[i] == offset) {
                return values[i];
            }
        }
        return -1;
    }

    /** Removes offset from the table, shifting later entries of its probe run back (no tombstones). */
    private void remove(long offset) {
        int i = hash(offset);
        while (keys[i] != offset) {
            if (keys[i] < 0) {
                return;
            }
            i = (i + 1) & mask;
        }
        keys[i] = -1;
        for (int j = (i + 1) & mask; keys[j] >= 0; j = (j + 1) & mask) {
            int home = hash(keys[j]);
            // move j back to i if i lies cyclically in [home, j)
            if (((j - home) & mask) >= ((j - i) & mask)) {
                keys[i] = keys[j];
                values[i] = values[j];
                keys[j] = -1;
                i = j;
            }
        }
    }

    private int hash(long offset) {
        long h = (offset >>> 9) * 0x9E3779B97F4A7C15L;
        return (int) (h >>> 40) & mask;
    }
}

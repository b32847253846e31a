package dev.vhostappliance.block.qcow2;

import dev.vhostappliance.block.node.BlockNode;
import dev.vhostappliance.block.node.BlockStatus;
import dev.vhostappliance.libc.Errno;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The metadata of one open qcow2 image and everything that changes it: cluster lookups through the L1 table
 * and the cached L2 tables, allocation with refcounts, copy-on-write from the backing chain, zero clusters,
 * discard, and flushes in the order that keeps the image consistent after a crash at any point:
 * <ol>
 * <li>data is written before the L2 entry that points at it is changed (in the cache);</li>
 * <li>refcount blocks (and the refcount table) reach the disk, with a flush, before any L2 table or L1 entry
 * that needs them (the L2 cache's ordering hook);</li>
 * <li>L2 tables are flushed before the L1 entries that point at new ones are written;</li>
 * <li>clusters given up (discard, a rewritten compressed cluster, a moved table) lose their refcount only
 * after the entries that used them are on disk: they wait in {@link RefcountTable#free} until the next flush.</li>
 * </ol>
 * A crash can leak clusters, never corrupt. Every host offset an entry names is checked before use and every
 * write is checked against the metadata it could overwrite. One lock serialises metadata work (the queue
 * threads of all exports of the node); the data of requests that map to allocated clusters bypasses it.
 */
public final class Qcow2Image {
    static final long OFFSET_MASK = 0x00fffffffffffe00L;
    static final long COPIED = 1L << 63;
    static final long COMPRESSED = 1L << 62;
    static final long ZERO = 1L;
    static final long ALL_ALLOCATED = 0xffffffffL;
    static final long ALL_ZERO = 0xffffffffL << 32;
    /** Bits of a standard L2 entry that must be 0 (1-8, 56-61). */
    private static final long RESERVED = 0x3f000000000001feL;
    private static final long DEFAULT_L2_CACHE_MAX = 32L << 20;
    /** Clusters given up that wait for a flush before they are freed; more start a flush. */
    private static final int PENDING_FREE_LIMIT = 8192;

    final ReentrantLock lock = new ReentrantLock();
    private final Arena arena = Arena.ofShared();
    private final String name;
    private final BlockNode file;
    private final Qcow2Options options;
    private final Qcow2Header header;
    private final boolean readOnly;
    private BlockNode backing;

    final int clusterBits;
    final int clusterSize;
    private final boolean extendedL2;
    private final int entryBytes;
    private final int l2Entries;
    private final int subclusterSize;
    private final int version;
    private final int csizeShift;
    private final long csizeMask;
    private final long coffsetMask;

    private long size;

    private final ClusterMap map;
    private final MetadataLayout layout;
    private final RefcountTable refs;

    private final MemorySegment headerBlock;
    private final MemorySegment scratch;
    private final MemorySegment compressedBuffer;
    private final ClusterDecompressor decompressor;
    private long decompressedEntry = -1;
    private final MemorySegment decompressed;
    private boolean corrupt;
    private boolean markedDirty;
    private final AllocatingWrites allocatingWrites;

    private Qcow2Image(String name, BlockNode file, Qcow2Header h, MemorySegment first, Qcow2Options o) throws Qcow2FormatException {
        this.name = name;
        this.file = file;
        this.options = o;
        this.header = h;
        this.version = h.version();
        this.clusterBits = h.clusterBits();
        this.clusterSize = h.clusterSize();
        this.extendedL2 = h.extendedL2();
        this.entryBytes = h.l2EntryBytes();
        this.l2Entries = h.l2Entries();
        this.subclusterSize = clusterSize / 32;
        this.csizeShift = 62 - (clusterBits - 8);
        this.csizeMask = (1L << (clusterBits - 8)) - 1;
        this.coffsetMask = (1L << csizeShift) - 1;
        this.size = h.size();
        this.layout = new MetadataLayout(clusterBits);
        this.readOnly = o.readOnly() || file.readOnly();
        this.headerBlock = arena.allocate(Math.min(clusterSize, 4096), 4096);
        MemorySegment.copy(first, 0, headerBlock, 0, Math.min(headerBlock.byteSize(), first.byteSize()));
        this.scratch = arena.allocate(clusterSize, 4096);
        this.compressedBuffer = arena.allocate(2L * clusterSize + 1024, 4096);
        this.decompressed = arena.allocate(clusterSize, 4096);
        this.decompressor = ClusterDecompressor.of(h.compressionType());

        long sliceSize = o.l2CacheEntrySize() > 0 ? o.l2CacheEntrySize() : clusterSize;
        if (Long.bitCount(sliceSize) != 1 || sliceSize < 512 || sliceSize > clusterSize) {
            throw new Qcow2FormatException("l2-cache-entry-size must be a power of two between 512 and the cluster size");
        }
        long l2Bytes;
        long refBytes;
        long cover = Qcow2Header.ceilDiv(Qcow2Header.ceilDiv(size, clusterSize) * entryBytes, sliceSize) * sliceSize;
        if (o.cacheSize() >= 0) {
            l2Bytes = o.l2CacheSize() >= 0 ? o.l2CacheSize() : Math.min(Math.max(o.cacheSize() - 4L * clusterSize, 0), Math.min(cover, DEFAULT_L2_CACHE_MAX));
            refBytes = o.refcountCacheSize() >= 0 ? o.refcountCacheSize() : Math.max(o.cacheSize() - l2Bytes, 0);
            if (o.l2CacheSize() >= 0 && o.refcountCacheSize() >= 0 && o.l2CacheSize() + o.refcountCacheSize() != o.cacheSize()) {
                throw new Qcow2FormatException("l2-cache-size + refcount-cache-size must equal cache-size");
            }
        } else {
            l2Bytes = o.l2CacheSize() >= 0 ? o.l2CacheSize() : Math.min(cover, DEFAULT_L2_CACHE_MAX);
            refBytes = o.refcountCacheSize() >= 0 ? o.refcountCacheSize() : 4L * clusterSize;
        }
        int l2Slots = (int) Math.max(2, Math.min(l2Bytes / sliceSize, 1 << 20));
        int refSlots = (int) Math.max(4, Math.min(refBytes / clusterSize, 1 << 16));
        this.refs = new RefcountTable(this, layout, h, refSlots, arena);
        this.map = new ClusterMap(this, layout, refs, h, sliceSize, l2Slots, arena);
        this.allocatingWrites = new AllocatingWrites(this, arena);
    }

    /** Allocating writes so far: started, requests held behind one, the most in flight at once. */
    public long[] allocatingWritesCounters() {
        return allocatingWrites.counters();
    }

    /** The image's allocating writes in flight (its node starts them). */
    AllocatingWrites allocatingWrites() {
        return allocatingWrites;
    }

    /**
     * Opens the qcow2 image on file: header, L1 and refcount tables read and checked. A writable open of an
     * image left dirty (lazy refcounts, a crash) rebuilds its refcounts first, as QEMU does. The backing file
     * is the caller's to open ({@link #backingFile()}) and attach ({@link #setBacking}).
     */
    public static Qcow2Image open(String name, BlockNode file, Qcow2Options o) throws Qcow2FormatException {
        long fileSize = file.size();
        try (Arena temp = Arena.ofConfined()) {
            MemorySegment probe = temp.allocate(512, 4096);
            check(file.readSync(probe, 0), "cannot read the header");
            MemorySegment first = temp.allocate(1L << Qcow2Header.clusterBits(probe), 4096);
            check(file.readSync(first, 0), "cannot read the header");
            Qcow2Header h = Qcow2Header.parse(first.asSlice(0, Math.min(first.byteSize(), Math.max(fileSize, 72))), fileSize);
            boolean readOnly = o.readOnly() || file.readOnly();
            if (!readOnly) {
                if (h.corrupt()) {
                    throw new Qcow2FormatException("image is marked corrupt; it can be opened read-only only (repair with qemu-img check -r all)");
                }
                if (h.nbSnapshots() > 0) {
                    throw new Qcow2FormatException("images with internal snapshots can be opened read-only only");
                }
                if (h.hasBitmaps() && (h.autoclearFeatures() & Qcow2Header.AUTOCLEAR_BITMAPS) != 0) {
                    throw new Qcow2FormatException("image has persistent dirty bitmaps, which writes would make stale;"
                            + " open it read-only or remove them (qemu-img bitmap --remove)");
                }
            }
            Qcow2Image image = new Qcow2Image(name, file, h, first, o);
            try {
                image.loadTables(fileSize);
                if (!readOnly && h.dirty()) {
                    image.rebuildRefcounts();
                    image.setDirtyBit(false);
                }
            } catch (Qcow2FormatException e) {
                image.close();
                throw e;
            } catch (Qcow2IoException e) {
                image.close();
                throw new Qcow2FormatException(e.getMessage() + ": " + Errno.describe(-e.errno()));
            }
            return image;
        }
    }

    private static void check(int rc, String what) throws Qcow2FormatException {
        if (rc < 0) {
            throw new Qcow2FormatException(what + ": " + Errno.describe(-rc));
        }
    }

    private void loadTables(long fileSize) throws Qcow2FormatException {
        layout.reftableAt(header.refcountTableOffset(), header.refcountTableClusters());
        map.load(header, fileSize);
        refs.load(header, fileSize);
    }

    long[] readTable(long offset, int entries) throws Qcow2FormatException {
        long[] table = new long[entries];
        if (entries == 0) {
            return table;
        }
        long bytes = Qcow2Header.ceilDiv((long) entries * 8, clusterSize) * clusterSize;
        try (Arena temp = Arena.ofConfined()) {
            MemorySegment buf = temp.allocate(bytes, 4096);
            check(file.readSync(buf, offset), "cannot read a table at 0x" + Long.toHexString(offset));
            for (int i = 0; i < entries; i++) {
                table[i] = buf.get(Qcow2Header.BE_LONG, 8L * i);
            }
        }
        return table;
    }

    // ------------------------------------------------------------------ accessors

    public String name() {
        return name;
    }

    public long size() {
        return size;
    }

    public boolean readOnly() {
        return readOnly;
    }

    public BlockNode file() {
        return file;
    }

    public BlockNode backing() {
        return backing;
    }

    /** The backing file the header names (or null), and its format (or null: probe). */
    public String backingFile() {
        return header.backingFile();
    }

    public String backingFormat() {
        return header.backingFormat();
    }

    public void setBacking(BlockNode node) {
        this.backing = node;
    }

    // ------------------------------------------------------------------ lookups

    private final long[] bitmapHolder = new long[1];

    /**
     * The host offset where [offset, offset+length) lies as one run of plain allocated data (for a write also
     * writable in place: refcount one), or -1 when the range needs the slow path. The caller holds the lock.
     */
    long contiguousHostOffset(long offset, long length, boolean write) {
        if (write && (readOnly || corrupt || needsDirtyMark())) {
            return -1;
        }
        long first = offset >>> clusterBits;
        long last = (offset + length - 1) >>> clusterBits;
        long expect = -1;
        for (long gc = first; gc <= last; gc++) {
            long entry = map.entry(gc, bitmapHolder);
            long host = entry & OFFSET_MASK;
            if (host == 0 || (entry & COMPRESSED) != 0 || (write && (entry & COPIED) == 0) || (entry & ~(OFFSET_MASK | COPIED)) != 0) {
                return -1; // unallocated, compressed, shared, zero, or malformed: the slow path sorts it out
            }
            if (extendedL2) {
                int from = gc == first ? (int) (offset & (clusterSize - 1)) / subclusterSize : 0;
                int to = gc == last ? (int) ((offset + length - 1) & (clusterSize - 1)) / subclusterSize : 31;
                long want = subclusters(from, to);
                if ((bitmapHolder[0] & want) != want) {
                    return -1;
                }
            }
            if (expect >= 0 && host != expect) {
                return -1;
            }
            if (host % clusterSize != 0 || (write && (host + clusterSize > file.size() || layout.overlapsAny(host, clusterSize)))) {
                return -1;
            }
            expect = host + clusterSize;
        }
        long host = expect - (last - first + 1) * (long) clusterSize;
        return host + (offset & (clusterSize - 1));
    }

    private boolean needsDirtyMark() {
        return lazyRefcountsEnabled() && !markedDirty;
    }

    private boolean lazyRefcountsEnabled() {
        Boolean opt = options.lazyRefcounts();
        return version >= 3 && (opt != null ? opt : header.lazyRefcounts());
    }

    // ------------------------------------------------------------------ reads

    /** Reads [offset, offset+length) of the guest disk into the transfer's iovecs; 0 or -errno. */
    int read(MemorySegment iov, int iovCount, long offset, long length) {
        return read(offset, length, iov, iovCount, null);
    }

    /** Reads into buf (any length) at guest offset: a backing file's read for the image above. */
    int readSync(MemorySegment buf, long offset) {
        return read(offset, buf.byteSize(), null, 0, buf);
    }

    /**
     * Reads cluster by cluster into the iovecs, or into buf when it is given; past the virtual size reads
     * zeroes (a backing file shorter than its overlay).
     */
    private int read(long offset, long length, MemorySegment iov, int iovCount, MemorySegment buf) {
        lock.lock();
        try {
            long pos = 0;
            while (pos < length) {
                long at = offset + pos;
                int n = (int) Math.min(length - pos, clusterSize - (at & (clusterSize - 1)));
                if (at >= size || readsAsZeroes(at >>> clusterBits)) {
                    if (buf == null) {
                        Iovecs.zero(iov, iovCount, pos, n); // straight into the guest's buffers
                    } else {
                        buf.asSlice(pos, n).fill((byte) 0);
                    }
                } else {
                    MemorySegment piece = scratch.asSlice(0, n);
                    readGuest(at, piece);
                    if (buf == null) {
                        Iovecs.copyIn(iov, iovCount, pos, piece, 0, n);
                    } else {
                        MemorySegment.copy(piece, 0, buf, pos, n);
                    }
                }
                pos += n;
            }
            return 0;
        } catch (Qcow2IoException e) {
            return failed(e);
        } finally {
            lock.unlock();
        }
    }

    /**
     * What the guest reads at offset, dst.byteSize() bytes within one cluster, into dst (aligned for the
     * file); also the copy-on-write head and tail of an allocating write. The caller holds the lock.
     */
    void readGuest(long offset, MemorySegment dst) {
        long gc = offset >>> clusterBits;
        int in = (int) (offset & (clusterSize - 1));
        long entry = map.entry(gc, bitmapHolder);
        long bitmap = bitmapHolder[0];
        if ((entry & COMPRESSED) != 0) {
            MemorySegment data = decompress(entry);
            MemorySegment.copy(data, in, dst, 0, dst.byteSize());
            return;
        }
        long host = checkedHost(entry);
        if (!extendedL2) {
            if ((entry & ZERO) != 0 && version >= 3) {
                dst.fill((byte) 0);
            } else if (host == 0) {
                readBacking(offset, dst);
            } else {
                io(file.readSync(dst, host + in), "read data");
            }
            return;
        }
        // extended L2: runs of subclusters in the same state
        long pos = 0;
        long len = dst.byteSize();
        while (pos < len) {
            int sc = (int) ((in + pos) / subclusterSize);
            long runEnd = Math.min(len, (long) (sc + 1) * subclusterSize - in);
            int state = subclusterState(entry, bitmap, sc);
            while (runEnd < len && subclusterState(entry, bitmap, (int) ((in + runEnd) / subclusterSize)) == state) {
                runEnd = Math.min(len, runEnd + subclusterSize);
            }
            MemorySegment part = dst.asSlice(pos, runEnd - pos);
            switch (state) {
                case 0 -> readBacking(offset + pos, part);
                case 1 -> part.fill((byte) 0);
                default -> {
                    if (host == 0) {
                        throw corruptNow("allocated subcluster without a host cluster");
                    }
                    io(file.readSync(part, host + in + pos), "read data");
                }
            }
            pos = runEnd;
        }
    }

    private static final int DATA = 0;
    private static final int ZERO_ALLOCATED = 1;
    private static final int ZERO_UNALLOCATED = 2;
    private static final int UNALLOCATED = 3;
    /** Clusters one block status answer looks at, at most: the answer stays cheap however long the range. */
    private static final int STATUS_CLUSTERS = 1 << 16;

    /**
     * The run of clusters from offset that share one state (NBD block status), at cluster granularity: a
     * cluster with some subclusters allocated counts as data. What no cluster here holds is the backing
     * node's, one level deeper.
     */
    long blockStatus(long offset, long length, BlockStatus status) {
        lock.lock();
        try {
            long end = Math.min(offset + length, size);
            long first = offset >>> clusterBits;
            int kind = clusterKind(first);
            long gc = first + 1;
            while (gc << clusterBits < end && gc - first < STATUS_CLUSTERS && clusterKind(gc) == kind) {
                gc++;
            }
            long run = Math.min(end, gc << clusterBits) - offset;
            return switch (kind) {
                case DATA -> status.set(false, false, 1, run);
                case ZERO_ALLOCATED -> status.set(false, true, 1, run);
                case ZERO_UNALLOCATED -> status.set(true, true, 1, run);
                default -> backingStatus(offset, run, status);
            };
        } catch (Qcow2IoException e) {
            return status.set(false, false, 1, length); // unknown: plain data is always a true answer
        } finally {
            lock.unlock();
        }
    }

    private long backingStatus(long offset, long run, BlockStatus status) {
        if (backing == null || offset >= backing.size()) {
            return status.set(true, true, 0, run);
        }
        long n = backing.blockStatus(offset, Math.min(run, backing.size() - offset), status);
        status.depth = status.depth == 0 ? 0 : status.depth + 1;
        return n;
    }

    private int clusterKind(long gc) {
        long entry = map.entry(gc, bitmapHolder);
        if ((entry & COMPRESSED) != 0) {
            return DATA;
        }
        long host = entry & OFFSET_MASK;
        if (extendedL2) {
            long bitmap = bitmapHolder[0];
            if ((bitmap >>> 32) == 0xffffffffL) {
                return host != 0 ? ZERO_ALLOCATED : ZERO_UNALLOCATED;
            }
            return (bitmap & ALL_ALLOCATED) != 0 || (bitmap >>> 32) != 0 ? DATA : UNALLOCATED;
        }
        if (version >= 3 && (entry & ZERO) != 0) {
            return host != 0 ? ZERO_ALLOCATED : ZERO_UNALLOCATED;
        }
        return host == 0 ? UNALLOCATED : DATA;
    }

    /** True if all of [offset, offset+length) reads as zeroes without I/O. The caller holds the lock. */
    boolean readsAsZeroes(long offset, long length) {
        long last = (offset + length - 1) >>> clusterBits;
        for (long gc = offset >>> clusterBits; gc <= last; gc++) {
            if (gc << clusterBits < size && !readsAsZeroes(gc)) {
                return false;
            }
        }
        return true;
    }

    /** True if all of guest cluster gc reads as zeroes without I/O (unallocated without a backing file, or zero). */
    private boolean readsAsZeroes(long gc) {
        long entry = map.entry(gc, bitmapHolder);
        if ((entry & COMPRESSED) != 0) {
            return false;
        }
        if (extendedL2) {
            long bitmap = bitmapHolder[0];
            return (bitmap >>> 32) == 0xffffffffL || (backing == null && (bitmap & ALL_ALLOCATED) == 0);
        }
        return (version >= 3 && (entry & ZERO) != 0 && (entry & RESERVED) == 0)
                || (entry == 0 && backing == null);
    }

    /** 0 unallocated (backing), 1 zero, 2 allocated. */
    private static int subclusterState(long entry, long bitmap, int sc) {
        if ((bitmap >>> (32 + sc) & 1) != 0) {
            return 1;
        }
        return (bitmap >>> sc & 1) != 0 ? 2 : 0;
    }

    /** The host cluster a standard entry names (0 if none), checked. */
    private long checkedHost(long entry) {
        long host = entry & OFFSET_MASK;
        if ((entry & COMPRESSED) == 0 && (host % clusterSize != 0 || (entry & RESERVED) != 0
                || (extendedL2 && (entry & ZERO) != 0))) {
            throw corruptNow("L2 entry 0x" + Long.toHexString(entry) + " is invalid");
        }
        return host;
    }

    private void readBacking(long offset, MemorySegment dst) {
        BlockNode b = backing;
        long len = dst.byteSize();
        long have = b == null ? 0 : Math.max(0, Math.min(len, b.size() - offset));
        if (have > 0) {
            io(b.readSync(dst.asSlice(0, have), offset), "read the backing file");
        }
        if (have < len) {
            dst.asSlice(have).fill((byte) 0);
        }
    }

    /** Where a compressed entry's data starts in the file (usually not aligned). */
    private long compressedOffset(long entry) {
        return entry & coffsetMask;
    }

    /** Bytes a compressed entry's data may take: its 512-byte sectors from its offset's sector on, less the start. */
    private long compressedBytes(long entry) {
        return (((entry >>> csizeShift) & csizeMask) + 1) * 512 - (compressedOffset(entry) & 511);
    }

    /** The cluster a compressed entry holds, decompressed (the last one is kept). */
    private MemorySegment decompress(long entry) {
        if (entry == decompressedEntry) {
            return decompressed;
        }
        long coffset = compressedOffset(entry);
        long start = coffset & ~511L;
        long bytes = (coffset & 511) + compressedBytes(entry);
        if (coffset == 0 || start + bytes > file.size() + 512 || bytes > compressedBuffer.byteSize()) {
            throw corruptNow("compressed cluster at 0x" + Long.toHexString(coffset) + " lies outside the image");
        }
        MemorySegment raw = compressedBuffer.asSlice(0, bytes);
        io(file.readSync(raw, start), "read a compressed cluster");
        decompressedEntry = -1;
        if (!decompressor.decompress(raw.asSlice(coffset - start), decompressed)) {
            throw new Qcow2IoException(-Errno.EIO, "compressed cluster at 0x" + Long.toHexString(coffset) + " does not decompress to one cluster");
        }
        decompressedEntry = entry;
        return decompressed;
    }

    // ------------------------------------------------------------------ writes

    /** What a write puts in the guest's range: the request's data, zeroes, or a discard. */
    enum WriteKind { DATA, ZEROES, ZEROES_UNMAP, DISCARD }

    /** Writes (or zeroes, or discards) [offset, offset+length) through the slow path; 0 or -errno. */
    int write(WriteKind kind, MemorySegment iov, int iovCount, long offset, long length) {
        if (readOnly) {
            return -Errno.EPERM;
        }
        lock.lock();
        try {
            if (corrupt) {
                return -Errno.EIO;
            }
            if (kind == WriteKind.DISCARD && !options.discardUnmap()) {
                return 0;
            }
            markDirtyIfLazy();
            long pos = 0;
            while (pos < length) {
                long at = offset + pos;
                int in = (int) (at & (clusterSize - 1));
                int n = (int) Math.min(length - pos, clusterSize - in);
                writeCluster(kind, iov, iovCount, pos, at, n);
                pos += n;
            }
            if (refs.pendingFrees() > PENDING_FREE_LIMIT) {
                flushMetadata();
            }
            return 0;
        } catch (Qcow2IoException e) {
            return failed(e);
        } finally {
            lock.unlock();
        }
    }

    private void markDirtyIfLazy() {
        if (needsDirtyMark()) {
            setDirtyBit(true);
        }
    }

    /** One cluster's part of a write: n bytes at guest offset at, pos bytes into the transfer. */
    private void writeCluster(WriteKind kind, MemorySegment iov, int iovCount, long pos, long at, int n) {
        long gc = at >>> clusterBits;
        int in = (int) (at & (clusterSize - 1));
        boolean whole = in == 0 && n == clusterSize;
        long entry = map.entry(gc, bitmapHolder);
        long bitmap = bitmapHolder[0];
        boolean compressed = (entry & COMPRESSED) != 0;
        long host = compressed ? 0 : checkedHost(entry);
        boolean ownHost = !compressed && host != 0 && (entry & COPIED) != 0;

        if (kind == WriteKind.DISCARD) {
            if (!whole) {
                return; // discard is advisory: partial clusters stay as they are, as in QEMU
            }
            if (backing == null) {
                setEntry(gc, 0, 0);
            } else if (version >= 3) {
                setEntry(gc, extendedL2 ? 0 : ZERO, extendedL2 ? ALL_ZERO : 0);
            } else {
                return;
            }
            giveUp(entry, options.passDiscardRequest());
            return;
        }
        if ((kind == WriteKind.ZEROES || kind == WriteKind.ZEROES_UNMAP) && whole && (version >= 3 || backing == null)) {
            boolean unmap = kind == WriteKind.ZEROES_UNMAP || !ownHost;
            if (version < 3) {
                setEntry(gc, 0, 0); // v2 without a backing file: unallocated reads as zeroes
                giveUp(entry, options.passDiscardOther());
            } else if (unmap) {
                setEntry(gc, extendedL2 ? 0 : ZERO, extendedL2 ? ALL_ZERO : 0);
                giveUp(entry, options.passDiscardOther());
            } else {
                setEntry(gc, extendedL2 ? host | COPIED : host | COPIED | ZERO, extendedL2 ? ALL_ZERO : 0);
            }
            return;
        }

        boolean plainInPlace = ownHost && (entry & ZERO) == 0 && (!extendedL2 || allocatedRange(bitmap, in, n));
        if (plainInPlace) {
            MemorySegment piece = scratch.asSlice(0, n);
            fill(kind, iov, iovCount, pos, piece, 0, n);
            checkInPlace(host);
            io(file.writeSync(piece, host + in), "write data");
            return;
        }
        if (ownHost && extendedL2) {
            // allocate the touched subclusters in place: their whole current content, then the new data
            int firstSc = in / subclusterSize;
            int lastSc = (in + n - 1) / subclusterSize;
            int spanStart = firstSc * subclusterSize;
            int spanLen = (lastSc - firstSc + 1) * subclusterSize;
            MemorySegment span = scratch.asSlice(0, spanLen);
            if (spanStart != in || spanLen != n) {
                readGuest(at - in + spanStart, span);
            }
            fill(kind, iov, iovCount, pos, span, in - spanStart, n);
            checkInPlace(host);
            io(file.writeSync(span, host + spanStart), "write data");
            long bits = subclusters(firstSc, lastSc);
            setEntry(gc, host | COPIED, (bitmap | bits) & ~(bits << 32));
            return;
        }
        if (ownHost && (entry & ZERO) != 0) {
            // a preallocated zero cluster: fill it in place
            MemorySegment cluster = scratch.asSlice(0, clusterSize);
            if (!whole) {
                cluster.fill((byte) 0);
            }
            fill(kind, iov, iovCount, pos, cluster, in, n);
            checkInPlace(host);
            io(file.writeSync(cluster, host), "write data");
            setEntry(gc, host | COPIED, 0);
            return;
        }
        // a new cluster: current content (backing, zeroes, compressed, shared), the new data over it
        MemorySegment cluster = scratch.asSlice(0, clusterSize);
        if (!whole) {
            readGuest(at - in, cluster);
        }
        fill(kind, iov, iovCount, pos, cluster, in, n);
        long fresh = refs.allocate(1);
        checkDataWrite(fresh, clusterSize);
        io(file.writeSync(cluster, fresh), "write data");
        setEntry(gc, fresh | COPIED, extendedL2 ? ALL_ALLOCATED : 0);
        giveUp(entry, false);
    }

    private boolean allocatedRange(long bitmap, int in, int n) {
        long want = subclusters(in / subclusterSize, (in + n - 1) / subclusterSize);
        return (bitmap & want) == want;
    }

    /** Allocation bits of subclusters from to to (inclusive). */
    private static long subclusters(int from, int to) {
        return ((1L << (to - from + 1)) - 1) << from;
    }

    private void fill(WriteKind kind, MemorySegment iov, int iovCount, long pos, MemorySegment dst, long dstOffset, long n) {
        if (kind == WriteKind.DATA) {
            Iovecs.copyOut(iov, iovCount, pos, dst, dstOffset, n);
        } else {
            dst.asSlice(dstOffset, n).fill((byte) 0);
        }
    }

    /** Sets guest cluster gc's L2 entry (and bitmap). */
    private void setEntry(long gc, long entry, long bitmap) {
        map.set(gc, entry, bitmap);
        if (entry == decompressedEntry) {
            decompressedEntry = -1;
        }
    }

    /**
     * The host clusters an old entry used are given up: freed at the next flush, once the new entry is on
     * disk; punched in the file then if punch.
     */
    private void giveUp(long oldEntry, boolean punch) {
        long first;
        long count;
        if ((oldEntry & COMPRESSED) != 0) {
            long coffset = compressedOffset(oldEntry);
            first = coffset >>> clusterBits;
            count = ((coffset + compressedBytes(oldEntry) - 1) >>> clusterBits) - first + 1;
            punch = false; // its clusters may hold other compressed clusters
        } else {
            long host = oldEntry & OFFSET_MASK;
            if (host == 0) {
                return;
            }
            first = host >>> clusterBits;
            count = 1;
        }
        refs.free(first, count, punch);
    }

    // ------------------------------------------------------------------ allocating writes in flight

    /**
     * True if a write to guest cluster gc puts its data in a new host cluster (unallocated, zero without a
     * host cluster, compressed, or shared), as {@link AllocatingWrites} does; false if it writes in place or
     * the image takes no such writes (read-only, corrupt, extended L2). The caller holds the lock.
     */
    boolean allocatesOnWrite(long gc) {
        if (readOnly || corrupt || extendedL2) {
            return false;
        }
        long entry = map.entry(gc, bitmapHolder);
        if ((entry & COMPRESSED) != 0) {
            return true;
        }
        if ((entry & COPIED) != 0) {
            return false;
        }
        checkedHost(entry); // a shared cluster is read for copy-on-write: it must be a valid one
        return true;
    }

    /**
     * count contiguous new host clusters for an allocating write, clear of metadata (the image marked dirty
     * first if lazy refcounts are on). Counted at once; linked by {@link #linkRun} once the data is written.
     * The caller holds the lock.
     */
    long allocateRun(int count) {
        markDirtyIfLazy();
        long host = refs.allocate(count);
        checkDataWrite(host, (long) count << clusterBits);
        return host;
    }

    /** Host clusters one refcount block counts. */
    int refcountBlockEntries() {
        return refs.blockEntries();
    }

    /**
     * An allocating write's data is in the file: the count guest clusters from firstGc point at the run from
     * host now, and what they used is given up. The L2 entries reach the disk at the next flush, after the
     * refcounts and a sync that makes the data durable first. The caller holds the lock.
     */
    void linkRun(long firstGc, int count, long host) {
        if (corrupt) {
            throw new Qcow2IoException(-Errno.EIO, "image marked corrupt while a write was in flight");
        }
        file.grownTo(host + ((long) count << clusterBits));
        for (int i = 0; i < count; i++) {
            long gc = firstGc + i;
            long old = map.entry(gc, bitmapHolder);
            setEntry(gc, (host + ((long) i << clusterBits)) | COPIED, 0);
            giveUp(old, false);
        }
    }

    /** An allocating write failed: its clusters, never linked, are freed at the next flush. Under the lock. */
    void dropRun(long host, int count) {
        refs.free(host >>> clusterBits, count, false);
    }

    // ------------------------------------------------------------------ flush

    /**
     * Writes every dirty table in the safe order, each step durable before the next: refcount blocks and
     * table, L2 tables, L1 table; then frees what was given up. Returns true if it synced the file (the
     * data's flush is then done too).
     */
    boolean flushMetadata() {
        boolean dirty = refs.dirty() || map.dirty() || refs.pendingFrees() > 0;
        if (!dirty) {
            return false;
        }
        refs.makeDurable();
        map.writeBack();
        if (refs.pendingFrees() > 0) {
            refs.applyFrees();
        }
        return true;
    }

    void sync() {
        io(file.flushSync(), "flush the image file");
    }

    /** Writes a table (L1 or refcount) as whole clusters, zero-padded. */
    void writeTable(long[] table, long offset) {
        long bytes = Math.max(1, Qcow2Header.ceilDiv((long) table.length * 8, clusterSize)) * clusterSize;
        try (Arena temp = Arena.ofConfined()) {
            MemorySegment buf = temp.allocate(bytes, 4096);
            for (int i = 0; i < table.length; i++) {
                buf.set(Qcow2Header.BE_LONG, 8L * i, table[i]);
            }
            io(file.writeSync(buf, offset), "write a table");
        }
    }

    /** Points the header at an L1 table of entries, durably (the table is written and flushed already). */
    void moveL1(long offset, int entries) {
        headerBlock.set(Qcow2Header.BE_LONG, Qcow2Header.OFF_L1_OFFSET, offset);
        headerBlock.set(Qcow2Header.BE_INT, Qcow2Header.OFF_L1_SIZE, entries);
        writeHeader();
        sync();
    }

    /** Points the header at a new refcount table, durably (the table is written and flushed already). */
    void moveReftable(long offset, int clusters) {
        headerBlock.set(Qcow2Header.BE_LONG, Qcow2Header.OFF_REFTABLE_OFFSET, offset);
        headerBlock.set(Qcow2Header.BE_INT, Qcow2Header.OFF_REFTABLE_CLUSTERS, clusters);
        writeHeader();
        sync();
    }

    private void writeHeader() {
        if (layout.overlapsFixed(0, headerBlock.byteSize(), true)) {
            throw corruptNow("header write would overlap a table");
        }
        io(file.writeSync(headerBlock, 0), "write the header");
    }

    /** Sets or clears an incompatible feature bit in the header's copy (written by the caller). */
    private void setIncompatibleBit(long bit, boolean on) {
        long features = headerBlock.get(Qcow2Header.BE_LONG, Qcow2Header.OFF_INCOMPATIBLE);
        headerBlock.set(Qcow2Header.BE_LONG, Qcow2Header.OFF_INCOMPATIBLE, on ? features | bit : features & ~bit);
    }

    /** Sets or clears the dirty bit (incompatible feature 0), durably. */
    private void setDirtyBit(boolean on) {
        if (version < 3) {
            return;
        }
        if (!on) {
            sync(); // everything the refcounts describe is on disk before they are declared clean
        }
        setIncompatibleBit(Qcow2Header.INCOMPAT_DIRTY, on);
        writeHeader();
        sync();
        markedDirty = on;
    }

    // ------------------------------------------------------------------ resize

    /** Grows the virtual disk to newSize (a multiple of 512); shrinking is refused as QEMU's default. */
    public int resize(long newSize) {
        if (readOnly) {
            return -Errno.EPERM;
        }
        lock.lock();
        try {
            if (newSize < size) {
                return -Errno.EOPNOTSUPP;
            }
            long neededL1 = Qcow2Header.ceilDiv(Qcow2Header.ceilDiv(newSize, clusterSize), l2Entries);
            if (neededL1 * 8 > Qcow2Header.MAX_L1_BYTES) {
                return -Errno.EFBIG;
            }
            flushMetadata();
            if (neededL1 > map.l1Size()) {
                map.growL1((int) neededL1);
            }
            headerBlock.set(Qcow2Header.BE_LONG, Qcow2Header.OFF_SIZE, newSize);
            writeHeader();
            sync();
            size = newSize;
            flushMetadata();
            return 0;
        } catch (Qcow2IoException e) {
            return failed(e);
        } finally {
            lock.unlock();
        }
    }

    // ------------------------------------------------------------------ overlap checks

    /**
     * A write into the host cluster an entry names: it must lie inside the image (or what this open
     * allocated), be counted, and not be metadata. A hostile entry pointing anywhere else is corruption.
     */
    private void checkInPlace(long host) {
        long c = host >>> clusterBits;
        if (c >= refs.end() || refs.refcount(c) == 0) {
            throw corruptNow("L2 entry points at host cluster 0x" + Long.toHexString(host) + ", outside the image or unallocated");
        }
        checkDataWrite(host, clusterSize);
    }

    /** A data write to host clusters: it must not touch metadata (overlap-check). */
    void checkDataWrite(long host, long len) {
        if (options.overlapCheck() && layout.overlapsAny(host, len)) {
            throw corruptNow("data write to 0x" + Long.toHexString(host) + " would overwrite metadata");
        }
    }

    /** A metadata write of kind to [offset, offset+len): it must not land on other metadata. */
    void checkMetadataWrite(MetadataLayout.Kind kind, long offset, long len) {
        if (options.overlapCheck() && layout.conflicts(kind, offset, len)) {
            throw corruptNow("metadata write to 0x" + Long.toHexString(offset) + " would overwrite other metadata");
        }
    }

    /** The image contradicts itself: no more writes (the request fails with EIO); the corrupt bit is set. */
    Qcow2IoException corruptNow(String why) {
        if (!corrupt && !readOnly && version >= 3) {
            corrupt = true;
            setIncompatibleBit(Qcow2Header.INCOMPAT_CORRUPT, true);
            file.writeSync(headerBlock, 0);
            file.flushSync();
        }
        corrupt = true;
        return new Qcow2IoException(-Errno.EIO, "qcow2 node '" + name + "' is corrupt: " + why);
    }

    private static final org.jboss.logging.Logger LOG = org.jboss.logging.Logger.getLogger(Qcow2Image.class);

    /** A request failed on metadata: said once in the log (what QEMU prints), -errno for the guest. */
    int failed(Qcow2IoException e) {
        LOG.warnf("qcow2 node '%s': %s", name, e.getMessage());
        return e.errno();
    }

    private static void io(int rc, String what) {
        if (rc < 0) {
            throw new Qcow2IoException(rc, "cannot " + what);
        }
    }

    // ------------------------------------------------------------------ repair

    /**
     * Rebuilds the refcounts from what the L1 and L2 tables reference (an image left dirty by lazy refcounts
     * or a crash): new refcount blocks and table past the end of the file, written and flushed before the
     * header points at them. The old ones become free space.
     */
    private void rebuildRefcounts() throws Qcow2FormatException {
        long fileClusters = Qcow2Header.ceilDiv(file.size(), clusterSize);
        if (fileClusters > Integer.MAX_VALUE / 2) {
            throw new Qcow2FormatException("image too large to repair");
        }
        References seen = new References(clusterBits, fileClusters);
        seen.count(0, clusterSize);
        seen.count(map.l1Offset(), (long) map.l1Size() * 8);
        long[] holder = new long[1];
        for (int i = 0; i < map.l1Size(); i++) {
            long l2 = map.l2Table(i);
            if (l2 == 0) {
                continue;
            }
            seen.count(l2, clusterSize);
            for (long e = 0; e < l2Entries; e++) {
                long entry = map.entry((long) i * l2Entries + e, holder);
                if ((entry & COMPRESSED) != 0) {
                    seen.count(compressedOffset(entry), compressedBytes(entry));
                } else if ((entry & OFFSET_MASK) != 0) {
                    seen.count(entry & OFFSET_MASK, clusterSize);
                }
            }
        }
        refs.rebuild(seen.counts, seen.end);
    }

    /** The references a repair counts, by host cluster, and one past the last cluster counted. */
    private static final class References {
        private final int clusterBits;
        int[] counts;
        long end;

        References(int clusterBits, long fileClusters) {
            this.clusterBits = clusterBits;
            this.counts = new int[(int) Math.max(fileClusters, 1)];
        }

        void count(long offset, long len) throws Qcow2FormatException {
            if (len <= 0) {
                return;
            }
            long first = offset >>> clusterBits;
            long last = (offset + len - 1) >>> clusterBits;
            if (last >= Integer.MAX_VALUE / 2 || offset < 0) {
                throw new Qcow2FormatException("metadata references 0x" + Long.toHexString(offset) + ", past what an image can hold");
            }
            if (last >= counts.length) {
                counts = Arrays.copyOf(counts, (int) Math.max(last + 1, Math.min((long) counts.length * 2, Integer.MAX_VALUE / 2)));
            }
            for (long c = first; c <= last; c++) {
                counts[(int) c]++;
            }
            end = Math.max(end, last + 1);
        }
    }

    // ------------------------------------------------------------------ close

    /** Flushes the metadata in its safe order and the data with it (a flush of the node as a backing file). */
    public int flush() {
        lock.lock();
        try {
            return flushMetadata() ? 0 : file.flushSync();
        } catch (Qcow2IoException e) {
            return failed(e);
        } finally {
            lock.unlock();
        }
    }

    public void close() {
        lock.lock();
        try {
            if (!readOnly && !corrupt) {
                try {
                    flushMetadata();
                    if (markedDirty) {
                        setDirtyBit(false);
                    }
                } catch (Qcow2IoException e) {
                    // the image stays dirty: the next writable open repairs it
                }
            }
            decompressor.close();
        } finally {
            lock.unlock();
        }
        arena.close();
    }

}

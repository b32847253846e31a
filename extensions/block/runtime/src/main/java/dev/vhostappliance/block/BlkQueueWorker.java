package dev.vhostappliance.block;

import static dev.vhostappliance.block.VirtioBlk.HEADER_BYTES;
import static dev.vhostappliance.block.VirtioBlk.SECTOR;

import dev.vhostappliance.libc.Errno;
import dev.vhostappliance.virtqueue.DescriptorChain;
import dev.vhostappliance.virtqueue.Virtqueue;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import org.jboss.logging.Logger;

/**
 * Serves the requests of one virtqueue: parses each chain (header, data, status byte, in any buffer
 * layout), does the I/O straight between the image and guest memory with preadv/pwritev, writes the status
 * byte. Everything it needs is allocated once, here: nothing per request.
 */
final class BlkQueueWorker {
    private static final Logger LOG = Logger.getLogger(BlkQueueWorker.class);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int IOV_MAX = 1024;

    private final VirtioBlkDevice device;
    private final DescriptorChain chain;
    private final Arena arena = Arena.ofAuto();
    private final MemorySegment header = arena.allocate(HEADER_BYTES, 8);
    private final MemorySegment iov;
    private final int iovCapacity;
    /** For O_DIRECT nodes and buffers that are not aligned: allocated once, aligned, reused. */
    private MemorySegment bounce;
    private static final int BOUNCE_BYTES = 1 << 20;
    // Data part of the current request, as (buffer index, offset in it) bounds.
    private int dataFirst;
    private long dataFirstSkip;
    private int dataEnd;
    private long dataEndTrim;
    private long dataBytes;
    // counters of this queue (read, without locking, for monitoring)
    long reads;
    long writes;
    long readBytes;
    long writeBytes;
    long flushes;
    long discards;
    long errors;

    BlkQueueWorker(VirtioBlkDevice device, Virtqueue queue) {
        this.device = device;
        this.chain = queue.newChain();
        this.iovCapacity = chain.capacity();
        this.iov = arena.allocate(16L * iovCapacity, 8);
    }

    /** True if this worker's chain is too small for queue (the queue was restarted with a larger size). */
    boolean tooSmallFor(Virtqueue queue) {
        return chain.capacity() < queue.newChainCapacity();
    }

    void handle(Virtqueue queue) {
        while (queue.pop(chain) == Virtqueue.POPPED) {
            int written = process();
            queue.push(chain.head(), written);
        }
        queue.notifyDriver();
    }

    /** Handles the request in {@link #chain}; returns the bytes written into its writable buffers. */
    private int process() {
        if (chain.readableBytes() < HEADER_BYTES || chain.writableBytes() < 1) {
            // No place for a status byte, or no header: nothing can be answered in band.
            LOG.debugf("malformed request: %d readable, %d writable bytes", chain.readableBytes(), chain.writableBytes());
            return 0;
        }
        chain.gather(header, HEADER_BYTES);
        int type = header.get(U32, 0);
        long sector = header.get(U64, 8);
        byte status;
        int written = 1;
        switch (type) {
            case VirtioBlk.T_IN -> {
                // data: every writable byte but the last (the status)
                setData(chain.readableCount(), 0, true);
                status = rw(false, sector);
                if (status == VirtioBlk.S_OK) {
                    written += (int) dataBytes;
                }
            }
            case VirtioBlk.T_OUT -> {
                setData(0, HEADER_BYTES, false);
                status = device.readOnly() ? VirtioBlk.S_IOERR : rw(true, sector);
            }
            case VirtioBlk.T_FLUSH -> status = device.flush() ? VirtioBlk.S_OK : VirtioBlk.S_IOERR;
            case VirtioBlk.T_DISCARD, VirtioBlk.T_WRITE_ZEROES -> {
                setData(0, HEADER_BYTES, false);
                status = device.readOnly() ? VirtioBlk.S_IOERR : discardOrZero(type == VirtioBlk.T_WRITE_ZEROES);
            }
            case VirtioBlk.T_GET_ID -> {
                written += writeId();
                status = VirtioBlk.S_OK;
            }
            default -> status = VirtioBlk.S_UNSUPP;
        }
        writeStatus(status);
        count(type, status);
        return written;
    }

    private void count(int type, byte status) {
        if (status != VirtioBlk.S_OK) {
            errors++;
            return;
        }
        switch (type) {
            case VirtioBlk.T_IN -> {
                reads++;
                readBytes += dataBytes;
            }
            case VirtioBlk.T_OUT -> {
                writes++;
                writeBytes += dataBytes;
            }
            case VirtioBlk.T_FLUSH -> flushes++;
            case VirtioBlk.T_DISCARD, VirtioBlk.T_WRITE_ZEROES -> discards++;
            default -> { }
        }
    }

    /** The status byte: the last byte of the last writable buffer. */
    private void writeStatus(byte status) {
        int last = chain.count() - 1;
        chain.region(last).set(ValueLayout.JAVA_BYTE, chain.offset(last) + chain.length(last) - 1, status);
    }

    /** Describes the data buffers: readable after the header (OUT) or writable before the status (IN). */
    private void setData(int first, long skip, boolean writable) {
        if (!writable) {
            // skip the header bytes across buffers
            int i = 0;
            long s = skip;
            while (i < chain.readableCount() && s >= chain.length(i)) {
                s -= chain.length(i);
                i++;
            }
            dataFirst = i;
            dataFirstSkip = s;
            dataEnd = chain.readableCount();
            dataEndTrim = 0;
            dataBytes = chain.readableBytes() - HEADER_BYTES;
        } else {
            dataFirst = first;
            dataFirstSkip = 0;
            dataEnd = chain.count();
            dataEndTrim = 1;
            dataBytes = chain.writableBytes() - 1;
        }
    }

    private byte rw(boolean write, long sector) {
        long bytes = dataBytes;
        int lbs = device.logicalBlockSize();
        long capacityBytes = device.capacitySectors() * SECTOR;
        if (bytes % lbs != 0 || Long.compareUnsigned(sector, capacityBytes / SECTOR) > 0
                || (sector * SECTOR) % lbs != 0 || sector * SECTOR > capacityBytes - bytes) {
            return VirtioBlk.S_IOERR;
        }
        long offset = sector * SECTOR;
        int align = device.node().memoryAlignment();
        if (align > 1 && !dataAligned(align)) {
            return bounced(write, offset, bytes) ? okAfterWrite(write) : VirtioBlk.S_IOERR;
        }
        int i = dataFirst;
        long skip = dataFirstSkip;
        while (bytes > 0) {
            // Fill up to IOV_MAX iovecs from the data buffers, then one syscall (looping on short transfers).
            int n = 0;
            long batch = 0;
            while (i < dataEnd && n < IOV_MAX && batch < bytes) {
                long len = chain.length(i) - skip - (i == dataEnd - 1 ? dataEndTrim : 0);
                if (len > 0) {
                    iov.set(ValueLayout.JAVA_LONG, 16L * n, chain.address(i) + skip);
                    iov.set(ValueLayout.JAVA_LONG, 16L * n + 8, len);
                    n++;
                    batch += len;
                }
                skip = 0;
                i++;
            }
            long rc;
            if (batch >= 2 * SPLIT_MIN && device.splitLargeTransfers()) {
                rc = transferSplit(write, n, offset, batch);
            } else {
                rc = transfer(device.node(), write, iov, n, offset, batch);
            }
            if (rc == -Errno.EINVAL && align > 1) {
                // The kernel wants stricter alignment than we checked: take the bounce path instead.
                return bounced(write, sector * SECTOR, dataBytes) ? okAfterWrite(write) : VirtioBlk.S_IOERR;
            }
            if (rc != 0) {
                LOG.warnf("%s at %d: %s", write ? "pwritev" : "preadv", offset,
                        rc > 0 ? "end of file" : Errno.describe((int) -rc));
                return VirtioBlk.S_IOERR;
            }
            offset += batch;
            bytes -= batch;
        }
        return okAfterWrite(write);
    }

    private byte okAfterWrite(boolean write) {
        if (write && device.writethrough() && !device.flush()) {
            return VirtioBlk.S_IOERR;
        }
        return VirtioBlk.S_OK;
    }

    /** True if every data buffer starts and ends on the alignment (lengths then add up aligned too). */
    private boolean dataAligned(int align) {
        long skip = dataFirstSkip;
        for (int i = dataFirst; i < dataEnd; i++) {
            long len = chain.length(i) - skip - (i == dataEnd - 1 ? dataEndTrim : 0);
            if (len > 0 && (((chain.address(i) + skip) | len) & (align - 1)) != 0) {
                return false;
            }
            skip = 0;
        }
        return true;
    }

    /**
     * The data through the bounce buffer, in chunks: guest buffers -> bounce -> pwrite, or pread -> bounce
     * -> guest buffers. Offsets and lengths are multiples of the logical block size (checked before).
     */
    private boolean bounced(boolean write, long offset, long bytes) {
        if (bounce == null) {
            bounce = arena.allocate(BOUNCE_BYTES, 4096);
        }
        long done = 0;
        while (done < bytes) {
            int chunk = (int) Math.min(BOUNCE_BYTES, bytes - done);
            if (write) {
                copyData(done, chunk, bounce, true);
            }
            long moved = 0;
            while (moved < chunk) {
                long rc = write ? LibCBounce.pwrite(device.node(), bounce, moved, chunk - moved, offset + done + moved, iov)
                        : LibCBounce.pread(device.node(), bounce, moved, chunk - moved, offset + done + moved, iov);
                if (rc == -Errno.EINTR) {
                    continue;
                }
                if (rc <= 0) {
                    LOG.warnf("bounced %s at %d: %s", write ? "write" : "read", offset + done + moved,
                            rc == 0 ? "end of file" : Errno.describe((int) -rc));
                    return false;
                }
                moved += rc;
            }
            if (!write) {
                copyData(done, chunk, bounce, false);
            }
            done += chunk;
        }
        return true;
    }

    /** Copies data bytes [from, from+n) between the guest buffers and other (toOther: guest -> other). */
    private void copyData(long from, int n, MemorySegment other, boolean toOther) {
        long skip = dataFirstSkip + from;
        int i = dataFirst;
        while (i < dataEnd) {
            long len = chain.length(i) - (i == dataEnd - 1 ? dataEndTrim : 0);
            if (skip < len) {
                break;
            }
            skip -= len;
            i++;
        }
        int done = 0;
        while (i < dataEnd && done < n) {
            long len = chain.length(i) - (i == dataEnd - 1 ? dataEndTrim : 0) - skip;
            int step = (int) Math.min(len, n - done);
            if (toOther) {
                MemorySegment.copy(chain.region(i), chain.offset(i) + skip, other, done, step);
            } else {
                MemorySegment.copy(other, done, chain.region(i), chain.offset(i) + skip, step);
            }
            done += step;
            skip = 0;
            i++;
        }
    }

    /** Requests of at least twice this are split between this thread and the queue's I/O helper. */
    static final long SPLIT_MIN = 64 * 1024;
    private IoHelper helper;

    /**
     * Moves len bytes through the n iovecs at iov from/to offset, looping on short transfers (the iovecs
     * are consumed). Returns 0, -errno, or 1 at an unexpected end of file.
     */
    static long transfer(BlockNode node, boolean write, MemorySegment iov, int n, long offset, long len) {
        long done = 0;
        while (done < len) {
            long rc = write ? node.pwritev(iov, n, offset + done) : node.preadv(iov, n, offset + done);
            if (rc == -Errno.EINTR) {
                continue;
            }
            if (rc < 0) {
                return rc;
            }
            if (rc == 0) {
                return 1;
            }
            done += rc;
            if (done < len) {
                advance(iov, n, rc);
                n = compact(iov, n);
            }
        }
        return 0;
    }

    /**
     * A large batch in two halves at once: the upper half (from a logical-block boundary) on the queue's
     * I/O helper thread, the lower half here, so two cores copy (what io_uring's workers do for qsd).
     */
    private long transferSplit(boolean write, int n, long offset, long batch) {
        if (helper == null) {
            helper = new IoHelper(device.node(), "vq-io-" + Integer.toHexString(System.identityHashCode(this)));
        }
        long half = batch / 2 / device.logicalBlockSize() * device.logicalBlockSize();
        // find the iovec where the lower half ends; the helper gets the rest (the first entry cut)
        long acc = 0;
        int k = 0;
        while (acc + iov.get(ValueLayout.JAVA_LONG, 16L * k + 8) <= half) {
            acc += iov.get(ValueLayout.JAVA_LONG, 16L * k + 8);
            k++;
        }
        long cut = half - acc;
        MemorySegment upper = helper.iov;
        int m = 0;
        for (int j = k; j < n; j++) {
            long base = iov.get(ValueLayout.JAVA_LONG, 16L * j);
            long len = iov.get(ValueLayout.JAVA_LONG, 16L * j + 8);
            long skip = j == k ? cut : 0;
            upper.set(ValueLayout.JAVA_LONG, 16L * m, base + skip);
            upper.set(ValueLayout.JAVA_LONG, 16L * m + 8, len - skip);
            m++;
        }
        int lowerCount = k;
        if (cut > 0) {
            iov.set(ValueLayout.JAVA_LONG, 16L * k + 8, cut);
            lowerCount = k + 1;
        }
        helper.submit(write, m, offset + half, batch - half);
        long mine = transfer(device.node(), write, iov, lowerCount, offset, half);
        long theirs = helper.await();
        return mine != 0 ? mine : theirs;
    }

    /** After a short transfer of rc bytes: advance the iovec array past what was done. */
    static void advance(MemorySegment iov, int n, long rc) {
        long left = rc;
        for (int k = 0; k < n && left > 0; k++) {
            long len = iov.get(ValueLayout.JAVA_LONG, 16L * k + 8);
            long step = Math.min(len, left);
            iov.set(ValueLayout.JAVA_LONG, 16L * k, iov.get(ValueLayout.JAVA_LONG, 16L * k) + step);
            iov.set(ValueLayout.JAVA_LONG, 16L * k + 8, len - step);
            left -= step;
        }
    }

    /** Drops leading empty iovecs; returns the new count. */
    static int compact(MemorySegment iov, int n) {
        int first = 0;
        while (first < n && iov.get(ValueLayout.JAVA_LONG, 16L * first + 8) == 0) {
            first++;
        }
        if (first > 0) {
            MemorySegment.copy(iov, 16L * first, iov, 0, 16L * (n - first));
        }
        return n - first;
    }

    /** virtio_blk_discard_write_zeroes: {le64 sector; le32 num_sectors; le32 flags}. */
    private static final int SEGMENT_BYTES = 16;
    private static final int WZ_UNMAP = 1;

    /** DISCARD or WRITE_ZEROES: the segments are in the readable data after the header. */
    private byte discardOrZero(boolean writeZeroes) {
        long bytes = dataBytes;
        int maxSegments = writeZeroes ? VirtioBlkDevice.MAX_WRITE_ZEROES_SEG : VirtioBlkDevice.MAX_DISCARD_SEG;
        long maxSectors = writeZeroes ? VirtioBlkDevice.MAX_WRITE_ZEROES_SECTORS : VirtioBlkDevice.MAX_DISCARD_SECTORS;
        if (bytes == 0 || bytes % SEGMENT_BYTES != 0 || bytes / SEGMENT_BYTES > maxSegments) {
            return VirtioBlk.S_UNSUPP;
        }
        long lbsSectors = device.logicalBlockSize() / SECTOR;
        for (long s = 0; s < bytes / SEGMENT_BYTES; s++) {
            copyData(s * SEGMENT_BYTES, SEGMENT_BYTES, header, true); // header is free again: reuse it
            long sector = header.get(U64, 0);
            long count = Integer.toUnsignedLong(header.get(U32, 8));
            int flags = header.get(U32, 12);
            if ((flags & ~(writeZeroes ? WZ_UNMAP : 0)) != 0) {
                return VirtioBlk.S_UNSUPP;
            }
            if (count > maxSectors || Long.compareUnsigned(sector, device.capacitySectors()) > 0
                    || count > device.capacitySectors() - sector || sector % lbsSectors != 0 || count % lbsSectors != 0) {
                return VirtioBlk.S_IOERR;
            }
            boolean ok = writeZeroes ? device.node().writeZeroes(sector * SECTOR, count * SECTOR, (flags & WZ_UNMAP) != 0)
                    : device.node().discard(sector * SECTOR, count * SECTOR);
            if (!ok) {
                return VirtioBlk.S_IOERR;
            }
        }
        if (writeZeroes && device.writethrough() && !device.flush()) {
            return VirtioBlk.S_IOERR;
        }
        return VirtioBlk.S_OK;
    }

    /** GET_ID: the serial, zero-padded to 20 bytes, as far as the writable space (before status) allows. */
    private int writeId() {
        byte[] id = device.serial();
        long room = chain.writableBytes() - 1;
        int n = (int) Math.min(room, VirtioBlk.ID_BYTES);
        int done = 0;
        for (int i = chain.readableCount(); i < chain.count() && done < n; i++) {
            int len = Math.min(chain.length(i), n - done);
            for (int k = 0; k < len; k++) {
                int src = done + k;
                chain.region(i).set(ValueLayout.JAVA_BYTE, chain.offset(i) + k, src < id.length ? id[src] : 0);
            }
            done += len;
        }
        return done;
    }
}

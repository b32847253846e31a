package dev.vhostappliance.block.export.vhostuser;

import static dev.vhostappliance.block.request.VirtioBlk.SECTOR;

import dev.vhostappliance.block.io.IoCompletionSink;
import dev.vhostappliance.block.io.IoEngine;
import dev.vhostappliance.block.io.IoRequest;
import dev.vhostappliance.block.node.BlockNode;
import dev.vhostappliance.block.request.VirtioBlk;
import dev.vhostappliance.block.request.VirtioBlkRequest;
import dev.vhostappliance.libc.Errno;
import dev.vhostappliance.virtqueue.DescriptorChain;
import dev.vhostappliance.virtqueue.Virtqueue;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import org.jboss.logging.Logger;

/**
 * Serves one virtqueue with many requests in flight: pops every available chain, parses each into a
 * {@link VirtioBlkRequest}, starts its I/O on the queue's {@link IoEngine}, hands them all to the kernel at
 * once, and completes them in whatever order they finish, with one guest notification per batch. Runs on the
 * queue's worker thread only. Requests are slots allocated on first use and reused: in steady state nothing is
 * allocated per request.
 */
final class BlkQueue implements IoCompletionSink {
    private static final Logger LOG = Logger.getLogger(BlkQueue.class);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Steps of a request. */
    private static final int STAGE_IO = 0;
    private static final int STAGE_FLUSH = 1;
    /** virtio_blk_discard_write_zeroes: {le64 sector; le32 num_sectors; le32 flags}. */
    private static final int SEGMENT_BYTES = 16;
    private static final int WZ_UNMAP = 1;

    private final VirtioBlkDevice device;
    private final BlockNode node;
    private final IoEngine engine;
    /** The node's I/O waits on a device: sleep, not poll, while it is in flight ({@link BlockNode#waitsOnDevice}). */
    private final boolean deviceBound;
    private final DescriptorChain chain;
    private final MemorySegment scratch = Arena.ofAuto().allocate(SEGMENT_BYTES, 8);
    private final VirtioBlkRequest[] free;
    private int freeTop;
    private int created;
    private final BouncePool bounces = new BouncePool();
    /** GET_ID's answer: the serial, zero-padded. */
    private final MemorySegment serial = Arena.ofAuto().allocate(VirtioBlk.ID_BYTES, 1);
    /** True once this queue claimed the node for writing ({@link BlockNode#startWriting}) until it stops. */
    private boolean writing;
    /** The queue completions were pushed to since the last notification, or null. */
    private Virtqueue pushedTo;
    // counters of this queue (read, without locking, for monitoring)
    long reads;
    long writes;
    long readBytes;
    long writeBytes;
    long flushes;
    long discards;
    long errors;

    BlkQueue(VirtioBlkDevice device, Virtqueue queue, String who) {
        this.device = device;
        this.node = device.node();
        this.chain = queue.newChain();
        this.free = new VirtioBlkRequest[queue.size()];
        this.engine = node.engineKind().open(queue.size(), node.ioFd(), who);
        this.deviceBound = node.waitsOnDevice();
        byte[] id = device.serial();
        MemorySegment.copy(MemorySegment.ofArray(id), 0, serial, 0, Math.min(id.length, VirtioBlk.ID_BYTES));
    }

    /** True if this queue state cannot serve queue (restarted larger); it must then be closed and replaced. */
    boolean tooSmallFor(Virtqueue queue) {
        return chain.capacity() < queue.newChainCapacity() || free.length < queue.size();
    }

    IoEngine engine() {
        return engine;
    }

    /** True while requests of this queue are in flight on a node whose I/O waits on a device. */
    boolean waitsOnDevice() {
        return deviceBound && engine.inFlight() > 0;
    }

    /** A kick or a completion: collect what finished, start everything the guest made available, notify. */
    void handle(Virtqueue queue) {
        engine.reap(this);
        while (freeTop > 0 || created < free.length) {
            if (queue.pop(chain) != Virtqueue.POPPED) {
                break;
            }
            start(take(), queue);
        }
        engine.submit();
        engine.reap(this); // what finished while being submitted (page-cache hits, null-co)
        notifyDriver();
    }

    /** Completions only (the ring is stopping). */
    void complete() {
        engine.reap(this);
        notifyDriver();
    }

    private void notifyDriver() {
        if (pushedTo != null) {
            pushedTo.notifyDriver();
            pushedTo = null;
        }
    }

    private VirtioBlkRequest take() {
        if (freeTop > 0) {
            return free[--freeTop];
        }
        created++;
        return new VirtioBlkRequest(); // a slot's first use; reused from then on
    }

    private void start(VirtioBlkRequest r, Virtqueue queue) {
        if (!r.parse(chain, queue, scratch)) {
            // No place for a status byte, or no header: nothing can be answered in band.
            LOG.debugf("malformed request: %d readable, %d writable bytes", chain.readableBytes(), chain.writableBytes());
            errors++;
            push(r, 0);
            return;
        }
        switch (r.type()) {
            case VirtioBlk.T_IN -> startTransfer(r, false);
            case VirtioBlk.T_OUT -> {
                if (device.readOnly() || !claimWriting()) {
                    finish(r, VirtioBlk.S_IOERR);
                } else {
                    startTransfer(r, true);
                }
            }
            case VirtioBlk.T_FLUSH -> {
                if (device.readOnly()) {
                    finish(r, VirtioBlk.S_OK);
                } else {
                    r.stage = STAGE_FLUSH;
                    node.flush(engine, r);
                }
            }
            case VirtioBlk.T_DISCARD, VirtioBlk.T_WRITE_ZEROES -> {
                if (device.readOnly() || !claimWriting()) {
                    finish(r, VirtioBlk.S_IOERR);
                } else {
                    startDiscardOrZero(r, r.type() == VirtioBlk.T_WRITE_ZEROES);
                }
            }
            case VirtioBlk.T_GET_ID -> finish(r, VirtioBlk.S_OK);
            default -> finish(r, VirtioBlk.S_UNSUPP);
        }
    }

    /**
     * The queue's first write since it started claims the node (an RBD image's exclusive lock; nothing for a
     * file, whose lock was taken at open): false while another host holds it, and the write fails.
     */
    private boolean claimWriting() {
        if (writing) {
            return true;
        }
        int rc = node.startWriting();
        if (rc < 0) {
            LOG.warnf("write refused: the node cannot be claimed for writing: %s", Errno.describe(-rc));
            return false;
        }
        writing = true;
        return true;
    }

    /** The frontend stopped the queue (or left): its claim on the node goes. */
    void stoppedWriting() {
        if (writing) {
            writing = false;
            node.stopWriting();
        }
    }

    private void startTransfer(VirtioBlkRequest r, boolean write) {
        long bytes = r.dataBytes();
        long sector = r.sector();
        int lbs = device.logicalBlockSize();
        long capacityBytes = device.capacitySectors() * SECTOR;
        if (bytes % lbs != 0 || Long.compareUnsigned(sector, capacityBytes / SECTOR) > 0
                || (sector * SECTOR) % lbs != 0 || sector * SECTOR > capacityBytes - bytes) {
            finish(r, VirtioBlk.S_IOERR);
            return;
        }
        if (bytes == 0) {
            finish(r, VirtioBlk.S_OK);
            return;
        }
        r.stage = STAGE_IO;
        int align = node.memoryAlignment();
        if (align > 1 && !r.dataAligned(align)) {
            startBounced(r);
        } else if (write) {
            node.write(engine, r, r.dataIov(), r.dataCount(), sector * SECTOR, bytes);
        } else {
            node.read(engine, r, r.dataIov(), r.dataCount(), sector * SECTOR, bytes);
        }
    }

    /** O_DIRECT with guest buffers that are not aligned: the data in chunks through an aligned buffer. */
    private void startBounced(VirtioBlkRequest r) {
        r.bounce = bounces.take();
        r.bounceDone = 0;
        nextBouncedChunk(r);
    }

    private void nextBouncedChunk(VirtioBlkRequest r) {
        long chunk = Math.min(BouncePool.BYTES, r.dataBytes() - r.bounceDone);
        long offset = r.sector() * SECTOR + r.bounceDone;
        r.bounceIov.set(ValueLayout.JAVA_LONG, 0, r.bounce.address());
        r.bounceIov.set(ValueLayout.JAVA_LONG, 8, chunk);
        if (r.type() == VirtioBlk.T_OUT) {
            r.copyData(r.bounceDone, chunk, r.bounce, 0, true);
            node.write(engine, r, r.bounceIov, 1, offset, chunk);
        } else {
            node.read(engine, r, r.bounceIov, 1, offset, chunk);
        }
    }

    /** DISCARD or WRITE_ZEROES: one segment (max_discard_seg / max_write_zeroes_seg are 1) in the data. */
    private void startDiscardOrZero(VirtioBlkRequest r, boolean writeZeroes) {
        long bytes = r.dataBytes();
        int maxSegments = writeZeroes ? VirtioBlkDevice.MAX_WRITE_ZEROES_SEG : VirtioBlkDevice.MAX_DISCARD_SEG;
        long maxSectors = writeZeroes ? VirtioBlkDevice.MAX_WRITE_ZEROES_SECTORS : VirtioBlkDevice.MAX_DISCARD_SECTORS;
        if (bytes == 0 || bytes % SEGMENT_BYTES != 0 || bytes / SEGMENT_BYTES > maxSegments) {
            finish(r, VirtioBlk.S_UNSUPP);
            return;
        }
        r.copyData(0, SEGMENT_BYTES, scratch, 0, true);
        long sector = scratch.get(U64, 0);
        long count = Integer.toUnsignedLong(scratch.get(U32, 8));
        int flags = scratch.get(U32, 12);
        long lbsSectors = device.logicalBlockSize() / SECTOR;
        if ((flags & ~(writeZeroes ? WZ_UNMAP : 0)) != 0) {
            finish(r, VirtioBlk.S_UNSUPP);
            return;
        }
        if (count > maxSectors || Long.compareUnsigned(sector, device.capacitySectors()) > 0
                || count > device.capacitySectors() - sector || sector % lbsSectors != 0 || count % lbsSectors != 0) {
            finish(r, VirtioBlk.S_IOERR);
            return;
        }
        r.stage = STAGE_IO;
        if (writeZeroes) {
            node.writeZeroes(engine, r, sector * SECTOR, count * SECTOR, (flags & WZ_UNMAP) != 0);
        } else {
            node.discard(engine, r, sector * SECTOR, count * SECTOR);
        }
    }

    /** A step of request io finished on the engine. */
    @Override
    public void completed(IoRequest io) {
        VirtioBlkRequest r = (VirtioBlkRequest) io;
        int result = r.result();
        if (r.stage == STAGE_FLUSH) {
            if (result < 0) {
                LOG.warnf("flush: %s", Errno.describe(-result));
            }
            finish(r, result == 0 ? VirtioBlk.S_OK : VirtioBlk.S_IOERR);
            return;
        }
        boolean transfer = r.type() == VirtioBlk.T_IN || r.type() == VirtioBlk.T_OUT;
        if (result == -Errno.EINVAL && transfer && r.bounce == null && node.memoryAlignment() > 1) {
            startBounced(r); // the kernel wants stricter alignment than we checked: through the bounce buffer
            return;
        }
        if (result < 0) {
            LOG.warnf("%s at sector %d: %s", describe(r.type()), r.sector(), Errno.describe(-result));
            finish(r, VirtioBlk.S_IOERR);
            return;
        }
        if (r.bounce != null) {
            long chunk = Math.min(BouncePool.BYTES, r.dataBytes() - r.bounceDone);
            if (r.type() == VirtioBlk.T_IN) {
                r.copyData(r.bounceDone, chunk, r.bounce, 0, false);
            }
            r.bounceDone += chunk;
            if (r.bounceDone < r.dataBytes()) {
                nextBouncedChunk(r);
                return;
            }
        }
        if (r.type() != VirtioBlk.T_IN && r.type() != VirtioBlk.T_DISCARD && device.writethrough()) {
            r.stage = STAGE_FLUSH; // writethrough: the write is complete once it is durable
            node.flush(engine, r);
            return;
        }
        finish(r, VirtioBlk.S_OK);
    }

    private static String describe(int type) {
        return switch (type) {
            case VirtioBlk.T_IN -> "read";
            case VirtioBlk.T_OUT -> "write";
            case VirtioBlk.T_DISCARD -> "discard";
            default -> "write-zeroes";
        };
    }

    /** Writes the status, returns the request to the guest and its slot to the pool. */
    private void finish(VirtioBlkRequest r, byte status) {
        int written = 1;
        if (status == VirtioBlk.S_OK) {
            switch (r.type()) {
                case VirtioBlk.T_IN -> {
                    reads++;
                    readBytes += r.dataBytes();
                    written += (int) r.dataBytes();
                }
                case VirtioBlk.T_OUT -> {
                    writes++;
                    writeBytes += r.dataBytes();
                }
                case VirtioBlk.T_FLUSH -> flushes++;
                case VirtioBlk.T_DISCARD, VirtioBlk.T_WRITE_ZEROES -> discards++;
                case VirtioBlk.T_GET_ID -> written += writeId(r);
                default -> { }
            }
        } else {
            errors++;
        }
        r.writeStatus(status);
        push(r, written);
    }

    private void push(VirtioBlkRequest r, int written) {
        if (r.bounce != null) {
            bounces.give(r.bounce);
            r.bounce = null;
        }
        Virtqueue q = r.queue();
        q.push(r.head(), written);
        if (pushedTo != null && pushedTo != q) {
            pushedTo.notifyDriver();
        }
        pushedTo = q;
        free[freeTop++] = r;
    }

    /** GET_ID: the serial, zero-padded to 20 bytes, as far as the writable space (before status) allows. */
    private int writeId(VirtioBlkRequest r) {
        int n = (int) Math.min(r.dataBytes(), VirtioBlk.ID_BYTES);
        r.copyData(0, n, serial, 0, false);
        return n;
    }

    /** The ring is gone for good (device closed, or replaced by a larger one): the engine's resources too. */
    void close() {
        stoppedWriting();
        engine.close();
    }
}

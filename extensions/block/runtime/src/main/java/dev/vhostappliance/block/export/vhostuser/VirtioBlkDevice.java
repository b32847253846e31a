package dev.vhostappliance.block.export.vhostuser;

import static dev.vhostappliance.block.request.VirtioBlk.SECTOR;

import dev.vhostappliance.block.node.BlockNode;
import dev.vhostappliance.block.request.VirtioBlk;
import dev.vhostappliance.device.QueueWaker;
import dev.vhostappliance.device.VirtioDevice;
import dev.vhostappliance.protocol.ProtocolFeature;
import dev.vhostappliance.virtqueue.Virtqueue;
import dev.vhostappliance.virtqueue.VirtioRing;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * The vhost-user-blk export: virtio-blk over a block node. Features, config space, and one {@link BlkQueue}
 * per virtqueue, each with its own I/O engine, woken by the core's queue worker on a kick or a completion.
 * The node may be shared with other exports; the device does not close it.
 */
public final class VirtioBlkDevice implements VirtioDevice {
    private static final int SEG_MAX = 126;
    private static final int SIZE_MAX = 1 << 20;
    /** Discard / write-zeroes limits, as qemu-storage-daemon's vhost-user-blk export advertises them. */
    static final int MAX_DISCARD_SECTORS = 32768;
    static final int MAX_DISCARD_SEG = 1;
    static final int MAX_WRITE_ZEROES_SECTORS = 32768;
    static final int MAX_WRITE_ZEROES_SEG = 1;

    private final BlockNode node;
    private final boolean readOnly;
    private final int numQueues;
    private final int logicalBlockSize;
    private final boolean writethrough;
    private final byte[] serial;
    private volatile long capacitySectors;
    private volatile dev.vhostappliance.device.FrontendChannel frontend;
    private final BlkQueue[] queues;
    private volatile QueueWaker waker = QueueWaker.NONE;
    private volatile boolean writeback;
    private final String id;
    private volatile long pollNanos = -1;

    public VirtioBlkDevice(BlockNode node, boolean writable, int numQueues, int logicalBlockSize, boolean writethrough,
            String serial) {
        this.node = node;
        this.readOnly = !writable || node.readOnly();
        this.numQueues = numQueues;
        this.logicalBlockSize = logicalBlockSize;
        this.writethrough = writethrough;
        this.writeback = !writethrough;
        this.serial = serial == null ? new byte[0] : serial.getBytes(StandardCharsets.UTF_8);
        this.capacitySectors = node.size() / logicalBlockSize * logicalBlockSize / SECTOR;
        this.queues = new BlkQueue[numQueues];
        this.id = "export of node '" + node.name() + "'";
    }

    /** How long the queue threads poll before sleeping (an iothread's poll-max-ns); -1 for the default. */
    public void setPollNanos(long nanos) {
        this.pollNanos = nanos;
    }

    @Override
    public long pollNanos() {
        return pollNanos;
    }

    public BlockNode node() {
        return node;
    }

    public boolean readOnly() {
        return readOnly;
    }

    boolean writethrough() {
        return writethrough || !writeback;
    }

    int logicalBlockSize() {
        return logicalBlockSize;
    }

    long capacitySectors() {
        return capacitySectors;
    }

    byte[] serial() {
        return serial;
    }


    @Override
    public int virtioId() {
        return VirtioBlk.VIRTIO_ID_BLOCK;
    }

    @Override
    public long features() {
        long f = VirtioRing.STANDARD_FEATURES | bit(VirtioBlk.F_SIZE_MAX) | bit(VirtioBlk.F_SEG_MAX)
                | bit(VirtioBlk.F_BLK_SIZE) | bit(VirtioBlk.F_TOPOLOGY) | bit(VirtioBlk.F_FLUSH)
                | bit(VirtioBlk.F_CONFIG_WCE) | bit(VirtioBlk.F_MQ);
        if (readOnly) {
            f |= bit(VirtioBlk.F_RO);
        } else {
            f |= bit(VirtioBlk.F_DISCARD) | bit(VirtioBlk.F_WRITE_ZEROES);
        }
        return f;
    }

    private static long bit(int b) {
        return 1L << b;
    }

    @Override
    public long protocolFeatures() {
        return ProtocolFeature.bit(ProtocolFeature.CONFIG);
    }

    @Override
    public int numQueues() {
        return numQueues;
    }

    @Override
    public void setQueueWaker(QueueWaker waker) {
        this.waker = waker;
    }

    @Override
    public void handleQueue(int queueIndex, Virtqueue queue) {
        BlkQueue q = queues[queueIndex];
        if (q == null || q.tooSmallFor(queue)) {
            if (q != null) {
                q.close();
            }
            q = new BlkQueue(this, queue, id + " queue " + queueIndex);
            int index = queueIndex;
            q.engine().setWaker(() -> waker.wake(index)); // a request another queue held for us comes back
            queues[queueIndex] = q;
        }
        q.handle(queue);
    }

    @Override
    public int completionFd(int queueIndex) {
        BlkQueue q = queues[queueIndex];
        return q == null ? -1 : q.engine().completionFd();
    }

    @Override
    public boolean hasCompletions(int queueIndex) {
        BlkQueue q = queues[queueIndex];
        return q != null && q.engine().hasCompletions();
    }

    @Override
    public boolean awaitsCompletions(int queueIndex) {
        BlkQueue q = queues[queueIndex];
        return q != null && q.waitsOnDevice();
    }

    @Override
    public void handleCompletions(int queueIndex, Virtqueue queue) {
        BlkQueue q = queues[queueIndex];
        if (q != null) {
            q.complete();
        }
    }


    private static final String[] COUNTERS = {"reads", "read-bytes", "writes", "write-bytes", "flushes", "discards",
        "errors", "capacity-sectors"};

    @Override
    public java.util.Map<String, Long> counters() {
        long[] c = new long[COUNTERS.length];
        for (BlkQueue w : queues) {
            if (w != null) {
                c[0] += w.reads;
                c[1] += w.readBytes;
                c[2] += w.writes;
                c[3] += w.writeBytes;
                c[4] += w.flushes;
                c[5] += w.discards;
                c[6] += w.errors;
            }
        }
        c[7] = capacitySectors;
        return dev.vhostappliance.device.Counters.of(COUNTERS, c);
    }

    byte[] config() {
        ByteBuffer b = ByteBuffer.allocate(VirtioBlk.CONFIG_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(0, capacitySectors);
        b.putInt(8, SIZE_MAX);
        b.putInt(12, SEG_MAX);
        b.putInt(20, logicalBlockSize);
        b.put(24, (byte) 0); // physical_block_exp
        b.put(25, (byte) 0); // alignment_offset
        b.putShort(26, (short) 1); // min_io_size, in logical blocks
        b.putInt(28, 0); // opt_io_size
        b.put(32, (byte) (writeback ? 1 : 0));
        b.putShort(34, (short) numQueues);
        b.putInt(36, MAX_DISCARD_SECTORS);
        b.putInt(40, MAX_DISCARD_SEG);
        b.putInt(44, logicalBlockSize / SECTOR); // discard_sector_alignment
        b.putInt(48, MAX_WRITE_ZEROES_SECTORS);
        b.putInt(52, MAX_WRITE_ZEROES_SEG);
        b.put(56, (byte) 1); // write_zeroes_may_unmap
        return b.array();
    }

    @Override
    public byte[] readConfig(int offset, int size) {
        byte[] c = config();
        if (offset < 0 || size < 0 || offset > c.length || size > c.length - offset) {
            return null;
        }
        byte[] out = new byte[size];
        System.arraycopy(c, offset, out, 0, size);
        return out;
    }

    @Override
    public boolean writeConfig(int offset, byte[] data) {
        // Only the writeback byte (CONFIG_WCE) is writable by the driver.
        if (offset == 32 && data.length == 1) {
            writeback = data[0] != 0 && !writethrough;
            return true;
        }
        return false;
    }

    @Override
    public void setFrontendChannel(dev.vhostappliance.device.FrontendChannel channel) {
        frontend = channel;
    }

    /**
     * The image was resized: re-read its size and, if the capacity changed, tell the frontend
     * (VHOST_USER_SLAVE_CONFIG_CHANGE_MSG), which re-reads the config space and lets the guest see it.
     * Returns the new capacity in 512-byte sectors. (QMP block_resize will call this; issue 7.)
     */
    public long refreshCapacity() {
        long sectors = node.refreshSize() / logicalBlockSize * logicalBlockSize / SECTOR;
        if (sectors != capacitySectors) {
            capacitySectors = sectors;
            dev.vhostappliance.device.FrontendChannel f = frontend;
            if (f != null && !f.notifyConfigChange()) {
                org.jboss.logging.Logger.getLogger(VirtioBlkDevice.class).warn("frontend did not take the capacity change");
            }
        }
        return sectors;
    }

    /** A stopped queue writes no more: its claim on the node (an RBD image's lock) goes. */
    @Override
    public void queueStopped(int index) {
        if (index >= 0 && index < queues.length && queues[index] != null) {
            queues[index].stoppedWriting();
        }
    }

    /**
     * The frontend is gone or reset the device (its queue workers have stopped): the queues' engines go
     * with it, so nothing of one frontend (an io_uring ring, a pool's eventfd) outlives it.
     */
    @Override
    public void reset() {
        writeback = !writethrough;
        closeQueues();
    }

    /** The queues' engines go; the exported node is the graph's (or the command's) to close. */
    @Override
    public void close() {
        closeQueues();
    }

    private void closeQueues() {
        for (int i = 0; i < queues.length; i++) {
            if (queues[i] != null) {
                queues[i].close();
                queues[i] = null;
            }
        }
    }
}

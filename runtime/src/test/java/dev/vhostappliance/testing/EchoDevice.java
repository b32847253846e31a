package dev.vhostappliance.testing;

import dev.vhostappliance.device.VirtioDevice;
import dev.vhostappliance.virtqueue.DescriptorChain;
import dev.vhostappliance.virtqueue.Virtqueue;
import dev.vhostappliance.virtqueue.VirtioRing;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A test device: copies each request's readable bytes into its writable buffers (as far as they go) and
 * completes it with the number of bytes written. Exercises zero-copy access to every buffer.
 */
public class EchoDevice implements VirtioDevice {
    public static final long FEATURES = VirtioRing.STANDARD_FEATURES;

    private final int queues;
    public final AtomicLong handled = new AtomicLong();
    public final AtomicLong resets = new AtomicLong();
    private final ThreadLocal<DescriptorChain> chains = new ThreadLocal<>();
    private final ThreadLocal<byte[]> bounce = ThreadLocal.withInitial(() -> new byte[1 << 16]);

    public EchoDevice(int queues) {
        this.queues = queues;
    }

    @Override
    public int virtioId() {
        return 0x7f; // not a real virtio device
    }

    @Override
    public long features() {
        return FEATURES;
    }

    @Override
    public int numQueues() {
        return queues;
    }

    @Override
    public void handleQueue(int queueIndex, Virtqueue queue) {
        DescriptorChain chain = chains.get();
        if (chain == null || chain.capacity() < queue.size()) {
            chain = queue.newChain();
            chains.set(chain);
        }
        boolean pushed = false;
        while (queue.pop(chain) == Virtqueue.POPPED) {
            int written = echo(chain);
            queue.push(chain.head(), written);
            handled.incrementAndGet();
            pushed = true;
        }
        if (pushed) { // as the block device: no interrupt for a batch that completed nothing
            queue.notifyDriver();
        }
    }

    private int echo(DescriptorChain chain) {
        byte[] buf = bounce.get();
        int n = 0;
        for (int i = 0; i < chain.readableCount() && n < buf.length; i++) {
            MemorySegment s = chain.segment(i);
            int len = (int) Math.min(s.byteSize(), buf.length - n);
            MemorySegment.copy(s, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, buf, n, len);
            n += len;
        }
        int written = 0;
        for (int i = chain.readableCount(); i < chain.count() && written < n; i++) {
            MemorySegment s = chain.segment(i);
            int len = (int) Math.min(s.byteSize(), n - written);
            MemorySegment.copy(buf, written, s, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, len);
            written += len;
        }
        return written;
    }

    @Override
    public void reset() {
        resets.incrementAndGet();
    }
}

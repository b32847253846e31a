package dev.vhostappliance.input;

import dev.vhostappliance.device.QueueWaker;
import dev.vhostappliance.device.VirtioDevice;
import dev.vhostappliance.protocol.ProtocolFeature;
import dev.vhostappliance.virtqueue.DescriptorChain;
import dev.vhostappliance.virtqueue.Virtqueue;
import dev.vhostappliance.virtqueue.VirtioRing;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import org.jboss.logging.Logger;

/**
 * virtio-input over an {@link InputSource}: the config space answers every selector from the source's
 * {@link InputIdentity}; events go to the eventq in whole batches (a batch waits until the driver has posted
 * enough buffers, or fills the whole queue if it is larger than the queue: the guest's input core holds events
 * until SYN_REPORT, so the guest still sees it whole); the statusq's events go back to the source.
 */
public final class VirtioInputDevice implements VirtioDevice {
    private static final Logger LOG = Logger.getLogger(VirtioInputDevice.class);
    static final int BACKLOG_EVENTS = 1024;
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED;

    private final InputSource source;
    private final Object injectLock = new Object();
    private final InputIdentity identity;
    private final EventBacklog backlog = new EventBacklog(BACKLOG_EVENTS);
    private final byte[] config = new byte[VirtioInput.CONFIG_BYTES];
    private final byte[] union = new byte[VirtioInput.CONFIG_UNION_BYTES];
    private volatile QueueWaker waker = QueueWaker.NONE;
    /** The driver has the eventq running: events are kept for it; otherwise they are dropped (as QEMU does). */
    private boolean driverActive;
    private long delivered;
    private long statusEvents;
    private long malformed;
    private long withoutDriver;
    private final MemorySegment eventOut = Arena.ofAuto().allocate(VirtioInput.EVENT_BYTES, 8);
    private final MemorySegment statusIn = Arena.ofAuto().allocate(VirtioInput.EVENT_BYTES, 8);
    private DescriptorChain eventChain;
    private DescriptorChain statusChain;

    public VirtioInputDevice(InputSource source) {
        this.source = source;
        this.identity = source.identity();
        select(VirtioInput.CFG_UNSET, 0);
        source.start((type, code, value) -> {
            synchronized (injectLock) { // a QMP injection lands between the source's events, not inside its own
                sourceEvent(type, code, value);
            }
        });
    }

    @Override
    public int virtioId() {
        return VirtioInput.VIRTIO_ID_INPUT;
    }

    @Override
    public long features() {
        return VirtioRing.STANDARD_FEATURES;
    }

    @Override
    public long protocolFeatures() {
        return ProtocolFeature.bit(ProtocolFeature.CONFIG);
    }

    @Override
    public int numQueues() {
        return 2;
    }

    @Override
    public void setQueueWaker(QueueWaker w) {
        this.waker = w;
    }

    /** The device's identity (what the guest sees). */
    public InputIdentity identity() {
        return identity;
    }

    /** Events from elsewhere than the source (QMP input-send-event), delivered like the source's own. */
    public void inject(List<int[]> events) {
        synchronized (injectLock) {
            for (int[] e : events) {
                sourceEvent(e[0], e[1], e[2]);
            }
        }
    }

    /** On the source's thread (or an injecting one). */
    private void sourceEvent(int type, int code, int value) {
        boolean report = type == VirtioInput.EV_SYN && code == VirtioInput.SYN_REPORT;
        synchronized (this) {
            if (!driverActive) {
                withoutDriver++; // nobody to give it to: dropped, as QEMU's own virtio-input does
                return;
            }
            backlog.append(type, code, value);
        }
        if (report) {
            waker.wake(VirtioInput.EVENTQ);
        }
    }

    @Override
    public void handleQueue(int queueIndex, Virtqueue queue) {
        if (queueIndex == VirtioInput.EVENTQ) {
            deliverEvents(queue);
        } else {
            takeStatus(queue);
        }
    }

    private synchronized void deliverEvents(Virtqueue queue) {
        driverActive = true;
        eventChain = queue.reuse(eventChain);
        DescriptorChain chain = eventChain;
        boolean pushed = false;
        batches:
        for (int remaining = backlog.headBatchRemaining(); remaining > 0; remaining = backlog.headBatchRemaining()) {
            if (queue.availableCount() < Math.min(remaining, queue.size())) {
                break; // the batch waits for buffers; availableCount asked the driver to kick
            }
            while (remaining > 0) {
                if (queue.pop(chain) != Virtqueue.POPPED) {
                    break batches;
                }
                long e = backlog.peek();
                eventOut.set(U16, 0, (short) EventBacklog.type(e));
                eventOut.set(U16, 2, (short) EventBacklog.code(e));
                eventOut.set(U32, 4, EventBacklog.value(e));
                pushed = true;
                if (chain.writableBytes() < VirtioInput.EVENT_BYTES) {
                    malformed++; // returned unused; the event waits for a proper buffer
                    queue.push(chain.head(), 0);
                    continue;
                }
                queue.push(chain.head(), chain.scatter(eventOut, VirtioInput.EVENT_BYTES));
                backlog.consume();
                delivered++;
                remaining--;
            }
        }
        if (pushed) {
            queue.notifyDriver();
        }
    }

    private void takeStatus(Virtqueue queue) {
        statusChain = queue.reuse(statusChain);
        DescriptorChain chain = statusChain;
        boolean pushed = false;
        while (queue.pop(chain) == Virtqueue.POPPED) {
            pushed = true;
            if (chain.gather(statusIn, VirtioInput.EVENT_BYTES) < VirtioInput.EVENT_BYTES) {
                synchronized (this) {
                    malformed++;
                }
            } else {
                int type = statusIn.get(U16, 0) & 0xffff;
                int code = statusIn.get(U16, 2) & 0xffff;
                int value = statusIn.get(U32, 4);
                synchronized (this) {
                    statusEvents++;
                }
                try {
                    source.statusEvent(type, code, value);
                } catch (RuntimeException ex) {
                    LOG.warnf("input source refused status event %s %s %d: %s", InputEventCodes.typeName(type),
                            InputEventCodes.codeName(type, code), value, ex.getMessage());
                }
            }
            queue.push(chain.head(), 0);
        }
        if (pushed) {
            queue.notifyDriver();
        }
    }

    // ------------------------------------------------------------------ config space

    @Override
    public synchronized byte[] readConfig(int offset, int size) {
        if (offset < 0 || size < 0 || offset + size > VirtioInput.CONFIG_BYTES) {
            return null;
        }
        byte[] out = new byte[size];
        System.arraycopy(config, offset, out, 0, size);
        return out;
    }

    /** Only select and subsel are writable; QEMU writes the whole structure back, so the rest is ignored. */
    @Override
    public synchronized boolean writeConfig(int offset, byte[] data) {
        if (offset < 0 || offset + data.length > VirtioInput.CONFIG_BYTES || offset > 1) {
            return false;
        }
        int select = config[0] & 0xff;
        int subsel = config[1] & 0xff;
        for (int i = 0; i < data.length && offset + i < 2; i++) {
            if (offset + i == 0) {
                select = data[i] & 0xff;
            } else {
                subsel = data[i] & 0xff;
            }
        }
        select(select, subsel);
        return true;
    }

    private void select(int select, int subsel) {
        int size = identity.select(select, subsel, union);
        config[0] = (byte) select;
        config[1] = (byte) subsel;
        config[2] = (byte) size;
        System.arraycopy(union, 0, config, VirtioInput.CONFIG_UNION_OFFSET, union.length);
    }

    @Override
    public synchronized void reset() {
        driverActive = false;
        backlog.clear();
        select(VirtioInput.CFG_UNSET, 0);
    }

    /** The eventq has run since the last reset: events are kept for the driver. */
    public synchronized boolean driverActive() {
        return driverActive;
    }

    private static final String[] COUNTERS = {"events-delivered", "batches-dropped", "events-dropped",
        "events-without-driver", "status-events", "malformed-buffers", "backlog"};

    @Override
    public java.util.Map<String, Long> counters() {
        InputStats s = stats();
        return dev.vhostappliance.device.Counters.of(COUNTERS, s.eventsDelivered(), s.batchesDropped(), s.eventsDropped(),
                s.eventsWithoutDriver(), s.statusEvents(), s.malformedBuffers(), s.backlog());
    }

    public synchronized InputStats stats() {
        return new InputStats(delivered, backlog.droppedBatches(), backlog.droppedEvents(), withoutDriver,
                statusEvents, malformed, backlog.size());
    }

    @Override
    public void close() {
        source.close();
    }
}

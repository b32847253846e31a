package dev.vhostappliance.gpu;

import dev.vhostappliance.device.VirtioDevice;
import dev.vhostappliance.gpu.virgl.Virgl3dCommands;
import dev.vhostappliance.gpu.virgl.VirglRenderer;
import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.NativeCallException;
import dev.vhostappliance.memory.GuestMemory;
import dev.vhostappliance.protocol.ProtocolFeature;
import dev.vhostappliance.server.Wakeup;
import dev.vhostappliance.virtqueue.DescriptorChain;
import dev.vhostappliance.virtqueue.Virtqueue;
import dev.vhostappliance.virtqueue.VirtioRing;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.jboss.logging.Logger;

/**
 * virtio-gpu 2D as a vhost-user-gpu backend: the control queue's commands and the cursor queue run through
 * {@link GpuCommands}; what the guest shows goes to the frontend over the vhost-user-gpu channel. The frontend
 * (QEMU) owns the display model: it answers display info and EDID and fills num_scanouts and the event fields
 * of the config space itself, so there are no geometry options here. In 3D mode a fenced command's response
 * waits for its renderer fence ({@link FencedResponses}); the renderer's thread pokes the control queue's
 * completion fd when fences retire and the queue's worker hands the responses back in order.
 */
public final class VirtioGpuDevice implements VirtioDevice {
    private static final Logger LOG = Logger.getLogger(VirtioGpuDevice.class);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED;
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED;
    private static final int FLAG_INFO_RING_IDX = 2;
    /** The largest request: ATTACH_BACKING with QEMU's limit of entries. */
    static final int MAX_REQUEST = VirtioGpu.HDR_BYTES + 8 + VirtioGpu.MAX_BACKING_ENTRIES * VirtioGpu.MEM_ENTRY_BYTES;
    private static final int CURSOR_REQUEST = VirtioGpu.HDR_BYTES + 32;

    private final GpuCommands commands;
    /** 3D (--virgl): the renderer and the 3D command set, or null for 2D. */
    private final VirglRenderer renderer;
    private final Virgl3dCommands virgl;
    private final MemorySegment request = Arena.ofAuto().allocate(MAX_REQUEST, 8);
    private final MemorySegment cursorRequest = Arena.ofAuto().allocate(CURSOR_REQUEST, 8);
    /** A 3D cursor's pixels (BGRA, 64x64) read from the renderer. */
    private final MemorySegment cursorImage = Arena.ofAuto().allocate(4L * VirtioGpu.CURSOR_SIZE * VirtioGpu.CURSOR_SIZE, 8);
    /** The largest response: EDID, or a capset (virgl2 is 1376 bytes with virglrenderer 0.10). */
    private final MemorySegment response = Arena.ofAuto().allocate(Math.max(VirtioGpu.EDID_RESP_BYTES, VirtioGpu.HDR_BYTES + 4096), 8);
    /** 3D: fenced responses waiting, the fd the worker watches for retired fences, the newest retired. */
    private final FencedResponses fenced;
    private final Wakeup fenceRetired;
    private final MemorySegment drainScratch = Arena.ofAuto().allocate(8, 8);
    private volatile int retiredFence;
    /** The fence made for the command just run on the renderer's thread (read after {@link VirglRenderer#call}). */
    private int commandFence;
    private DescriptorChain controlChain;
    private DescriptorChain cursorChain;
    private long malformed;

    /** maxHostmem: the most resource memory the guest may allocate (QEMU's max_hostmem, 256 MiB by default). */
    public VirtioGpuDevice(long maxHostmem) {
        this(maxHostmem, null);
    }

    /** With a renderer: VIRTIO_GPU_F_VIRGL and the 3D command set on it (the 2D display commands stay here). */
    public VirtioGpuDevice(long maxHostmem, VirglRenderer renderer) {
        this.commands = new GpuCommands(maxHostmem);
        this.renderer = renderer;
        this.virgl = renderer == null ? null : new Virgl3dCommands(renderer, maxHostmem);
        this.fenced = renderer == null ? null : new FencedResponses(maxQueueSize());
        try {
            this.fenceRetired = renderer == null ? null : new Wakeup();
        } catch (NativeCallException e) {
            throw new IllegalStateException("eventfd for the gpu's fences: " + e.getMessage(), e);
        }
        if (virgl != null) {
            renderer.onFence(f -> {
                retiredFence = f;
                fenceRetired.poke();
            });
            virgl.setDisplay(new Virgl3dCommands.Display() {
                @Override
                public boolean scanout(MemorySegment message) {
                    synchronized (commands) {
                        return commands.sendToDisplay(VhostUserGpuChannel.SCANOUT, message, 12);
                    }
                }

                @Override
                public boolean update(MemorySegment message, long size) {
                    synchronized (commands) {
                        return commands.sendToDisplay(VhostUserGpuChannel.UPDATE, message, size);
                    }
                }
            });
        }
    }

    @Override
    public int virtioId() {
        return VirtioGpu.VIRTIO_ID_GPU;
    }

    @Override
    public long features() {
        return VirtioRing.STANDARD_FEATURES | (1L << VirtioGpu.F_EDID) | (virgl != null ? 1L << VirtioGpu.F_VIRGL : 0);
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
    public void handleQueue(int queueIndex, Virtqueue queue) {
        if (queueIndex == VirtioGpu.CONTROLQ) {
            control(queue);
        } else {
            cursor(queue);
        }
    }

    private void control(Virtqueue queue) {
        controlChain = queue.reuse(controlChain);
        DescriptorChain chain = controlChain;
        boolean pushed = fenced != null && pushRetired(queue);
        while (queue.pop(chain) == Virtqueue.POPPED) {
            pushed = true;
            int len = chain.gather(request, MAX_REQUEST);
            if (chain.writableBytes() < VirtioGpu.HDR_BYTES) {
                countMalformed(); // no room for even an error: returned unanswered
                queue.push(chain.head(), 0);
                continue;
            }
            response.fill((byte) 0);
            int respLen;
            int fenceId = 0;
            if (len < VirtioGpu.HDR_BYTES) {
                countMalformed();
                response.set(U32, 0, VirtioGpu.RESP_ERR_UNSPEC);
                respLen = VirtioGpu.HDR_BYTES;
            } else {
                respLen = -1;
                boolean wantsFence = virgl != null && (request.get(U32, 4) & VirtioGpu.FLAG_FENCE) != 0;
                if (virgl != null) {
                    GuestMemory memory = queue.memory();
                    respLen = renderer.call(() -> {
                        int n = virgl.control(request, len, response, memory);
                        // a fence after the command's work; an error is answered at once (as QEMU does)
                        commandFence = n >= 0 && wantsFence && succeeded(response) ? renderer.fenceHere() : 0;
                        return n;
                    });
                    fenceId = commandFence;
                }
                if (respLen < 0) {
                    synchronized (commands) {
                        respLen = commands.control(request, len, response, queue.memory());
                    }
                    if (wantsFence && !fenced.isEmpty() && succeeded(response)) {
                        fenceId = renderer.call(renderer::fenceHere); // not before the fences already waiting
                    }
                }
                copyFence();
            }
            if (chain.writableBytes() < respLen) {
                response.set(U32, 0, VirtioGpu.RESP_ERR_UNSPEC); // the answer does not fit: say so in what does
                respLen = VirtioGpu.HDR_BYTES;
            }
            int written = chain.scatter(response, respLen);
            if (fenceId == 0 || !fenced.add(chain.head(), written, fenceId)) {
                queue.push(chain.head(), written);
            }
        }
        if (pushed) {
            queue.notifyDriver();
        }
    }

    private static boolean succeeded(MemorySegment response) {
        return response.get(U32, 0) < VirtioGpu.RESP_ERR_UNSPEC;
    }

    /** Hands back the responses whose fences retired, oldest first; true if any. The control queue's thread. */
    private boolean pushRetired(Virtqueue queue) {
        fenceRetired.drain(drainScratch);
        int retired = retiredFence;
        boolean any = false;
        while (fenced.oldestRetired(retired)) {
            queue.push(fenced.oldestHead(), fenced.oldestLength());
            fenced.removeOldest();
            any = true;
        }
        return any;
    }

    @Override
    public int completionFd(int queueIndex) {
        return queueIndex == VirtioGpu.CONTROLQ && fenceRetired != null ? fenceRetired.fd() : -1;
    }

    @Override
    public boolean hasCompletions(int queueIndex) {
        return queueIndex == VirtioGpu.CONTROLQ && fenced != null && fenced.oldestRetired(retiredFence);
    }

    @Override
    public void handleCompletions(int queueIndex, Virtqueue queue) {
        if (queueIndex == VirtioGpu.CONTROLQ && fenced != null && pushRetired(queue)) {
            queue.notifyDriver();
        }
    }

    /** Copies the request's fence (and ring index) into the response header. */
    private void copyFence() {
        int flags = request.get(U32, 4);
        response.set(U32, 4, 0);
        response.set(U64, 8, 0);
        response.set(U32, 16, 0);
        response.set(U32, 20, 0);
        if ((flags & VirtioGpu.FLAG_FENCE) != 0) {
            response.set(U32, 4, VirtioGpu.FLAG_FENCE | (flags & FLAG_INFO_RING_IDX));
            response.set(U64, 8, request.get(U64, 8));
            response.set(U32, 16, request.get(U32, 16));
            if ((flags & FLAG_INFO_RING_IDX) != 0) {
                response.set(ValueLayout.JAVA_BYTE, 20, request.get(ValueLayout.JAVA_BYTE, 20));
            }
        }
    }

    private void cursor(Virtqueue queue) {
        cursorChain = queue.reuse(cursorChain);
        DescriptorChain chain = cursorChain;
        boolean pushed = false;
        while (queue.pop(chain) == Virtqueue.POPPED) {
            pushed = true;
            int len = chain.gather(cursorRequest, CURSOR_REQUEST);
            // 3D: the cursor image is a renderer resource, fetched before the display lock (the renderer's thread
            // takes that lock to send pixels)
            boolean image = virgl != null && len >= CURSOR_REQUEST && cursorRequest.get(U32, 0) == VirtioGpu.CMD_UPDATE_CURSOR
                    && cursorRequest.get(U32, 40) != 0
                    && renderer.call(() -> virgl.cursorImage(cursorRequest.get(U32, 40), cursorImage));
            boolean ok;
            synchronized (commands) {
                ok = commands.cursor(cursorRequest, len, image ? cursorImage : null);
            }
            if (!ok && len < CURSOR_REQUEST) {
                countMalformed();
            }
            queue.push(chain.head(), 0);
        }
        if (pushed) {
            queue.notifyDriver();
        }
    }

    private synchronized void countMalformed() {
        malformed++;
    }

    /** The frontend's display channel: a new socket on every DRIVER_OK. */
    @Override
    public boolean setGpuSocket(int fd) {
        VhostUserGpuChannel channel;
        try {
            channel = new VhostUserGpuChannel(fd);
        } catch (NativeCallException e) {
            LOG.warnf("vhost-user-gpu socket unusable: %s", e.getMessage());
            LibC.close(fd);
            return true;
        }
        synchronized (commands) {
            commands.setDisplay(channel);
        }
        return true;
    }

    @Override
    public byte[] readConfig(int offset, int size) {
        if (offset < 0 || size < 0 || offset + size > VirtioGpu.CONFIG_BYTES) {
            return null;
        }
        ByteBuffer b = ByteBuffer.allocate(VirtioGpu.CONFIG_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(8, 1); // num_scanouts: the frontend puts its own max_outputs here
        b.putInt(12, virgl != null ? Virgl3dCommands.capsetCount() : 0);
        byte[] out = new byte[size];
        b.get(offset, out);
        return out;
    }

    /** events_clear is the only writable field; there are no events of ours to clear (the frontend has them). */
    @Override
    public boolean writeConfig(int offset, byte[] data) {
        return offset >= 0 && offset + data.length <= VirtioGpu.CONFIG_BYTES;
    }

    @Override
    public void reset() {
        synchronized (commands) {
            commands.reset();
        }
        if (fenced != null) {
            fenced.clear(); // the queues are gone: what their worker could not hand back goes with them
        }
        if (virgl != null) {
            renderer.call(() -> {
                virgl.reset();
                return null;
            });
        }
    }

    private static final String[] COUNTERS = {"commands", "errors", "resources", "resource-bytes", "display-updates",
        "display-update-bytes", "cursor-updates", "cursor-moves", "malformed"};

    @Override
    public java.util.Map<String, Long> counters() {
        GpuStats s = stats();
        return dev.vhostappliance.device.Counters.of(COUNTERS, s.commands(), s.errors(), s.resources(), s.resourceBytes(),
                s.updatesSent(), s.updateBytesSent(), s.cursorUpdates(), s.cursorMoves(), s.malformed());
    }

    public GpuStats stats() {
        synchronized (commands) {
            long m;
            synchronized (this) {
                m = malformed;
            }
            return new GpuStats(commands.commands, commands.errors, commands.resourceCount(), commands.hostmem(),
                    commands.updatesSent, commands.updateBytesSent, commands.cursorUpdates, commands.cursorMoves, m);
        }
    }

    @Override
    public void close() {
        GpuStats s = stats();
        if (s.commands() > 0) {
            LOG.infof("gpu: %d commands (%d errors), %d display updates (%d bytes), %d cursor updates, %d cursor moves",
                s.commands(), s.errors(), s.updatesSent(), s.updateBytesSent(), s.cursorUpdates(), s.cursorMoves());
        }
        synchronized (commands) {
            commands.close();
        }
        if (renderer != null) {
            LOG.infof("gpu 3D (virgl): %d commands (%d errors), %d resources at the end", virgl.commands, virgl.errors,
                    virgl.resourceCount());
            reset();
            renderer.close();
            fenceRetired.close();
        }
    }
}

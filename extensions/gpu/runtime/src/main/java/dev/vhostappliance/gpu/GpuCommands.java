package dev.vhostappliance.gpu;

import static dev.vhostappliance.gpu.VirtioGpu.HDR_BYTES;

import dev.vhostappliance.memory.GuestMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashMap;
import java.util.Map;
import org.jboss.logging.Logger;

/**
 * Executes the virtio-gpu 2D and cursor commands against the resources and scanouts, and tells the frontend
 * what to display. Every id, rectangle, offset and length from the guest is checked before use (the virtio-gpu
 * CVE history is the checklist: unknown ids, out-of-range scanouts, rectangles past the resource, offsets past
 * the backing, sizes that overflow 32 bits, memory exhaustion). Not thread-safe: the device serialises.
 */
final class GpuCommands {
    private static final Logger LOG = Logger.getLogger(GpuCommands.class);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED;
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED;
    static final int MAX_DIMENSION = 16384;
    /** UPDATE messages carry at most this many pixel bytes; larger flushes go as several strips. */
    static final int UPDATE_CHUNK = ScanoutUpdates.CHUNK;

    private final long maxHostmem;
    private final Map<Integer, GpuResource> resources = new HashMap<>();
    private final Scanout[] scanouts = new Scanout[VirtioGpu.MAX_SCANOUTS];
    private long hostmem;
    private VhostUserGpuChannel display;
    private final MemorySegment update = Arena.ofAuto().allocate(ScanoutUpdates.HEADER + UPDATE_CHUNK, 8);
    private final int[] shown = new int[4];
    private final ResourcePixels flushedPixels = new ResourcePixels();
    private final ScanoutUpdates.Sink updateSink = (message, size) -> sendToDisplay(VhostUserGpuChannel.UPDATE, message, size);
    private final MemorySegment cursor = Arena.ofAuto().allocate(20 + 4 * VirtioGpu.CURSOR_SIZE * VirtioGpu.CURSOR_SIZE, 8);
    private final MemorySegment small = Arena.ofAuto().allocate(16, 8);
    long commands;
    long errors;
    long updatesSent;
    long updateBytesSent;
    long cursorUpdates;
    long cursorMoves;

    /** What a scanout shows: a rectangle of a resource, or nothing (resource 0). */
    private static final class Scanout {
        int resourceId;
        int x;
        int y;
        int width;
        int height;
    }

    GpuCommands(long maxHostmem) {
        this.maxHostmem = maxHostmem;
        for (int i = 0; i < scanouts.length; i++) {
            scanouts[i] = new Scanout();
        }
    }

    /** A new display channel (VHOST_USER_GPU_SET_SOCKET, on every DRIVER_OK); the old one is closed. */
    void setDisplay(VhostUserGpuChannel channel) {
        if (display != null) {
            display.close();
        }
        display = channel;
    }

    long hostmem() {
        return hostmem;
    }

    int resourceCount() {
        return resources.size();
    }

    /**
     * Executes the control queue command in req (len readable bytes) and writes the response into resp;
     * returns the response length (the header's fence fields are the caller's).
     */
    int control(MemorySegment req, int len, MemorySegment resp, GuestMemory memory) {
        commands++;
        int type = req.get(U32, 0);
        int result = switch (type) {
            case VirtioGpu.CMD_GET_DISPLAY_INFO -> displayInfo(resp);
            case VirtioGpu.CMD_GET_EDID -> len < HDR_BYTES + 8 ? VirtioGpu.RESP_ERR_UNSPEC : edid(req.get(U32, 24), resp);
            case VirtioGpu.CMD_RESOURCE_CREATE_2D -> len < HDR_BYTES + 16 ? VirtioGpu.RESP_ERR_UNSPEC
                    : create(req.get(U32, 24), req.get(U32, 28), req.get(U32, 32), req.get(U32, 36));
            case VirtioGpu.CMD_RESOURCE_UNREF -> len < HDR_BYTES + 8 ? VirtioGpu.RESP_ERR_UNSPEC : unref(req.get(U32, 24));
            case VirtioGpu.CMD_SET_SCANOUT -> len < HDR_BYTES + 24 ? VirtioGpu.RESP_ERR_UNSPEC
                    : setScanout(req.get(U32, 40), req.get(U32, 44), req.get(U32, 24), req.get(U32, 28), req.get(U32, 32),
                            req.get(U32, 36));
            case VirtioGpu.CMD_RESOURCE_FLUSH -> len < HDR_BYTES + 24 ? VirtioGpu.RESP_ERR_UNSPEC
                    : flush(req.get(U32, 40), req.get(U32, 24), req.get(U32, 28), req.get(U32, 32), req.get(U32, 36));
            case VirtioGpu.CMD_TRANSFER_TO_HOST_2D -> len < HDR_BYTES + 32 ? VirtioGpu.RESP_ERR_UNSPEC
                    : transfer(req.get(U32, 48), req.get(U32, 24), req.get(U32, 28), req.get(U32, 32), req.get(U32, 36),
                            req.get(U64, 40), memory);
            case VirtioGpu.CMD_RESOURCE_ATTACH_BACKING -> attach(req, len, memory);
            case VirtioGpu.CMD_RESOURCE_DETACH_BACKING -> len < HDR_BYTES + 8 ? VirtioGpu.RESP_ERR_UNSPEC
                    : detach(req.get(U32, 24));
            default -> VirtioGpu.RESP_ERR_UNSPEC; // 3D, capsets, blobs, UUIDs: not offered
        };
        int respLen = HDR_BYTES;
        if (result == VirtioGpu.RESP_OK_DISPLAY_INFO) {
            respLen = VirtioGpu.DISPLAY_INFO_BYTES;
        } else if (result == VirtioGpu.RESP_OK_EDID) {
            respLen = VirtioGpu.EDID_RESP_BYTES;
        } else if (result != VirtioGpu.RESP_OK_NODATA) {
            errors++;
            if (LOG.isDebugEnabled()) {
                LOG.debugf("gpu %s: error 0x%x", VirtioGpu.commandName(type), result);
            }
        }
        resp.set(U32, 0, result);
        return respLen;
    }

    private int displayInfo(MemorySegment resp) {
        return display != null && display.displayInfo(resp) ? VirtioGpu.RESP_OK_DISPLAY_INFO : VirtioGpu.RESP_ERR_UNSPEC;
    }

    private int edid(int scanout, MemorySegment resp) {
        if (Integer.compareUnsigned(scanout, VirtioGpu.MAX_SCANOUTS) >= 0) {
            return VirtioGpu.RESP_ERR_INVALID_SCANOUT_ID;
        }
        return display != null && display.edid(scanout, resp) ? VirtioGpu.RESP_OK_EDID : VirtioGpu.RESP_ERR_UNSPEC;
    }

    private int create(int id, int formatCode, int width, int height) {
        if (id == 0 || resources.containsKey(id)) {
            return VirtioGpu.RESP_ERR_INVALID_RESOURCE_ID;
        }
        PixelFormat format = PixelFormat.of(formatCode);
        if (format == null || width <= 0 || height <= 0 || width > MAX_DIMENSION || height > MAX_DIMENSION) {
            return VirtioGpu.RESP_ERR_INVALID_PARAMETER;
        }
        long bytes = (long) width * height * PixelFormat.BYTES_PER_PIXEL;
        if (bytes > maxHostmem - hostmem) {
            return VirtioGpu.RESP_ERR_OUT_OF_MEMORY;
        }
        GpuResource r;
        try {
            r = new GpuResource(id, format, width, height);
        } catch (OutOfMemoryError e) {
            return VirtioGpu.RESP_ERR_OUT_OF_MEMORY;
        }
        resources.put(id, r);
        hostmem += r.bytes();
        return VirtioGpu.RESP_OK_NODATA;
    }

    private int unref(int id) {
        GpuResource r = resources.remove(id);
        if (r == null) {
            return VirtioGpu.RESP_ERR_INVALID_RESOURCE_ID;
        }
        for (int i = 0; i < scanouts.length; i++) {
            if (scanouts[i].resourceId == id) {
                disable(i);
            }
        }
        hostmem -= r.bytes();
        r.free();
        return VirtioGpu.RESP_OK_NODATA;
    }

    /** True if (x, y, w, h) lies within a width x height image (no 32-bit wrap-around). */
    private static boolean inside(int x, int y, int w, int h, int width, int height) {
        long ux = Integer.toUnsignedLong(x);
        long uy = Integer.toUnsignedLong(y);
        return ux + Integer.toUnsignedLong(w) <= width && uy + Integer.toUnsignedLong(h) <= height;
    }

    private int setScanout(int scanoutId, int resourceId, int x, int y, int w, int h) {
        if (Integer.compareUnsigned(scanoutId, VirtioGpu.MAX_SCANOUTS) >= 0) {
            return VirtioGpu.RESP_ERR_INVALID_SCANOUT_ID;
        }
        if (resourceId == 0) {
            disable(scanoutId);
            return VirtioGpu.RESP_OK_NODATA;
        }
        GpuResource r = resources.get(resourceId);
        if (r == null) {
            return VirtioGpu.RESP_ERR_INVALID_RESOURCE_ID;
        }
        if (w <= 0 || h <= 0 || !inside(x, y, w, h, r.width, r.height)) {
            return VirtioGpu.RESP_ERR_INVALID_PARAMETER;
        }
        Scanout s = scanouts[scanoutId];
        s.resourceId = resourceId;
        s.x = x;
        s.y = y;
        s.width = w;
        s.height = h;
        sendScanout(scanoutId, w, h);
        return VirtioGpu.RESP_OK_NODATA;
    }

    private void disable(int scanoutId) {
        Scanout s = scanouts[scanoutId];
        if (s.resourceId != 0) {
            s.resourceId = 0;
            s.width = s.height = 0;
            sendScanout(scanoutId, 0, 0);
        }
    }

    /** The 3D path's display messages (scanout geometry, pixel updates); false without a display. */
    boolean sendToDisplay(int request, MemorySegment payload, long size) {
        if (display == null || !display.send(request, payload, size)) {
            return false;
        }
        if (request == VhostUserGpuChannel.UPDATE) {
            updatesSent++;
            updateBytesSent += size - 20;
        }
        return true;
    }

    private void sendScanout(int scanoutId, int w, int h) {
        if (display != null) {
            small.set(U32, 0, scanoutId);
            small.set(U32, 4, w);
            small.set(U32, 8, h);
            display.send(VhostUserGpuChannel.SCANOUT, small, 12);
        }
    }

    private int flush(int resourceId, int x, int y, int w, int h) {
        GpuResource r = resources.get(resourceId);
        if (r == null) {
            return VirtioGpu.RESP_ERR_INVALID_RESOURCE_ID;
        }
        if (!inside(x, y, w, h, r.width, r.height)) {
            return VirtioGpu.RESP_ERR_INVALID_PARAMETER;
        }
        for (int i = 0; i < scanouts.length; i++) {
            Scanout s = scanouts[i];
            if (s.resourceId == resourceId && display != null
                    && ScanoutUpdates.visible(x, y, w, h, s.x, s.y, s.width, s.height, shown)) {
                flushedPixels.resource = r;
                ScanoutUpdates.send(i, shown[0], shown[1], shown[2], shown[3], shown[0] - s.x, shown[1] - s.y,
                        flushedPixels, update, updateSink);
            }
        }
        return VirtioGpu.RESP_OK_NODATA;
    }

    /** The rows of the resource being flushed, converted to BGRA. */
    private static final class ResourcePixels implements ScanoutUpdates.PixelRows {
        GpuResource resource;

        @Override
        public boolean copyBgra(int x, int y, int w, int rows, MemorySegment dst, long dstOffset) {
            GpuResource r = resource;
            long rowBytes = (long) w * PixelFormat.BYTES_PER_PIXEL;
            for (int k = 0; k < rows; k++) {
                r.format.toBgra(r.pixels, (long) (y + k) * r.stride + (long) x * PixelFormat.BYTES_PER_PIXEL, dst,
                        dstOffset + k * rowBytes, w);
            }
            return true;
        }
    }

    private int transfer(int resourceId, int x, int y, int w, int h, long offset, GuestMemory memory) {
        GpuResource r = resources.get(resourceId);
        if (r == null) {
            return VirtioGpu.RESP_ERR_INVALID_RESOURCE_ID;
        }
        if (!r.hasBacking()) {
            return VirtioGpu.RESP_ERR_UNSPEC;
        }
        if (!inside(x, y, w, h, r.width, r.height) || offset < 0) {
            return VirtioGpu.RESP_ERR_INVALID_PARAMETER;
        }
        long bpp = PixelFormat.BYTES_PER_PIXEL;
        if (x == 0 && w == r.width) {
            // whole rows: one contiguous copy
            long dst = (long) y * r.stride;
            if (!r.copyFromBacking(memory, offset, dst, (long) h * r.stride)) {
                return VirtioGpu.RESP_ERR_INVALID_PARAMETER;
            }
            return VirtioGpu.RESP_OK_NODATA;
        }
        for (int row = 0; row < h; row++) {
            long src = offset + r.stride * row;
            long dst = (long) (y + row) * r.stride + x * bpp;
            if (src < 0 || !r.copyFromBacking(memory, src, dst, w * bpp)) {
                return VirtioGpu.RESP_ERR_INVALID_PARAMETER;
            }
        }
        return VirtioGpu.RESP_OK_NODATA;
    }

    private int attach(MemorySegment req, int len, GuestMemory memory) {
        if (len < HDR_BYTES + 8) {
            return VirtioGpu.RESP_ERR_UNSPEC;
        }
        GpuResource r = resources.get(req.get(U32, 24));
        if (r == null) {
            return VirtioGpu.RESP_ERR_INVALID_RESOURCE_ID;
        }
        int n = req.get(U32, 28);
        if (r.hasBacking() || n <= 0 || n > VirtioGpu.MAX_BACKING_ENTRIES
                || (long) len < HDR_BYTES + 8 + (long) n * VirtioGpu.MEM_ENTRY_BYTES) {
            return VirtioGpu.RESP_ERR_UNSPEC;
        }
        long[] addr = new long[n];
        int[] lengths = new int[n];
        for (int i = 0; i < n; i++) {
            long off = HDR_BYTES + 8 + (long) i * VirtioGpu.MEM_ENTRY_BYTES;
            addr[i] = req.get(U64, off);
            lengths[i] = req.get(U32, off + 8);
            if (lengths[i] < 0 || !inGuest(memory, addr[i], lengths[i])) {
                return VirtioGpu.RESP_ERR_UNSPEC; // as QEMU: a page the guest does not have
            }
        }
        r.attachBacking(addr, lengths);
        return VirtioGpu.RESP_OK_NODATA;
    }

    /** [gpa, gpa+len) lies in guest memory, possibly across adjacent regions. */
    private static boolean inGuest(GuestMemory memory, long gpa, long len) {
        while (len > 0) {
            int i = memory.findGuest(gpa);
            if (i < 0) {
                return false;
            }
            var region = memory.region(i);
            long step = Math.min(len, region.size() - (gpa - region.guestAddress()));
            gpa += step;
            len -= step;
        }
        return true;
    }

    private int detach(int resourceId) {
        GpuResource r = resources.get(resourceId);
        if (r == null) {
            return VirtioGpu.RESP_ERR_INVALID_RESOURCE_ID;
        }
        if (!r.hasBacking()) {
            return VirtioGpu.RESP_ERR_UNSPEC;
        }
        r.detachBacking();
        return VirtioGpu.RESP_OK_NODATA;
    }

    /** UPDATE_CURSOR / MOVE_CURSOR (the cursor queue has no responses); false if the command was invalid. */
    boolean cursor(MemorySegment req, int len) {
        return cursor(req, len, null);
    }

    /** image: the cursor's BGRA pixels when they come from elsewhere (a 3D resource), else null. */
    boolean cursor(MemorySegment req, int len, MemorySegment image) {
        commands++;
        if (len < HDR_BYTES + 32) {
            errors++;
            return false;
        }
        int type = req.get(U32, 0);
        int scanout = req.get(U32, 24);
        int x = req.get(U32, 28);
        int y = req.get(U32, 32);
        if (Integer.compareUnsigned(scanout, VirtioGpu.MAX_SCANOUTS) >= 0
                || (type != VirtioGpu.CMD_UPDATE_CURSOR && type != VirtioGpu.CMD_MOVE_CURSOR)) {
            errors++;
            return false;
        }
        if (type == VirtioGpu.CMD_MOVE_CURSOR) {
            cursorMoves++;
            sendCursorPos(VhostUserGpuChannel.CURSOR_POS, scanout, x, y);
            return true;
        }
        int resourceId = req.get(U32, 40);
        if (resourceId == 0) {
            cursorUpdates++;
            sendCursorPos(VhostUserGpuChannel.CURSOR_POS_HIDE, scanout, x, y);
            return true;
        }
        GpuResource r = resources.get(resourceId);
        if (image == null && (r == null || r.width != VirtioGpu.CURSOR_SIZE || r.height != VirtioGpu.CURSOR_SIZE)) {
            errors++;
            return false;
        }
        cursorUpdates++;
        if (display != null) {
            cursor.set(U32, 0, scanout);
            cursor.set(U32, 4, x);
            cursor.set(U32, 8, y);
            cursor.set(U32, 12, req.get(U32, 44)); // hot_x
            cursor.set(U32, 16, req.get(U32, 48)); // hot_y
            if (image != null) {
                MemorySegment.copy(image, 0, cursor, 20, image.byteSize());
            } else {
                r.format.toBgra(r.pixels, 0, cursor, 20, VirtioGpu.CURSOR_SIZE * VirtioGpu.CURSOR_SIZE);
            }
            display.send(VhostUserGpuChannel.CURSOR_UPDATE, cursor, cursor.byteSize());
        }
        return true;
    }

    private void sendCursorPos(int request, int scanout, int x, int y) {
        if (display != null) {
            small.set(U32, 0, scanout);
            small.set(U32, 4, x);
            small.set(U32, 8, y);
            display.send(request, small, 12);
        }
    }

    /** Device reset: every resource freed, every scanout off (the display channel stays until replaced). */
    void reset() {
        for (GpuResource r : resources.values()) {
            r.free();
        }
        resources.clear();
        hostmem = 0;
        for (Scanout s : scanouts) {
            s.resourceId = 0;
            s.width = s.height = 0;
        }
    }

    void close() {
        reset();
        if (display != null) {
            display.close();
            display = null;
        }
    }

}

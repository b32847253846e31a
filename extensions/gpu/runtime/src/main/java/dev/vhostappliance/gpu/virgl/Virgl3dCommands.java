package dev.vhostappliance.gpu.virgl;

import dev.vhostappliance.gpu.PixelFormat;
import dev.vhostappliance.gpu.ScanoutUpdates;
import dev.vhostappliance.gpu.VirtioGpu;
import dev.vhostappliance.memory.GuestMemory;
import dev.vhostappliance.memory.MemoryRegion;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import org.jboss.logging.Logger;

/**
 * The virtio-gpu 3D command set (VIRTIO_GPU_F_VIRGL) on virglrenderer: capsets, contexts, 3D resources and
 * their guest backing, transfers and command streams. Every id, size, box and offset is checked here before
 * it reaches the library (QEMU's backend let some through: CVE-2021-3544/3546), contexts may only use
 * resources attached to them, and resources count against the host memory limit. Runs on the renderer's
 * thread ({@link #control} is called through {@link VirglRenderer#call}). Fences are the device's: it makes one
 * after a fenced command ({@link VirglRenderer#fenceHere}) and holds the response until it retires.
 */
public final class Virgl3dCommands {
    private static final Logger LOG = Logger.getLogger(Virgl3dCommands.class);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED;
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED;
    private static final int HDR = VirtioGpu.HDR_BYTES;

    public static final int CMD_CTX_CREATE = 0x200;
    public static final int CMD_CTX_DESTROY = 0x201;
    public static final int CMD_CTX_ATTACH_RESOURCE = 0x202;
    public static final int CMD_CTX_DETACH_RESOURCE = 0x203;
    public static final int CMD_RESOURCE_CREATE_3D = 0x204;
    public static final int CMD_TRANSFER_TO_HOST_3D = 0x205;
    public static final int CMD_TRANSFER_FROM_HOST_3D = 0x206;
    public static final int CMD_SUBMIT_3D = 0x207;
    public static final int RESP_OK_CAPSET_INFO = 0x1102;
    public static final int RESP_OK_CAPSET = 0x1103;

    /** Capsets by index (GET_CAPSET_INFO): virgl, virgl2. */
    static final int[] CAPSETS = {VirglRenderer.CAPSET_VIRGL, VirglRenderer.CAPSET_VIRGL2};
    /** Gallium's texture targets end at PIPE_TEXTURE_CUBE_ARRAY (8); PIPE_BUFFER is 0. */
    private static final int MAX_TARGET = 8;
    private static final int PIPE_BUFFER = 0;
    /** Limits a guest cannot go past (a GL 4.5 driver's usual maxima). */
    private static final int MAX_DIMENSION = 16384;
    private static final int MAX_ARRAY = 2048;
    private static final int MAX_LEVELS = 15;
    private static final int MAX_CONTEXT_ID = 1 << 16;
    private static final int MAX_CONTEXTS = 1024;
    /** Host bytes counted per texel: a conservative 4 (virglrenderer's formats go up to 16, most are 4). */
    private static final long BYTES_PER_TEXEL = 4;
    /** VIRTIO_GPU_RESOURCE_FLAG_Y_0_TOP and the render-target bind of a 2D resource made through virgl. */
    private static final int FLAG_Y_0_TOP = 1;
    private static final int BIND_RENDER_TARGET = 1 << 1;
    private static final int TEXTURE_2D = 2;

    private final VirglRenderer renderer;
    private final VirglLibrary lib;
    private final long maxHostmem;
    private long hostmem;
    private final Set<Integer> contexts = new HashSet<>();
    private final Map<Integer, Resource3d> resources = new HashMap<>();
    private final Arena scratchArena = Arena.ofShared();
    private final MemorySegment args = scratchArena.allocate(11 * 4, 8);
    private final MemorySegment box = scratchArena.allocate(6 * 4, 8);
    // counters
    public long commands;
    public long errors;

    public Virgl3dCommands(VirglRenderer renderer, long maxHostmem) {
        this.renderer = renderer;
        this.lib = renderer.library();
        this.maxHostmem = maxHostmem;
    }

    /** The frontend's display, as the 2D device reaches it (its lock, its channel). */
    public interface Display {
        /** VHOST_USER_GPU_SCANOUT: {scanout, width, height}. */
        boolean scanout(MemorySegment message);

        /** VHOST_USER_GPU_UPDATE: {scanout, x, y, width, height} then BGRA pixels. */
        boolean update(MemorySegment message, long size);
    }

    private volatile Display display;
    private final int[] scanoutResource = new int[VirtioGpu.MAX_SCANOUTS];
    private final int[][] scanoutRect = new int[VirtioGpu.MAX_SCANOUTS][4];
    private final int[] shown = new int[4];
    private final ReadbackPixels readbackPixels = new ReadbackPixels();
    private MemorySegment readback;
    private MemorySegment updateMessage;
    private final MemorySegment readbackIov = scratchArena.allocate(16, 8);
    private final MemorySegment scanoutMessage = scratchArena.allocate(12, 8);

    public void setDisplay(Display display) {
        this.display = display;
    }

    /** A 3D resource as the guest described it, its guest backing, the contexts that may use it. */
    private static final class Resource3d {
        final int target;
        int format;
        final int width;
        final int height;
        final int depth;
        final int arraySize;
        final int lastLevel;
        final long bytes;
        final Set<Integer> contexts = new HashSet<>();
        Arena backingArena;
        GuestMemory backingMemory;
        long backingBytes;

        Resource3d(int target, int width, int height, int depth, int arraySize, int lastLevel, long bytes) {
            this.target = target;
            this.width = width;
            this.height = height;
            this.depth = depth;
            this.arraySize = arraySize;
            this.lastLevel = lastLevel;
            this.bytes = bytes;
        }
    }

    /**
     * One control-queue command in 3D mode: the response is written to resp; returns its length. Commands that
     * 3D does not change (display info, EDID, cursor) are the caller's: this returns -1 for them.
     */
    public int control(MemorySegment req, int len, MemorySegment resp, GuestMemory memory) throws Throwable {
        int type = req.get(U32, 0);
        int ctx = req.get(U32, 16);
        int[] respLen = {HDR}; // longer only for the capset answers
        int status = switch (type) {
            case VirtioGpu.CMD_GET_CAPSET_INFO -> len < HDR + 8 ? VirtioGpu.RESP_ERR_UNSPEC : capsetInfo(req.get(U32, 24), resp, respLen);
            case VirtioGpu.CMD_GET_CAPSET -> len < HDR + 8 ? VirtioGpu.RESP_ERR_UNSPEC
                    : capset(req.get(U32, 24), req.get(U32, 28), resp, respLen);
            case CMD_CTX_CREATE -> len < HDR + 8 + 64 ? VirtioGpu.RESP_ERR_UNSPEC : ctxCreate(ctx, req);
            case CMD_CTX_DESTROY -> ctxDestroy(ctx);
            case CMD_CTX_ATTACH_RESOURCE -> len < HDR + 8 ? VirtioGpu.RESP_ERR_UNSPEC : ctxAttach(ctx, req.get(U32, 24), true);
            case CMD_CTX_DETACH_RESOURCE -> len < HDR + 8 ? VirtioGpu.RESP_ERR_UNSPEC : ctxAttach(ctx, req.get(U32, 24), false);
            case CMD_RESOURCE_CREATE_3D -> len < HDR + 48 ? VirtioGpu.RESP_ERR_UNSPEC : create3d(req);
            case VirtioGpu.CMD_RESOURCE_CREATE_2D -> len < HDR + 16 ? VirtioGpu.RESP_ERR_UNSPEC : create2d(req);
            case VirtioGpu.CMD_RESOURCE_UNREF -> len < HDR + 8 ? VirtioGpu.RESP_ERR_UNSPEC : unref(req.get(U32, 24));
            case VirtioGpu.CMD_RESOURCE_ATTACH_BACKING -> attachBacking(req, len, memory);
            case VirtioGpu.CMD_RESOURCE_DETACH_BACKING -> len < HDR + 8 ? VirtioGpu.RESP_ERR_UNSPEC : detachBacking(req.get(U32, 24));
            case CMD_TRANSFER_TO_HOST_3D, CMD_TRANSFER_FROM_HOST_3D -> len < HDR + 48 ? VirtioGpu.RESP_ERR_UNSPEC
                    : transfer3d(ctx, req, type == CMD_TRANSFER_TO_HOST_3D);
            case VirtioGpu.CMD_TRANSFER_TO_HOST_2D -> len < HDR + 32 ? VirtioGpu.RESP_ERR_UNSPEC : transfer2d(req);
            case CMD_SUBMIT_3D -> len < HDR + 8 ? VirtioGpu.RESP_ERR_UNSPEC : submit(ctx, req, len);
            case VirtioGpu.CMD_SET_SCANOUT -> len < HDR + 24 ? VirtioGpu.RESP_ERR_UNSPEC : setScanout(req);
            case VirtioGpu.CMD_RESOURCE_FLUSH -> len < HDR + 24 ? VirtioGpu.RESP_ERR_UNSPEC : flush(req);
            default -> -1;
        };
        if (status == -1) {
            return -1;
        }
        commands++;
        if (status != RESP_OK_CAPSET_INFO && status != RESP_OK_CAPSET && status != VirtioGpu.RESP_OK_NODATA) {
            errors++;
        }
        resp.set(U32, 0, status);
        return respLen[0];
    }

    private int capsetInfo(int index, MemorySegment resp, int[] respLen) throws Throwable {
        if (index < 0 || index >= CAPSETS.length) {
            return VirtioGpu.RESP_ERR_INVALID_PARAMETER;
        }
        int[] info = renderer.capsetHere(CAPSETS[index]);
        resp.set(U32, HDR, CAPSETS[index]);
        resp.set(U32, HDR + 4, info[0]);
        resp.set(U32, HDR + 8, info[1]);
        resp.set(U32, HDR + 12, 0);
        respLen[0] = HDR + 16;
        return RESP_OK_CAPSET_INFO;
    }

    private int capset(int id, int version, MemorySegment resp, int[] respLen) throws Throwable {
        if (id != VirglRenderer.CAPSET_VIRGL && id != VirglRenderer.CAPSET_VIRGL2) {
            return VirtioGpu.RESP_ERR_INVALID_PARAMETER;
        }
        int[] info = renderer.capsetHere(id);
        if (Integer.compareUnsigned(version, info[0]) > 0 || info[1] <= 0 || HDR + (long) info[1] > resp.byteSize()) {
            return VirtioGpu.RESP_ERR_INVALID_PARAMETER;
        }
        renderer.fillCapsHere(id, version, resp.asSlice(HDR, info[1]));
        respLen[0] = HDR + info[1];
        return RESP_OK_CAPSET;
    }

    private int ctxCreate(int ctx, MemorySegment req) throws Throwable {
        int nlen = req.get(U32, HDR);
        int contextInit = req.get(U32, HDR + 4);
        if (ctx <= 0 || ctx >= MAX_CONTEXT_ID || contexts.contains(ctx) || contexts.size() >= MAX_CONTEXTS
                || nlen < 0 || nlen > 64 || contextInit != 0) {
            return VirtioGpu.RESP_ERR_INVALID_PARAMETER; // context_init needs VIRTIO_GPU_F_CONTEXT_INIT, not offered
        }
        int rc = (int) lib.contextCreate.invokeExact(ctx, nlen, req.asSlice(HDR + 8, 64));
        if (rc != 0) {
            return VirtioGpu.RESP_ERR_UNSPEC;
        }
        contexts.add(ctx);
        return VirtioGpu.RESP_OK_NODATA;
    }

    private int ctxDestroy(int ctx) throws Throwable {
        if (!contexts.remove(ctx)) {
            return VirtioGpu.RESP_ERR_INVALID_PARAMETER;
        }
        lib.contextDestroy.invokeExact(ctx);
        for (Resource3d r : resources.values()) {
            r.contexts.remove(ctx);
        }
        return VirtioGpu.RESP_OK_NODATA;
    }

    private int ctxAttach(int ctx, int resourceId, boolean attach) throws Throwable {
        Resource3d r = resources.get(resourceId);
        if (!contexts.contains(ctx)) {
            return VirtioGpu.RESP_ERR_INVALID_PARAMETER;
        }
        if (r == null) {
            return VirtioGpu.RESP_ERR_INVALID_RESOURCE_ID;
        }
        if (attach) {
            if (r.contexts.add(ctx)) {
                lib.ctxAttachResource.invokeExact(ctx, resourceId);
            }
        } else if (r.contexts.remove(ctx)) {
            lib.ctxDetachResource.invokeExact(ctx, resourceId);
        }
        return VirtioGpu.RESP_OK_NODATA;
    }

    private int create3d(MemorySegment req) throws Throwable {
        int id = req.get(U32, HDR);
        int target = req.get(U32, HDR + 4);
        int format = req.get(U32, HDR + 8);
        int bind = req.get(U32, HDR + 12);
        int width = req.get(U32, HDR + 16);
        int height = req.get(U32, HDR + 20);
        int depth = req.get(U32, HDR + 24);
        int arraySize = req.get(U32, HDR + 28);
        int lastLevel = req.get(U32, HDR + 32);
        int samples = req.get(U32, HDR + 36);
        int flags = req.get(U32, HDR + 40);
        return create(id, target, format, bind, width, height, depth, arraySize, lastLevel, samples, flags);
    }

    private int create2d(MemorySegment req) throws Throwable {
        return create(req.get(U32, HDR), TEXTURE_2D, req.get(U32, HDR + 4), BIND_RENDER_TARGET, req.get(U32, HDR + 8),
                req.get(U32, HDR + 12), 1, 1, 0, 0, FLAG_Y_0_TOP);
    }

    private int create(int id, int target, int format, int bind, int width, int height, int depth, int arraySize,
            int lastLevel, int samples, int flags) throws Throwable {
        if (id == 0 || resources.containsKey(id)) {
            return VirtioGpu.RESP_ERR_INVALID_RESOURCE_ID;
        }
        boolean buffer = target == PIPE_BUFFER;
        if (target < 0 || target > MAX_TARGET || width <= 0 || height <= 0 || depth <= 0 || arraySize <= 0
                || (!buffer && (width > MAX_DIMENSION || height > MAX_DIMENSION || depth > MAX_DIMENSION))
                || (buffer && (height != 1 || depth != 1 || arraySize != 1))
                || arraySize > MAX_ARRAY || lastLevel < 0 || lastLevel >= MAX_LEVELS || samples < 0 || samples > 16) {
            return VirtioGpu.RESP_ERR_INVALID_PARAMETER;
        }
        long texels = (long) width * height * depth * arraySize;
        long bytes = buffer ? width : texels * BYTES_PER_TEXEL * (lastLevel > 0 ? 4 : 3) / 3 * Math.max(1, samples);
        if (bytes > maxHostmem - hostmem) {
            return VirtioGpu.RESP_ERR_OUT_OF_MEMORY;
        }
        int[] v = {id, target, format, bind, width, height, depth, arraySize, lastLevel, samples, flags};
        for (int i = 0; i < v.length; i++) {
            args.set(ValueLayout.JAVA_INT, 4L * i, v[i]);
        }
        int rc = (int) lib.resourceCreate.invokeExact(args, MemorySegment.NULL, 0);
        if (rc != 0) {
            return VirtioGpu.RESP_ERR_INVALID_PARAMETER; // a format or bind the renderer does not take
        }
        Resource3d r = new Resource3d(target, width, height, depth, arraySize, lastLevel, bytes);
        r.format = format;
        resources.put(id, r);
        hostmem += bytes;
        return VirtioGpu.RESP_OK_NODATA;
    }

    private int unref(int id) throws Throwable {
        Resource3d r = resources.remove(id);
        if (r == null) {
            return VirtioGpu.RESP_ERR_INVALID_RESOURCE_ID;
        }
        for (int ctx : r.contexts) {
            lib.ctxDetachResource.invokeExact(ctx, id);
        }
        for (int i = 0; i < scanoutResource.length; i++) {
            if (scanoutResource[i] == id) { // as QEMU: the scanout showing it goes dark
                scanoutResource[i] = 0;
                sendScanout(i, 0, 0);
            }
        }
        dropBacking(id, r);
        lib.resourceUnref.invokeExact(id);
        hostmem -= r.bytes;
        return VirtioGpu.RESP_OK_NODATA;
    }

    /**
     * ATTACH_BACKING: the guest's pages become iovecs the renderer keeps (host addresses): the guest memory
     * table is retained until the backing goes, so a remap cannot pull the pages from under it.
     */
    private int attachBacking(MemorySegment req, int len, GuestMemory memory) throws Throwable {
        if (len < HDR + 8) {
            return VirtioGpu.RESP_ERR_UNSPEC;
        }
        int id = req.get(U32, HDR);
        Resource3d r = resources.get(id);
        if (r == null) {
            return VirtioGpu.RESP_ERR_INVALID_RESOURCE_ID;
        }
        int n = req.get(U32, HDR + 4);
        if (r.backingArena != null || n <= 0 || n > VirtioGpu.MAX_BACKING_ENTRIES
                || (long) len < HDR + 8 + (long) n * VirtioGpu.MEM_ENTRY_BYTES) {
            return VirtioGpu.RESP_ERR_UNSPEC;
        }
        int pieces = 0;
        long total = 0;
        for (int i = 0; i < n; i++) {
            long off = HDR + 8 + (long) i * VirtioGpu.MEM_ENTRY_BYTES;
            int p = pieces(memory, req.get(U64, off), Integer.toUnsignedLong(req.get(U32, off + 8)));
            if (p < 0) {
                return VirtioGpu.RESP_ERR_UNSPEC; // a page the guest does not have
            }
            pieces += p;
            total += Integer.toUnsignedLong(req.get(U32, off + 8));
        }
        Arena arena = Arena.ofShared();
        MemorySegment iov = arena.allocate(16L * Math.max(1, pieces), 8);
        int k = 0;
        for (int i = 0; i < n; i++) {
            long off = HDR + 8 + (long) i * VirtioGpu.MEM_ENTRY_BYTES;
            long gpa = req.get(U64, off);
            long left = Integer.toUnsignedLong(req.get(U32, off + 8));
            while (left > 0) {
                MemoryRegion region = memory.region(memory.findGuest(gpa));
                long step = Math.min(left, region.size() - (gpa - region.guestAddress()));
                iov.set(ValueLayout.JAVA_LONG, 16L * k, region.segment().address() + (gpa - region.guestAddress()));
                iov.set(ValueLayout.JAVA_LONG, 16L * k + 8, step);
                k++;
                gpa += step;
                left -= step;
            }
        }
        int rc = (int) lib.attachIov.invokeExact(id, iov, k);
        if (rc != 0) {
            arena.close();
            return VirtioGpu.RESP_ERR_UNSPEC;
        }
        memory.retain();
        r.backingArena = arena;
        r.backingMemory = memory;
        r.backingBytes = total;
        return VirtioGpu.RESP_OK_NODATA;
    }

    /** Regions [gpa, gpa+len) spans, or -1 if part of it is not guest memory. */
    private static int pieces(GuestMemory memory, long gpa, long len) {
        int n = 0;
        while (len > 0) {
            int i = memory.findGuest(gpa);
            if (i < 0) {
                return -1;
            }
            MemoryRegion region = memory.region(i);
            long step = Math.min(len, region.size() - (gpa - region.guestAddress()));
            gpa += step;
            len -= step;
            n++;
        }
        return n;
    }

    private int detachBacking(int id) throws Throwable {
        Resource3d r = resources.get(id);
        if (r == null) {
            return VirtioGpu.RESP_ERR_INVALID_RESOURCE_ID;
        }
        if (r.backingArena == null) {
            return VirtioGpu.RESP_ERR_UNSPEC;
        }
        dropBacking(id, r);
        return VirtioGpu.RESP_OK_NODATA;
    }

    private void dropBacking(int id, Resource3d r) throws Throwable {
        if (r.backingArena == null) {
            return;
        }
        lib.detachIov.invokeExact(id, MemorySegment.NULL, MemorySegment.NULL);
        r.backingArena.close();
        r.backingArena = null;
        r.backingMemory.release();
        r.backingMemory = null;
        r.backingBytes = 0;
    }

    /**
     * TRANSFER_TO/FROM_HOST_3D: the box must lie in the level's extent, the resource must be the context's (or
     * ctx 0: the device's own transfers), backing attached, and the guest-side span within the backing.
     */
    private int transfer3d(int ctx, MemorySegment req, boolean toHost) throws Throwable {
        int x = req.get(U32, HDR);
        int y = req.get(U32, HDR + 4);
        int z = req.get(U32, HDR + 8);
        int w = req.get(U32, HDR + 12);
        int h = req.get(U32, HDR + 16);
        int d = req.get(U32, HDR + 20);
        long offset = req.get(U64, HDR + 24);
        int id = req.get(U32, HDR + 32);
        int level = req.get(U32, HDR + 36);
        int stride = req.get(U32, HDR + 40);
        int layerStride = req.get(U32, HDR + 44);
        return transfer(ctx, id, level, stride, layerStride, x, y, z, w, h, d, offset, toHost);
    }

    /** TRANSFER_TO_HOST_2D through the renderer: level 0 of a 2D resource, the device's own context (0). */
    private int transfer2d(MemorySegment req) throws Throwable {
        return transfer(0, req.get(U32, HDR + 24), 0, 0, 0, req.get(U32, HDR), req.get(U32, HDR + 4), 0,
                req.get(U32, HDR + 8), req.get(U32, HDR + 12), 1, req.get(U64, HDR + 16), true);
    }

    private int transfer(int ctx, int id, int level, int stride, int layerStride, int x, int y, int z, int w, int h,
            int d, long offset, boolean toHost) throws Throwable {
        Resource3d r = resources.get(id);
        if (r == null) {
            return VirtioGpu.RESP_ERR_INVALID_RESOURCE_ID;
        }
        if (ctx != 0 && (!contexts.contains(ctx) || !r.contexts.contains(ctx))) {
            return VirtioGpu.RESP_ERR_INVALID_PARAMETER;
        }
        int status = checkBox(r, level, x, y, z, w, h, d, offset, stride, layerStride);
        if (status != VirtioGpu.RESP_OK_NODATA) {
            return status;
        }
        setBox(x, y, z, w, h, d);
        int rc = toHost
                ? (int) lib.transferWriteIov.invokeExact(id, ctx, level, stride, layerStride, box, offset, MemorySegment.NULL, 0)
                : (int) lib.transferReadIov.invokeExact(id, ctx, level, stride, layerStride, box, offset, MemorySegment.NULL, 0);
        return rc == 0 ? VirtioGpu.RESP_OK_NODATA : VirtioGpu.RESP_ERR_INVALID_PARAMETER;
    }

    private int checkBox(Resource3d r, int level, int x, int y, int z, int w, int h, int d, long offset, int stride,
            int layerStride) {
        if (r.backingArena == null) {
            return VirtioGpu.RESP_ERR_UNSPEC;
        }
        if (level < 0 || level > r.lastLevel) {
            return VirtioGpu.RESP_ERR_INVALID_PARAMETER;
        }
        long lw = Math.max(1, r.width >> level);
        long lh = r.target == PIPE_BUFFER ? 1 : Math.max(1, r.height >> level);
        long ld = r.target == 3 ? Math.max(1, r.depth >> level) : Math.max(r.depth, r.arraySize);
        if (x < 0 || y < 0 || z < 0 || w < 0 || h < 0 || d < 0
                || x + (long) w > lw || y + (long) h > lh || z + (long) d > ld) {
            return VirtioGpu.RESP_ERR_INVALID_PARAMETER;
        }
        // the renderer checks the exact span against the iovecs; reject what cannot fit in any case
        if (offset < 0 || offset >= Math.max(1, r.backingBytes) || (long) stride * h > Integer.MAX_VALUE
                || (long) layerStride * d > Integer.MAX_VALUE) {
            return VirtioGpu.RESP_ERR_INVALID_PARAMETER;
        }
        return VirtioGpu.RESP_OK_NODATA;
    }

    private void setBox(int x, int y, int z, int w, int h, int d) {
        int[] v = {x, y, z, w, h, d};
        for (int i = 0; i < 6; i++) {
            box.set(ValueLayout.JAVA_INT, 4L * i, v[i]);
        }
    }

    /**
     * SET_SCANOUT: a 2D texture in one of the formats the display takes, the rectangle inside it; resource 0
     * turns the scanout off. The frontend hears the geometry at once.
     */
    private int setScanout(MemorySegment req) {
        int x = req.get(U32, HDR);
        int y = req.get(U32, HDR + 4);
        int w = req.get(U32, HDR + 8);
        int h = req.get(U32, HDR + 12);
        int scanout = req.get(U32, HDR + 16);
        int id = req.get(U32, HDR + 20);
        if (Integer.compareUnsigned(scanout, VirtioGpu.MAX_SCANOUTS) >= 0) {
            return VirtioGpu.RESP_ERR_INVALID_SCANOUT_ID;
        }
        if (id == 0) {
            if (scanoutResource[scanout] != 0) {
                scanoutResource[scanout] = 0;
                sendScanout(scanout, 0, 0);
            }
            return VirtioGpu.RESP_OK_NODATA;
        }
        Resource3d r = resources.get(id);
        if (r == null) {
            return VirtioGpu.RESP_ERR_INVALID_RESOURCE_ID;
        }
        if (r.target != TEXTURE_2D || PixelFormat.of(r.format) == null || w <= 0 || h <= 0
                || x < 0 || y < 0 || x + (long) w > r.width || y + (long) h > r.height) {
            return VirtioGpu.RESP_ERR_INVALID_PARAMETER;
        }
        scanoutResource[scanout] = id;
        int[] rect = scanoutRect[scanout];
        rect[0] = x;
        rect[1] = y;
        rect[2] = w;
        rect[3] = h;
        sendScanout(scanout, w, h);
        return VirtioGpu.RESP_OK_NODATA;
    }

    private void sendScanout(int scanout, int w, int h) {
        Display d = display;
        if (d != null) {
            scanoutMessage.set(U32, 0, scanout);
            scanoutMessage.set(U32, 4, w);
            scanoutMessage.set(U32, 8, h);
            d.scanout(scanoutMessage);
        }
    }

    /**
     * RESOURCE_FLUSH: the flushed rectangle, as each scanout showing the resource sees it, is read back from
     * the renderer (virgl_renderer_transfer_read_iov into a buffer of ours) and sent as UPDATE messages in
     * BGRA, like 2D: so any QEMU display (none, VNC, screendump) shows it.
     */
    private int flush(MemorySegment req) throws Throwable {
        int x = req.get(U32, HDR);
        int y = req.get(U32, HDR + 4);
        int w = req.get(U32, HDR + 8);
        int h = req.get(U32, HDR + 12);
        int id = req.get(U32, HDR + 16);
        Resource3d r = resources.get(id);
        if (r == null) {
            return VirtioGpu.RESP_ERR_INVALID_RESOURCE_ID;
        }
        if (x < 0 || y < 0 || w < 0 || h < 0 || x + (long) w > r.width || y + (long) h > r.height) {
            return VirtioGpu.RESP_ERR_INVALID_PARAMETER;
        }
        Display d = display;
        for (int i = 0; i < scanoutResource.length; i++) {
            int[] s = scanoutRect[i];
            if (scanoutResource[i] == id && d != null && ScanoutUpdates.visible(x, y, w, h, s[0], s[1], s[2], s[3], shown)) {
                if (readback == null) {
                    readback = scratchArena.allocate(ScanoutUpdates.CHUNK, 4096);
                    updateMessage = scratchArena.allocate(ScanoutUpdates.HEADER + ScanoutUpdates.CHUNK, 8);
                }
                readbackPixels.id = id;
                readbackPixels.format = PixelFormat.of(r.format);
                ScanoutUpdates.send(i, shown[0], shown[1], shown[2], shown[3], shown[0] - s[0], shown[1] - s[1],
                        readbackPixels, updateMessage, d::update);
            }
        }
        return VirtioGpu.RESP_OK_NODATA;
    }

    /** A strip of the flushed resource, read back from the renderer and converted to BGRA. */
    private final class ReadbackPixels implements ScanoutUpdates.PixelRows {
        int id;
        PixelFormat format;

        @Override
        public boolean copyBgra(int x, int y, int w, int rows, MemorySegment dst, long dstOffset) {
            long rowBytes = (long) w * PixelFormat.BYTES_PER_PIXEL;
            // virglrenderer turns a bottom-up GL texture the guest's way round (top row first) unless the
            // resource says Y_0_TOP, when it is stored that way already: the box is in the guest's coordinates
            setBox(x, y, 0, w, rows, 1);
            readbackIov.set(ValueLayout.JAVA_LONG, 0, readback.address());
            readbackIov.set(ValueLayout.JAVA_LONG, 8, rowBytes * rows);
            int rc;
            try {
                rc = (int) lib.transferReadIov.invokeExact(id, 0, 0, (int) rowBytes, 0, box, 0L, readbackIov, 1);
            } catch (Throwable t) {
                LOG.warnf("reading resource %d back for the display failed: %s", id, t);
                return false;
            }
            if (rc != 0) {
                return false;
            }
            for (int k = 0; k < rows; k++) {
                format.toBgra(readback, k * rowBytes, dst, dstOffset + k * rowBytes, w);
            }
            return true;
        }
    }

    /**
     * A cursor resource's pixels (64x64, as virglrenderer reads them for a cursor: BGRA, top row first) into
     * dst; false if it is not a 64x64 resource of ours.
     */
    public boolean cursorImage(int id, MemorySegment dst) throws Throwable {
        Resource3d r = resources.get(id);
        if (r == null || r.width != VirtioGpu.CURSOR_SIZE || r.height != VirtioGpu.CURSOR_SIZE) {
            return false;
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment w = a.allocate(ValueLayout.JAVA_INT);
            MemorySegment h = a.allocate(ValueLayout.JAVA_INT);
            MemorySegment data = (MemorySegment) lib.getCursorData.invokeExact(id, w, h);
            if (data.address() == 0) {
                return false;
            }
            try {
                if (w.get(ValueLayout.JAVA_INT, 0) != VirtioGpu.CURSOR_SIZE || h.get(ValueLayout.JAVA_INT, 0) != VirtioGpu.CURSOR_SIZE) {
                    return false;
                }
                MemorySegment.copy(data.reinterpret(dst.byteSize()), 0, dst, 0, dst.byteSize());
                return true;
            } finally {
                lib.free.invokeExact(data);
            }
        }
    }

    /** SUBMIT_3D: a whole number of dwords, all inside the request, to a context that exists. */
    private int submit(int ctx, MemorySegment req, int len) throws Throwable {
        int size = req.get(U32, HDR);
        if (!contexts.contains(ctx)) {
            return VirtioGpu.RESP_ERR_INVALID_PARAMETER;
        }
        if (size < 0 || size % 4 != 0 || (long) HDR + 8 + size > len) {
            return VirtioGpu.RESP_ERR_INVALID_PARAMETER;
        }
        if (size == 0) {
            return VirtioGpu.RESP_OK_NODATA;
        }
        int rc = (int) lib.submitCmd.invokeExact(req.asSlice(HDR + 8, size), ctx, size / 4);
        return rc == 0 ? VirtioGpu.RESP_OK_NODATA : VirtioGpu.RESP_ERR_INVALID_PARAMETER;
    }

    /** Number of capsets (config space num_capsets). */
    public static int capsetCount() {
        return CAPSETS.length;
    }

    public long hostmem() {
        return hostmem;
    }

    public int resourceCount() {
        return resources.size();
    }

    /** Device reset: every resource and context goes (on the renderer's thread). */
    public void reset() throws Throwable {
        java.util.Arrays.fill(scanoutResource, 0);
        for (Integer id : resources.keySet().toArray(Integer[]::new)) {
            unref(id);
        }
        for (Integer ctx : contexts.toArray(Integer[]::new)) {
            ctxDestroy(ctx);
        }
    }
}

package dev.vhostappliance.gpu;

import static dev.vhostappliance.gpu.VirtioGpuDeviceTest.attach;
import static dev.vhostappliance.gpu.VirtioGpuDeviceTest.command;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostappliance.gpu.virgl.Virgl3dCommands;
import dev.vhostappliance.gpu.virgl.VirglRenderer;
import dev.vhostappliance.gpu.virgl.VirglTesting;
import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.protocol.Message;
import dev.vhostappliance.protocol.VhostUserRequest;
import dev.vhostappliance.testing.DriverQueue;
import dev.vhostappliance.testing.DriverQueue.Buf;
import dev.vhostappliance.testing.GuestRam;
import dev.vhostappliance.testing.TestFrontend;
import dev.vhostappliance.virtqueue.VirtioRing;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The 3D command set through the core's test frontend, rendered by virglrenderer in this process (surfaceless,
 * llvmpipe): a context, a render target, a command stream of our own that clears it, and the pixels read back
 * into guest memory with TRANSFER_FROM_HOST_3D; then the malformed commands, each answered with its error and
 * the device still serving. Needs libvirglrenderer1 and Mesa's EGL; skipped without them, except in CI.
 */
class Virgl3dDeviceTest {
    static final long FEATURES = VirtioRing.bit(VirtioRing.F_VERSION_1) | (1L << VirtioGpu.F_EDID) | (1L << VirtioGpu.F_VIRGL);
    static final int W = 64;
    static final int H = 64;
    /** virgl (gallium) formats and flags used here. */
    static final int B8G8R8A8_UNORM = 1;
    static final int TEXTURE_2D = 2;
    static final int BIND_RENDER_TARGET = 2;
    static final int PIPE_CLEAR_COLOR0 = 1 << 2;
    /** virgl command stream: VIRGL_CMD0(cmd, obj, len). */
    static final int CCMD_CREATE_OBJECT = 1;
    static final int CCMD_SET_FRAMEBUFFER_STATE = 5;
    static final int CCMD_CLEAR = 7;
    static final int OBJECT_SURFACE = 8;

    VirtioGpuDevice device;
    GuestRam ram;
    TestFrontend fe;
    DriverQueue controlq;
    DriverQueue cursorq;

    @BeforeEach
    void start() throws Exception {
        device = new VirtioGpuDevice(64L << 20, VirglTesting.startOrSkip());
        ram = GuestRam.single(16L << 20);
        fe = TestFrontend.connect(device);
        DriverQueue[] q = fe.ready(ram, FEATURES, 2, 64);
        controlq = q[0];
        cursorq = q[1];
    }

    @AfterEach
    void stop() throws Exception {
        if (fe != null) {
            assertTrue(fe.alive(), "backend still serving");
            fe.close();
        }
        if (device != null) {
            device.close(); // the renderer goes with it: the next test starts its own
        }
        if (ram != null) {
            ram.close();
        }
    }

    private ByteBuffer send(ByteBuffer cmd, int respLen) throws Exception {
        long req = ram.alloc(cmd.capacity(), 8);
        ram.write(req, cmd.array());
        long resp = ram.alloc(respLen, 8);
        controlq.addDirect(new Buf(req, cmd.capacity(), false), new Buf(resp, respLen, true));
        controlq.kick();
        DriverQueue.Used u = controlq.awaitUsed(20_000);
        assertNotNull(u, "command answered");
        return ByteBuffer.wrap(ram.read(resp, u.len())).order(ByteOrder.LITTLE_ENDIAN);
    }

    private int type(ByteBuffer cmd) throws Exception {
        return send(cmd, 24).getInt(0);
    }

    static ByteBuffer withCtx(ByteBuffer b, int ctx) {
        b.putInt(16, ctx);
        return b;
    }

    static ByteBuffer fenced(ByteBuffer b, long fence) {
        b.putInt(4, VirtioGpu.FLAG_FENCE).putLong(8, fence);
        return b;
    }

    static ByteBuffer ctxCreate(int ctx) {
        return withCtx(command(Virgl3dCommands.CMD_CTX_CREATE, 24 + 8 + 64, b -> {
            b.putInt(24, 4);
            b.put(32, "test".getBytes());
        }), ctx);
    }

    static ByteBuffer create3d(int id, int target, int format, int bind, int w, int h) {
        return command(Virgl3dCommands.CMD_RESOURCE_CREATE_3D, 24 + 48, b -> b.putInt(24, id).putInt(28, target)
                .putInt(32, format).putInt(36, bind).putInt(40, w).putInt(44, h).putInt(48, 1).putInt(52, 1));
    }

    static ByteBuffer ctxResource(int type, int ctx, int id) {
        return withCtx(command(type, 32, b -> b.putInt(24, id)), ctx);
    }

    static ByteBuffer transfer3d(int type, int ctx, int id, int x, int y, int w, int h, long offset, int stride) {
        return withCtx(command(type, 24 + 48, b -> b.putInt(24, x).putInt(28, y).putInt(32, 0).putInt(36, w)
                .putInt(40, h).putInt(44, 1).putLong(48, offset).putInt(56, id).putInt(60, 0).putInt(64, stride)), ctx);
    }

    static ByteBuffer submit(int ctx, int[] dwords, int claimedBytes) {
        return withCtx(command(Virgl3dCommands.CMD_SUBMIT_3D, 32 + 4 * dwords.length, b -> {
            b.putInt(24, claimedBytes);
            for (int i = 0; i < dwords.length; i++) {
                b.putInt(32 + 4 * i, dwords[i]);
            }
        }), ctx);
    }

    static int cmd0(int cmd, int obj, int len) {
        return cmd | obj << 8 | len << 16;
    }

    /** Surface 10 on resource res, bound as colour buffer 0, cleared to (r, g, b, a). */
    static int[] clearStream(int res, float r, float g, float b, float a) {
        return new int[] {
            cmd0(CCMD_CREATE_OBJECT, OBJECT_SURFACE, 5), 10, res, B8G8R8A8_UNORM, 0, 0,
            cmd0(CCMD_SET_FRAMEBUFFER_STATE, 0, 3), 1, 0, 10,
            cmd0(CCMD_CLEAR, 0, 8), PIPE_CLEAR_COLOR0, Float.floatToIntBits(r), Float.floatToIntBits(g),
            Float.floatToIntBits(b), Float.floatToIntBits(a), 0, 0, 0,
        };
    }

    /** A context with a 64x64 render target (resource 1) attached to it and backed by guest memory. */
    private long renderTarget() throws Exception {
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(ctxCreate(1)));
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(create3d(1, TEXTURE_2D, B8G8R8A8_UNORM, BIND_RENDER_TARGET, W, H)));
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(ctxResource(Virgl3dCommands.CMD_CTX_ATTACH_RESOURCE, 1, 1)));
        long backing = ram.alloc(W * H * 4, 4096);
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(attach(1, new long[] {backing}, new int[] {W * H * 4})));
        return backing;
    }

    /** A fake frontend display, given to the device as its vhost-user-gpu socket. */
    private FakeDisplay display() throws Exception {
        FakeDisplay display = new FakeDisplay();
        fe.send(VhostUserRequest.GPU_SET_SOCKET, Message.VERSION, 0, null, display.backendFd);
        LibC.close(display.backendFd);
        return display;
    }

    @Test
    void capsetsAreAnswered() throws Exception {
        ByteBuffer info0 = send(command(VirtioGpu.CMD_GET_CAPSET_INFO, 32, b -> b.putInt(24, 0)), 40);
        assertEquals(Virgl3dCommands.RESP_OK_CAPSET_INFO, info0.getInt(0));
        assertEquals(VirglRenderer.CAPSET_VIRGL, info0.getInt(24));
        ByteBuffer info1 = send(command(VirtioGpu.CMD_GET_CAPSET_INFO, 32, b -> b.putInt(24, 1)), 40);
        assertEquals(VirglRenderer.CAPSET_VIRGL2, info1.getInt(24));
        int version = info1.getInt(28);
        int size = info1.getInt(32);
        assertTrue(version >= 1 && size > 0, "virgl2: version " + version + ", " + size + " bytes");
        assertEquals(VirtioGpu.RESP_ERR_INVALID_PARAMETER, type(command(VirtioGpu.CMD_GET_CAPSET_INFO, 32, b -> b.putInt(24, 2))));

        ByteBuffer caps = send(command(VirtioGpu.CMD_GET_CAPSET, 32, b -> b.putInt(24, 2).putInt(28, version)), 24 + size);
        assertEquals(Virgl3dCommands.RESP_OK_CAPSET, caps.getInt(0));
        assertEquals(24 + size, caps.capacity());
        assertTrue(caps.getInt(24) >= 1, "caps max_version");
        assertEquals(VirtioGpu.RESP_ERR_INVALID_PARAMETER,
                type(command(VirtioGpu.CMD_GET_CAPSET, 32, b -> b.putInt(24, 2).putInt(28, version + 1))));
        assertEquals(VirtioGpu.RESP_ERR_INVALID_PARAMETER, type(command(VirtioGpu.CMD_GET_CAPSET, 32, b -> b.putInt(24, 7))));
    }

    @Test
    void aCommandStreamClearsARenderTargetAndThePixelsComeBack() throws Exception {
        long backing = renderTarget();
        int[] stream = clearStream(1, 0f, 1f, 0f, 1f);
        ByteBuffer done = send(fenced(submit(1, stream, stream.length * 4), 41), 24);
        assertEquals(VirtioGpu.RESP_OK_NODATA, done.getInt(0));
        assertEquals(41, done.getLong(8), "the fence comes back once retired");
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(fenced(transfer3d(Virgl3dCommands.CMD_TRANSFER_FROM_HOST_3D, 1, 1,
                0, 0, W, H, 0, W * 4), 42)));
        ByteBuffer pixels = ByteBuffer.wrap(ram.read(backing, W * H * 4)).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < W * H; i++) {
            assertEquals(0xff00ff00, pixels.getInt(4 * i), "pixel " + i + " is the clear colour (B8G8R8A8: opaque green)");
        }
        // a second clear of another colour, read back again: the pixels follow the renderer, not a cache
        int[] red = clearStream(1, 1f, 0f, 0f, 1f);
        red[1] = 11; // a new surface handle
        red[9] = 11;
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(fenced(submit(1, red, red.length * 4), 43)));
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(fenced(transfer3d(Virgl3dCommands.CMD_TRANSFER_FROM_HOST_3D, 1, 1,
                0, 0, W, H, 0, W * 4), 44)));
        assertEquals(0xffff0000, ByteBuffer.wrap(ram.read(backing, 4)).order(ByteOrder.LITTLE_ENDIAN).getInt(0));
    }

    /** The 3D picture reaches a display that takes no GL (none, VNC, screendump): read back, sent as UPDATE. */
    @Test
    void aFlushedRenderTargetIsReadBackToTheDisplay() throws Exception {
        FakeDisplay display = display();
        try {
            renderTarget();
            int[] stream = clearStream(1, 0f, 0f, 1f, 1f);
            assertEquals(VirtioGpu.RESP_OK_NODATA, type(fenced(submit(1, stream, stream.length * 4), 5)));
            assertEquals(VirtioGpu.RESP_OK_NODATA, type(VirtioGpuDeviceTest.scanout(0, 1, 0, 0, W, H)));
            FakeDisplay.Msg so = display.next(VhostUserGpuChannel.SCANOUT);
            assertNotNull(so, "scanout geometry sent");
            ByteBuffer g = ByteBuffer.wrap(so.payload()).order(ByteOrder.LITTLE_ENDIAN);
            assertEquals(0, g.getInt(0));
            assertEquals(W, g.getInt(4));
            assertEquals(H, g.getInt(8));
            assertEquals(VirtioGpu.RESP_OK_NODATA, type(VirtioGpuDeviceTest.flush(1, 8, 16, 32, 8)));
            FakeDisplay.Msg up = display.next(VhostUserGpuChannel.UPDATE);
            assertNotNull(up, "pixels sent");
            ByteBuffer u = ByteBuffer.wrap(up.payload()).order(ByteOrder.LITTLE_ENDIAN);
            assertEquals(8, u.getInt(4), "x");
            assertEquals(16, u.getInt(8), "y");
            assertEquals(32, u.getInt(12), "width");
            assertEquals(8, u.getInt(16), "height");
            assertEquals(20 + 32 * 8 * 4, up.payload().length);
            for (int i = 0; i < 32 * 8; i++) {
                assertEquals(0xff0000ff, u.getInt(20 + 4 * i), "pixel " + i + ": opaque blue in BGRA");
            }
            // a 3D guest's cursor is a renderer resource: its pixels come from virglrenderer
            long req = ram.alloc(56, 8);
            ram.write(req, command(VirtioGpu.CMD_UPDATE_CURSOR, 56, b -> b.putInt(24, 0).putInt(28, 10).putInt(32, 20)
                    .putInt(40, 1).putInt(44, 3).putInt(48, 4)).array());
            cursorq.addDirect(new Buf(req, 56, false));
            cursorq.kick();
            assertNotNull(cursorq.awaitUsed(10_000));
            FakeDisplay.Msg shape = display.next(VhostUserGpuChannel.CURSOR_UPDATE);
            assertNotNull(shape, "cursor image sent");
            assertEquals(20 + 64 * 64 * 4, shape.payload().length);
            assertEquals(3, shape.u32(12), "hot x");
            for (int i = 0; i < 64 * 64; i++) {
                assertEquals(0xff0000ff, shape.u32(20 + 4 * i), "cursor pixel " + i + ": the render target's blue");
            }
            assertEquals(VirtioGpu.RESP_ERR_INVALID_PARAMETER, type(VirtioGpuDeviceTest.scanout(0, 1, 0, 0, W + 1, H)),
                    "a scanout larger than the resource");
            assertEquals(VirtioGpu.RESP_ERR_INVALID_SCANOUT_ID, type(VirtioGpuDeviceTest.scanout(16, 1, 0, 0, W, H)));
            assertEquals(VirtioGpu.RESP_ERR_INVALID_PARAMETER, type(VirtioGpuDeviceTest.flush(1, 0, 0, W, H + 1)));
        } finally {
            display.close();
        }
    }

    /**
     * Many commands in flight at once: fenced clears answered when their fences retire, in fence order, with the
     * fence echoed; the unfenced queries between them answered too (not held behind a fence); nothing lost.
     */
    @Test
    void fencedCommandsComeBackInFenceOrderWithTheOthersAnswered() throws Exception {
        renderTarget();
        int n = 15; // 60 descriptors of the queue's 64
        java.util.Map<Integer, Long> fenceOfHead = new java.util.HashMap<>();
        java.util.Map<Integer, Long> respOfHead = new java.util.HashMap<>();
        for (int i = 0; i < n; i++) {
            int[] stream = clearStream(1, i / (float) n, 0f, 1f, 1f);
            stream[1] = 100 + i; // a surface of its own per clear
            stream[9] = 100 + i;
            ByteBuffer cmd = fenced(submit(1, stream, stream.length * 4), 1000 + i);
            long req = ram.alloc(cmd.capacity(), 8);
            ram.write(req, cmd.array());
            long resp = ram.alloc(24, 8);
            int head = controlq.addDirect(new Buf(req, cmd.capacity(), false), new Buf(resp, 24, true));
            fenceOfHead.put(head, 1000L + i);
            respOfHead.put(head, resp);
            ByteBuffer info = command(VirtioGpu.CMD_GET_CAPSET_INFO, 32, b -> b.putInt(24, 0));
            long infoReq = ram.alloc(32, 8);
            ram.write(infoReq, info.array());
            long infoResp = ram.alloc(40, 8);
            int infoHead = controlq.addDirect(new Buf(infoReq, 32, false), new Buf(infoResp, 40, true));
            respOfHead.put(infoHead, infoResp);
        }
        controlq.kick();
        long lastFence = 0;
        int fencedSeen = 0;
        for (int k = 0; k < 2 * n; k++) {
            DriverQueue.Used u = controlq.awaitUsed(20_000);
            assertNotNull(u, "answer " + k + " of " + 2 * n);
            ByteBuffer r = ByteBuffer.wrap(ram.read(respOfHead.get(u.head()), 24)).order(ByteOrder.LITTLE_ENDIAN);
            Long fence = fenceOfHead.get(u.head());
            if (fence == null) {
                assertEquals(Virgl3dCommands.RESP_OK_CAPSET_INFO, r.getInt(0), "a query's answer");
                assertEquals(0, r.getInt(4), "no fence flag on an unfenced answer");
                continue;
            }
            assertEquals(VirtioGpu.RESP_OK_NODATA, r.getInt(0));
            assertEquals(VirtioGpu.FLAG_FENCE, r.getInt(4) & VirtioGpu.FLAG_FENCE, "the fence flag echoed");
            assertEquals((long) fence, r.getLong(8), "the fence id echoed");
            assertTrue(fence > lastFence, "fence " + fence + " after " + lastFence);
            lastFence = fence;
            fencedSeen++;
        }
        assertEquals(n, fencedSeen);
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(fenced(transfer3d(Virgl3dCommands.CMD_TRANSFER_FROM_HOST_3D, 1, 1,
                0, 0, W, H, 0, W * 4), 2000)), "the device goes on");
    }

    /**
     * The display gets the picture the right way up: each row of the guest's backing (top row first, as a
     * guest writes a framebuffer) arrives as the same row of the update, whatever way round the renderer keeps
     * its GL texture (a resource without Y_0_TOP is bottom-up inside virglrenderer).
     */
    @Test
    void theDisplayGetsTheGuestsRowsTopFirst() throws Exception {
        FakeDisplay display = display();
        try {
            long backing = renderTarget();
            ByteBuffer rows = ByteBuffer.allocate(W * H * 4).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < W * H; i++) {
                rows.putInt(4 * i, 0xff000000 | (i / W) << 16 | (i % W)); // red = row, blue = column
            }
            ram.write(backing, rows.array());
            assertEquals(VirtioGpu.RESP_OK_NODATA, type(transfer3d(Virgl3dCommands.CMD_TRANSFER_TO_HOST_3D, 1, 1, 0, 0, W,
                    H, 0, W * 4)));
            assertEquals(VirtioGpu.RESP_OK_NODATA, type(VirtioGpuDeviceTest.scanout(0, 1, 0, 0, W, H)));
            assertNotNull(display.next(VhostUserGpuChannel.SCANOUT));
            assertEquals(VirtioGpu.RESP_OK_NODATA, type(VirtioGpuDeviceTest.flush(1, 0, 10, W, 20)));
            FakeDisplay.Msg up = display.next(VhostUserGpuChannel.UPDATE);
            assertNotNull(up, "pixels sent");
            assertEquals(10, up.u32(8), "y");
            assertEquals(20, up.u32(16), "height");
            for (int row = 0; row < 20; row++) {
                for (int col = 0; col < W; col += 9) {
                    assertEquals(0xff000000 | (10 + row) << 16 | col, up.u32(20 + 4 * (row * W + col)),
                            "update row " + row + ", column " + col + " is the guest's row " + (10 + row));
                }
            }
        } finally {
            display.close();
        }
    }

    @Test
    void malformedCommandsGetTheirErrorsAndTheDeviceGoesOn() throws Exception {
        renderTarget();
        int ok = VirtioGpu.RESP_OK_NODATA;
        int param = VirtioGpu.RESP_ERR_INVALID_PARAMETER;
        int noRes = VirtioGpu.RESP_ERR_INVALID_RESOURCE_ID;
        int from = Virgl3dCommands.CMD_TRANSFER_FROM_HOST_3D;
        // contexts
        assertEquals(param, type(ctxCreate(1)), "a context id twice");
        assertEquals(param, type(ctxCreate(0)), "context 0");
        assertEquals(param, type(withCtx(command(Virgl3dCommands.CMD_CTX_DESTROY, 24, null), 9)), "no such context");
        assertEquals(param, type(withCtx(command(Virgl3dCommands.CMD_CTX_CREATE, 24 + 8 + 64, b -> b.putInt(24, 65)), 2)),
                "a name longer than 64");
        assertEquals(param, type(ctxResource(Virgl3dCommands.CMD_CTX_ATTACH_RESOURCE, 9, 1)), "attach to no context");
        assertEquals(noRes, type(ctxResource(Virgl3dCommands.CMD_CTX_ATTACH_RESOURCE, 1, 99)), "attach no resource");
        // resources
        assertEquals(noRes, type(create3d(1, TEXTURE_2D, B8G8R8A8_UNORM, BIND_RENDER_TARGET, W, H)), "resource id twice");
        assertEquals(param, type(create3d(2, TEXTURE_2D, B8G8R8A8_UNORM, BIND_RENDER_TARGET, 0, H)), "width 0");
        assertEquals(param, type(create3d(2, 77, B8G8R8A8_UNORM, BIND_RENDER_TARGET, W, H)), "no such target");
        assertEquals(param, type(create3d(2, TEXTURE_2D, B8G8R8A8_UNORM, BIND_RENDER_TARGET, 1 << 20, 1)), "too wide");
        assertEquals(VirtioGpu.RESP_ERR_OUT_OF_MEMORY, type(create3d(2, TEXTURE_2D, B8G8R8A8_UNORM, BIND_RENDER_TARGET,
                16384, 16384)), "past --max-hostmem");
        // transfers
        assertEquals(param, type(transfer3d(from, 1, 1, 60, 0, 8, 8, 0, W * 4)), "a box past the right edge");
        assertEquals(param, type(transfer3d(from, 1, 1, 0, 0, -1, 8, 0, W * 4)), "a negative width");
        assertEquals(param, type(transfer3d(from, 1, 1, 0, 0, 8, 8, W * H * 4, W * 4)), "an offset past the backing");
        assertEquals(param, type(transfer3d(from, 1, 1, 0, 0, 8, 8, 0, Integer.MAX_VALUE)), "a stride that overflows");
        assertEquals(noRes, type(transfer3d(from, 1, 99, 0, 0, 8, 8, 0, W * 4)), "no such resource");
        assertEquals(ok, type(create3d(3, TEXTURE_2D, B8G8R8A8_UNORM, BIND_RENDER_TARGET, W, H)));
        assertEquals(param, type(transfer3d(from, 1, 3, 0, 0, 8, 8, 0, W * 4)), "a resource not attached to the context");
        assertEquals(VirtioGpu.RESP_ERR_UNSPEC, type(transfer3d(from, 0, 3, 0, 0, 8, 8, 0, W * 4)), "no backing");
        // command streams
        int[] stream = clearStream(1, 0f, 0f, 1f, 1f);
        assertEquals(param, type(submit(1, stream, stream.length * 4 + 4)), "a size past the request");
        assertEquals(param, type(submit(1, stream, 6)), "not whole dwords");
        assertEquals(param, type(submit(7, stream, stream.length * 4)), "no such context");
        int[] garbage = new Random(13).ints(256).toArray();
        int garbageAnswer = type(submit(1, garbage, garbage.length * 4));
        assertTrue(garbageAnswer == ok || garbageAnswer == param, "random dwords answered: 0x" + Integer.toHexString(garbageAnswer));
        // still serving, and the context still renders or is refused cleanly; a fresh context does
        assertEquals(ok, type(ctxCreate(2)));
        assertEquals(ok, type(ctxResource(Virgl3dCommands.CMD_CTX_ATTACH_RESOURCE, 2, 1)));
        assertEquals(ok, type(fenced(submit(2, stream, stream.length * 4), 7)));
        assertEquals(ok, type(withCtx(command(Virgl3dCommands.CMD_CTX_DESTROY, 24, null), 2)));
        assertEquals(ok, type(command(VirtioGpu.CMD_RESOURCE_UNREF, 32, b -> b.putInt(24, 1))));
        assertEquals(noRes, type(command(VirtioGpu.CMD_RESOURCE_UNREF, 32, b -> b.putInt(24, 1))), "unref twice");
    }
}

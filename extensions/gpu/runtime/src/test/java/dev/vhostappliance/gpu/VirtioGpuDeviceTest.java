package dev.vhostappliance.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** virtio-gpu 2D through the core's test frontend, with a fake QEMU display on the vhost-user-gpu socket. */
class VirtioGpuDeviceTest {
    static final long FEATURES = VirtioRing.bit(VirtioRing.F_VERSION_1) | (1L << VirtioGpu.F_EDID);
    static final long MIB = 1 << 20;

    VirtioGpuDevice device = new VirtioGpuDevice(16 * MIB);
    GuestRam ram;
    TestFrontend fe;
    DriverQueue controlq;
    DriverQueue cursorq;
    FakeDisplay display;

    @AfterEach
    void tearDown() throws Exception {
        if (fe != null) {
            assertTrue(fe.alive(), "backend still serving");
            fe.close();
        }
        if (display != null) {
            display.close();
        }
        if (ram != null) {
            ram.close();
        }
    }

    private void start(boolean withDisplay) throws Exception {
        ram = GuestRam.single(16 * MIB);
        fe = TestFrontend.connect(device);
        DriverQueue[] q = fe.ready(ram, FEATURES, 2, 64);
        controlq = q[0];
        cursorq = q[1];
        if (withDisplay) {
            display = new FakeDisplay();
            fe.send(VhostUserRequest.GPU_SET_SOCKET, Message.VERSION, 0, null, display.backendFd);
            LibC.close(display.backendFd);
            assertEquals(2, fe.getU64(VhostUserRequest.GET_QUEUE_NUM), "socket taken, backend still answering");
        }
    }

    /** A command: the header (type, flags, fence) and its body written by body (little-endian). */
    static ByteBuffer command(int type, int size, Consumer<ByteBuffer> body) {
        ByteBuffer b = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(0, type);
        if (body != null) {
            body.accept(b);
        }
        return b;
    }

    /** Posts cmd with respLen writable bytes on the control queue; returns the response (used length long). */
    private ByteBuffer send(ByteBuffer cmd, int respLen) throws Exception {
        long req = ram.alloc(cmd.capacity(), 8);
        ram.write(req, cmd.array());
        long resp = ram.alloc(Math.max(respLen, 1), 8);
        List<Buf> bufs = new ArrayList<>();
        bufs.add(new Buf(req, cmd.capacity(), false));
        if (respLen > 0) {
            bufs.add(new Buf(resp, respLen, true));
        }
        controlq.addDirect(bufs.toArray(new Buf[0]));
        controlq.kick();
        DriverQueue.Used u = controlq.awaitUsed(10_000);
        assertNotNull(u, "command answered");
        return ByteBuffer.wrap(ram.read(resp, u.len())).order(ByteOrder.LITTLE_ENDIAN);
    }

    private int type(ByteBuffer cmd) throws Exception {
        ByteBuffer r = send(cmd, 24);
        assertEquals(24, r.capacity());
        return r.getInt(0);
    }

    static ByteBuffer create(int id, int format, int w, int h) {
        return command(VirtioGpu.CMD_RESOURCE_CREATE_2D, 40, b -> b.putInt(24, id).putInt(28, format).putInt(32, w).putInt(36, h));
    }

    static ByteBuffer attach(int id, long[] addr, int[] len) {
        return command(VirtioGpu.CMD_RESOURCE_ATTACH_BACKING, 32 + 16 * addr.length, b -> {
            b.putInt(24, id).putInt(28, addr.length);
            for (int i = 0; i < addr.length; i++) {
                b.putLong(32 + 16 * i, addr[i]).putInt(40 + 16 * i, len[i]);
            }
        });
    }

    static ByteBuffer rectCommand(int type, int size, int x, int y, int w, int h, Consumer<ByteBuffer> rest) {
        return command(type, size, b -> {
            b.putInt(24, x).putInt(28, y).putInt(32, w).putInt(36, h);
            if (rest != null) {
                rest.accept(b);
            }
        });
    }

    static ByteBuffer transfer(int id, int x, int y, int w, int h, long offset) {
        return rectCommand(VirtioGpu.CMD_TRANSFER_TO_HOST_2D, 56, x, y, w, h, b -> b.putLong(40, offset).putInt(48, id));
    }

    static ByteBuffer scanout(int scanoutId, int id, int x, int y, int w, int h) {
        return rectCommand(VirtioGpu.CMD_SET_SCANOUT, 48, x, y, w, h, b -> b.putInt(40, scanoutId).putInt(44, id));
    }

    static ByteBuffer flush(int id, int x, int y, int w, int h) {
        return rectCommand(VirtioGpu.CMD_RESOURCE_FLUSH, 48, x, y, w, h, b -> b.putInt(40, id));
    }

    static int pixel(int x, int y) {
        return (x * 7 + y * 131) * 0x01010101 ^ 0x00a5c3e1;
    }

    /** A w x h image in guest memory, split over two backing entries, filled with pixel(x, y) words. */
    private long[] backing(int w, int h, int[] lens) {
        int bytes = w * h * 4;
        int first = (bytes / 2) & ~3;
        long a = ram.alloc(first, 4096);
        long b = ram.alloc(bytes - first, 4096);
        ByteBuffer img = ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                img.putInt((y * w + x) * 4, pixel(x, y));
            }
        }
        byte[] all = img.array();
        ram.write(a, java.util.Arrays.copyOfRange(all, 0, first));
        ram.write(b, java.util.Arrays.copyOfRange(all, first, bytes));
        lens[0] = first;
        lens[1] = bytes - first;
        return new long[] {a, b};
    }

    @Test
    void displayInfoAndEdidComeFromTheFrontend() throws Exception {
        start(true);
        ByteBuffer info = send(command(VirtioGpu.CMD_GET_DISPLAY_INFO, 24, null), VirtioGpu.DISPLAY_INFO_BYTES);
        assertEquals(VirtioGpu.RESP_OK_DISPLAY_INFO, info.getInt(0));
        assertEquals(1024, info.getInt(24 + 8));
        assertEquals(768, info.getInt(24 + 12));
        assertEquals(1, info.getInt(24 + 16));
        assertNotNull(display.next(VhostUserGpuChannel.SET_PROTOCOL_FEATURES), "protocol features negotiated first");
        ByteBuffer edid = send(command(VirtioGpu.CMD_GET_EDID, 32, b -> b.putInt(24, 1)), VirtioGpu.EDID_RESP_BYTES);
        assertEquals(VirtioGpu.RESP_OK_EDID, edid.getInt(0));
        assertEquals(128, edid.getInt(24));
        assertEquals(1, edid.get(32 + 127), "the frontend was asked for scanout 1");
        assertEquals(VirtioGpu.RESP_ERR_INVALID_SCANOUT_ID, type(command(VirtioGpu.CMD_GET_EDID, 32, b -> b.putInt(24, 16))));
        assertEquals(VirtioGpu.RESP_ERR_UNSPEC, send(command(VirtioGpu.CMD_GET_DISPLAY_INFO, 24, null), 100).getInt(0),
                "a response buffer too small for the answer gets an error that fits");
    }

    @Test
    void getEdidIsNeverSentToAFrontendWithoutTheEdidFeature() throws Exception {
        device = new VirtioGpuDevice(16 * MIB);
        start(false);
        display = new FakeDisplay();
        display.offeredProtocolFeatures = 0;
        fe.send(VhostUserRequest.GPU_SET_SOCKET, Message.VERSION, 0, null, display.backendFd);
        LibC.close(display.backendFd);
        assertEquals(2, fe.getU64(VhostUserRequest.GET_QUEUE_NUM), "socket taken before the commands below");
        assertEquals(VirtioGpu.RESP_ERR_UNSPEC, type(command(VirtioGpu.CMD_GET_EDID, 32, b -> b.putInt(24, 0))));
        assertEquals(VirtioGpu.RESP_OK_DISPLAY_INFO,
                send(command(VirtioGpu.CMD_GET_DISPLAY_INFO, 24, null), VirtioGpu.DISPLAY_INFO_BYTES).getInt(0));
        for (FakeDisplay.Msg m : display.messages) {
            assertTrue(m.request() != VhostUserGpuChannel.GET_EDID, "no GET_EDID on the wire");
        }
    }

    @Test
    void transferAndFlushShowTheGuestsPixelsConvertedToXrgb() throws Exception {
        start(true);
        int w = 64;
        int h = 32;
        int[] lens = new int[2];
        long[] addr = backing(w, h, lens);
        // X8R8G8B8: bytes X, R, G, B in memory; the display wants B, G, R, X
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(create(7, 4, w, h)));
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(attach(7, addr, lens)));
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(transfer(7, 0, 0, w, h, 0)));
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(scanout(0, 7, 8, 4, 48, 24)));
        FakeDisplay.Msg so = display.next(VhostUserGpuChannel.SCANOUT);
        assertNotNull(so);
        assertEquals(List.of(0, 48, 24), List.of(so.u32(0), so.u32(4), so.u32(8)));
        // flush a rectangle partly outside the scanout window: only the visible part goes, in scanout coordinates
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(flush(7, 0, 0, 20, 10)));
        FakeDisplay.Msg up = display.next(VhostUserGpuChannel.UPDATE);
        assertNotNull(up);
        assertEquals(List.of(0, 0, 0, 12, 6), List.of(up.u32(0), up.u32(4), up.u32(8), up.u32(12), up.u32(16)));
        ByteBuffer px = ByteBuffer.wrap(up.payload()).order(ByteOrder.LITTLE_ENDIAN);
        for (int y = 0; y < 6; y++) {
            for (int x = 0; x < 12; x++) {
                int src = pixel(8 + x, 4 + y);
                byte[] b = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(src).array(); // X R G B
                int want = (b[3] & 0xff) | (b[2] & 0xff) << 8 | (b[1] & 0xff) << 16 | (b[0] & 0xff) << 24;
                assertEquals(want, px.getInt(20 + (y * 12 + x) * 4), "pixel " + x + "," + y);
            }
        }
        // a partial transfer of a sub-rectangle updates only that part
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(transfer(7, 10, 10, 4, 4, (10L * w + 10) * 4)));
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(command(VirtioGpu.CMD_RESOURCE_DETACH_BACKING, 32, b -> b.putInt(24, 7))));
        assertEquals(VirtioGpu.RESP_ERR_UNSPEC, type(transfer(7, 0, 0, w, h, 0)), "no backing any more");
        // unref of a shown resource turns the scanout off
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(command(VirtioGpu.CMD_RESOURCE_UNREF, 32, b -> b.putInt(24, 7))));
        FakeDisplay.Msg off = display.next(VhostUserGpuChannel.SCANOUT);
        assertEquals(List.of(0, 0, 0), List.of(off.u32(0), off.u32(4), off.u32(8)));
        assertEquals(0, device.stats().resources());
        assertEquals(0, device.stats().resourceBytes());
    }

    @Test
    void largeFlushesGoAsStripsOfBoundedSize() throws Exception {
        start(true);
        int w = 1024;
        int h = 600; // 2.4 MB: three strips of at most 1 MiB
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(create(1, 2, w, h)));
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(scanout(0, 1, 0, 0, w, h)));
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(flush(1, 0, 0, w, h)));
        int rows = 0;
        while (rows < h) {
            FakeDisplay.Msg up = display.next(VhostUserGpuChannel.UPDATE);
            assertNotNull(up, "strip after row " + rows);
            assertEquals(rows, up.u32(8));
            assertTrue(up.payload().length - 20 <= GpuCommands.UPDATE_CHUNK);
            rows += up.u32(16);
        }
        assertEquals(h, rows);
    }

    @Test
    void badCommandsGetTheRightErrorAndChangeNothing() throws Exception {
        device = new VirtioGpuDevice(2 * MIB);
        start(true);
        long outside = 64 * MIB;
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(create(1, 1, 16, 16)));
        int[][] cases = {
            {VirtioGpu.RESP_ERR_INVALID_RESOURCE_ID, type(create(0, 1, 4, 4))},
            {VirtioGpu.RESP_ERR_INVALID_RESOURCE_ID, type(create(1, 1, 4, 4))},
            {VirtioGpu.RESP_ERR_INVALID_PARAMETER, type(create(2, 99, 4, 4))},
            {VirtioGpu.RESP_ERR_INVALID_PARAMETER, type(create(2, 1, 0, 4))},
            {VirtioGpu.RESP_ERR_INVALID_PARAMETER, type(create(2, 1, -1, 4))},
            {VirtioGpu.RESP_ERR_INVALID_PARAMETER, type(create(2, 1, 16385, 1))},
            {VirtioGpu.RESP_ERR_OUT_OF_MEMORY, type(create(2, 1, 1024, 1024))},
            {VirtioGpu.RESP_ERR_INVALID_RESOURCE_ID, type(command(VirtioGpu.CMD_RESOURCE_UNREF, 32, b -> b.putInt(24, 9)))},
            {VirtioGpu.RESP_ERR_INVALID_SCANOUT_ID, type(scanout(16, 1, 0, 0, 4, 4))},
            {VirtioGpu.RESP_ERR_INVALID_SCANOUT_ID, type(scanout(-1, 1, 0, 0, 4, 4))},
            {VirtioGpu.RESP_ERR_INVALID_RESOURCE_ID, type(scanout(0, 9, 0, 0, 4, 4))},
            {VirtioGpu.RESP_ERR_INVALID_PARAMETER, type(scanout(0, 1, -1, 0, 2, 2))},
            {VirtioGpu.RESP_ERR_INVALID_PARAMETER, type(scanout(0, 1, 8, 8, 9, 1))},
            {VirtioGpu.RESP_ERR_INVALID_PARAMETER, type(scanout(0, 1, 0, 0, 0, 4))},
            {VirtioGpu.RESP_ERR_INVALID_PARAMETER, type(flush(1, 0, 0, 17, 1))},
            {VirtioGpu.RESP_ERR_INVALID_PARAMETER, type(flush(1, 0, 0x7fffffff, 1, 0x7fffffff))},
            {VirtioGpu.RESP_ERR_INVALID_RESOURCE_ID, type(flush(9, 0, 0, 1, 1))},
            {VirtioGpu.RESP_ERR_UNSPEC, type(transfer(1, 0, 0, 16, 16, 0))}, // no backing yet
            {VirtioGpu.RESP_ERR_UNSPEC, type(attach(1, new long[] {outside}, new int[] {1024}))},
            {VirtioGpu.RESP_ERR_UNSPEC, type(attach(1, new long[] {16 * MIB - 512}, new int[] {1024}))}, // across the end
            {VirtioGpu.RESP_ERR_UNSPEC, type(command(VirtioGpu.CMD_RESOURCE_ATTACH_BACKING, 32, b -> b.putInt(24, 1).putInt(28, 0)))},
            {VirtioGpu.RESP_ERR_UNSPEC, type(command(VirtioGpu.CMD_RESOURCE_ATTACH_BACKING, 48, b -> b.putInt(24, 1).putInt(28, 1 << 20)))},
            {VirtioGpu.RESP_ERR_UNSPEC, type(command(VirtioGpu.CMD_RESOURCE_ATTACH_BACKING, 48, b -> b.putInt(24, 1).putInt(28, 2)))},
            {VirtioGpu.RESP_ERR_INVALID_RESOURCE_ID, type(attach(9, new long[] {0}, new int[] {64}))},
            {VirtioGpu.RESP_ERR_UNSPEC, type(command(VirtioGpu.CMD_RESOURCE_DETACH_BACKING, 32, b -> b.putInt(24, 1)))},
            {VirtioGpu.RESP_ERR_UNSPEC, type(command(0x200, 64, null))}, // CTX_CREATE: no 3D
            {VirtioGpu.RESP_ERR_UNSPEC, type(command(VirtioGpu.CMD_GET_CAPSET_INFO, 32, null))},
            {VirtioGpu.RESP_ERR_UNSPEC, type(command(VirtioGpu.CMD_RESOURCE_CREATE_2D, 30, b -> b.putInt(24, 5)))}, // short
            {VirtioGpu.RESP_ERR_UNSPEC, type(command(0x12345, 24, null))},
        };
        for (int i = 0; i < cases.length; i++) {
            assertEquals(cases[i][0], cases[i][1], "case " + i);
        }
        // backing of 1 KiB for a 1 KiB image: transfers past it are refused
        long page = ram.alloc(1024, 4096);
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(attach(1, new long[] {page}, new int[] {1024})));
        assertEquals(VirtioGpu.RESP_ERR_UNSPEC, type(attach(1, new long[] {page}, new int[] {1024})), "already attached");
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(transfer(1, 0, 0, 16, 16, 0)));
        assertEquals(VirtioGpu.RESP_ERR_INVALID_PARAMETER, type(transfer(1, 0, 0, 16, 16, 4)));
        assertEquals(VirtioGpu.RESP_ERR_INVALID_PARAMETER, type(transfer(1, 4, 4, 4, 4, 1000)));
        assertEquals(VirtioGpu.RESP_ERR_INVALID_PARAMETER, type(transfer(1, 4, 4, 4, 4, Long.MAX_VALUE)));
        assertEquals(VirtioGpu.RESP_ERR_INVALID_PARAMETER, type(transfer(1, 4, 4, 4, 4, -8)));
        assertEquals(VirtioGpu.RESP_ERR_INVALID_PARAMETER, type(transfer(1, 0, 15, 16, 2, 0)));
        // a request shorter than its header, and responses without room
        assertEquals(VirtioGpu.RESP_ERR_UNSPEC, send(command(VirtioGpu.CMD_GET_DISPLAY_INFO, 8, null), 24).getInt(0));
        assertEquals(0, send(create(3, 1, 4, 4), 8).capacity(), "no room for a header: returned unanswered");
        assertEquals(1, device.stats().resources(), "nothing else was created");
        assertEquals(16 * 16 * 4, device.stats().resourceBytes());
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(create(2, 1, 512, 256)), "the limit counts what exists");
    }

    @Test
    void fencedCommandsAnswerWithTheirFence() throws Exception {
        start(true);
        ByteBuffer cmd = create(5, 1, 4, 4);
        cmd.putInt(4, VirtioGpu.FLAG_FENCE).putLong(8, 0x1234_5678_9abcL).putInt(16, 3);
        ByteBuffer r = send(cmd, 24);
        assertEquals(VirtioGpu.RESP_OK_NODATA, r.getInt(0));
        assertEquals(VirtioGpu.FLAG_FENCE, r.getInt(4));
        assertEquals(0x1234_5678_9abcL, r.getLong(8));
        assertEquals(3, r.getInt(16));
        ByteBuffer plain = send(create(6, 1, 4, 4), 24);
        assertEquals(0, plain.getInt(4));
        assertEquals(0, plain.getLong(8));
    }

    private void cursorCommand(int type, int scanout, int x, int y, int resource, int hotX, int hotY) throws Exception {
        ByteBuffer c = command(type, 56, b -> b.putInt(24, scanout).putInt(28, x).putInt(32, y).putInt(40, resource)
                .putInt(44, hotX).putInt(48, hotY));
        long req = ram.alloc(56, 8);
        ram.write(req, c.array());
        cursorq.addDirect(new Buf(req, 56, false));
        cursorq.kick();
        DriverQueue.Used u = cursorq.awaitUsed(5000);
        assertNotNull(u);
        assertEquals(0, u.len());
    }

    @Test
    void cursorShapeAndMovesReachTheFrontend() throws Exception {
        start(true);
        int[] lens = new int[2];
        long[] addr = backing(64, 64, lens);
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(create(3, 1, 64, 64)));
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(attach(3, addr, lens)));
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(transfer(3, 0, 0, 64, 64, 0)));
        cursorCommand(VirtioGpu.CMD_UPDATE_CURSOR, 0, 100, 50, 3, 2, 5);
        FakeDisplay.Msg shape = display.next(VhostUserGpuChannel.CURSOR_UPDATE);
        assertNotNull(shape);
        assertEquals(20 + 64 * 64 * 4, shape.payload().length);
        assertEquals(List.of(0, 100, 50, 2, 5), List.of(shape.u32(0), shape.u32(4), shape.u32(8), shape.u32(12), shape.u32(16)));
        assertEquals(pixel(1, 0), shape.u32(20 + 4), "B8G8R8A8 goes as it is, alpha kept");
        cursorCommand(VirtioGpu.CMD_MOVE_CURSOR, 0, 300, 200, 0, 0, 0);
        FakeDisplay.Msg pos = display.next(VhostUserGpuChannel.CURSOR_POS);
        assertEquals(List.of(0, 300, 200), List.of(pos.u32(0), pos.u32(4), pos.u32(8)));
        cursorCommand(VirtioGpu.CMD_UPDATE_CURSOR, 0, 1, 2, 0, 0, 0);
        assertNotNull(display.next(VhostUserGpuChannel.CURSOR_POS_HIDE));
        // invalid: unknown resource, a resource that is not 64x64, scanout out of range: nothing sent
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(create(4, 1, 32, 32)));
        cursorCommand(VirtioGpu.CMD_UPDATE_CURSOR, 0, 1, 2, 9, 0, 0);
        cursorCommand(VirtioGpu.CMD_UPDATE_CURSOR, 0, 1, 2, 4, 0, 0);
        cursorCommand(VirtioGpu.CMD_MOVE_CURSOR, 16, 1, 2, 0, 0, 0);
        display.messages.clear();
        cursorCommand(VirtioGpu.CMD_MOVE_CURSOR, 0, 7, 8, 0, 0, 0);
        FakeDisplay.Msg last = display.next(VhostUserGpuChannel.CURSOR_POS);
        assertEquals(7, last.u32(4));
        GpuStats s = device.stats();
        assertEquals(2, s.cursorUpdates());
        assertEquals(2, s.cursorMoves());
    }

    @Test
    void withoutADisplayChannelCommandsStillWorkAndDisplayInfoFails() throws Exception {
        start(false);
        assertEquals(VirtioGpu.RESP_ERR_UNSPEC, send(command(VirtioGpu.CMD_GET_DISPLAY_INFO, 24, null), VirtioGpu.DISPLAY_INFO_BYTES).getInt(0));
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(create(1, 1, 8, 8)));
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(scanout(0, 1, 0, 0, 8, 8)));
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(flush(1, 0, 0, 8, 8)));
    }

    @Test
    void aFrontendThatDoesNotAnswerCostsAnErrorNotAHang() throws Exception {
        start(true);
        display.answer = false;
        long t0 = System.nanoTime();
        assertEquals(VirtioGpu.RESP_ERR_UNSPEC, send(command(VirtioGpu.CMD_GET_DISPLAY_INFO, 24, null), VirtioGpu.DISPLAY_INFO_BYTES).getInt(0));
        assertTrue(System.nanoTime() - t0 < 20_000_000_000L);
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(create(1, 1, 8, 8)), "the queue keeps working");
    }

    @Test
    void resetFreesEveryResource() throws Exception {
        start(true);
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(create(1, 1, 64, 64)));
        assertEquals(VirtioGpu.RESP_OK_NODATA, type(create(2, 1, 64, 64)));
        assertEquals(2, device.stats().resources());
        device.reset();
        assertEquals(0, device.stats().resources());
        assertEquals(0, device.stats().resourceBytes());
    }
}

package dev.vhostappliance.gpu;

import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.UnixSockets;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The frontend's end of the vhost-user-gpu socket, as QEMU plays it: answers GET_PROTOCOL_FEATURES (EDID),
 * GET_DISPLAY_INFO (one 1024x768 output) and GET_EDID (a recognisable blob), and records every other message.
 */
final class FakeDisplay implements AutoCloseable {
    static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED;
    final int backendFd;
    private final int fd;
    final LinkedBlockingQueue<Msg> messages = new LinkedBlockingQueue<>();
    private final Thread thread;
    volatile boolean answer = true;
    volatile long offeredProtocolFeatures = 1;

    record Msg(int request, byte[] payload) {
        int u32(int off) {
            return java.nio.ByteBuffer.wrap(payload).order(java.nio.ByteOrder.nativeOrder()).getInt(off);
        }
    }

    FakeDisplay() throws Exception {
        int[] pair = UnixSockets.pair();
        fd = pair[0];
        backendFd = pair[1];
        thread = Thread.ofPlatform().daemon(true).name("fake-display").start(this::run);
    }

    private void run() {
        MemorySegment hdr = Arena.ofAuto().allocate(12, 8);
        while (true) {
            if (!read(hdr, 12)) {
                return;
            }
            int req = hdr.get(U32, 0);
            int size = hdr.get(U32, 8);
            MemorySegment p = Arena.ofAuto().allocate(Math.max(size, 1), 8);
            if (size > 0 && !read(p, size)) {
                return;
            }
            byte[] payload = p.asSlice(0, size).toArray(ValueLayout.JAVA_BYTE);
            messages.add(new Msg(req, payload));
            if (!answer) {
                continue;
            }
            switch (req) {
                case VhostUserGpuChannel.GET_PROTOCOL_FEATURES -> {
                    MemorySegment r = Arena.ofAuto().allocate(8, 8);
                    r.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, offeredProtocolFeatures);
                    reply(req, r, 8);
                }
                case VhostUserGpuChannel.GET_DISPLAY_INFO -> {
                    MemorySegment r = Arena.ofAuto().allocate(VirtioGpu.DISPLAY_INFO_BYTES, 8);
                    r.set(U32, 0, VirtioGpu.RESP_OK_DISPLAY_INFO);
                    r.set(U32, 24 + 8, 1024);
                    r.set(U32, 24 + 12, 768);
                    r.set(U32, 24 + 16, 1); // enabled
                    reply(req, r, VirtioGpu.DISPLAY_INFO_BYTES);
                }
                case VhostUserGpuChannel.GET_EDID -> {
                    MemorySegment r = Arena.ofAuto().allocate(VirtioGpu.EDID_RESP_BYTES, 8);
                    r.set(U32, 0, VirtioGpu.RESP_OK_EDID);
                    r.set(U32, 24, 128);
                    for (int i = 0; i < 128; i++) {
                        r.set(ValueLayout.JAVA_BYTE, 32 + i, (byte) (i ^ 0x5a));
                    }
                    r.set(ValueLayout.JAVA_BYTE, 32 + 127, (byte) payload[0]); // echo the scanout id
                    reply(req, r, VirtioGpu.EDID_RESP_BYTES);
                }
                default -> {
                }
            }
        }
    }

    private void reply(int request, MemorySegment payload, int size) {
        MemorySegment m = Arena.ofAuto().allocate(12 + size, 8);
        m.set(U32, 0, request);
        m.set(U32, 4, VhostUserGpuChannel.FLAG_REPLY);
        m.set(U32, 8, size);
        MemorySegment.copy(payload, 0, m, 12, size);
        long done = 0;
        while (done < 12 + size) {
            long n = LibC.rawWrite(fd, m.asSlice(done), 12 + size - done);
            if (n <= 0) {
                return;
            }
            done += n;
        }
    }

    private boolean read(MemorySegment dst, long n) {
        long done = 0;
        while (done < n) {
            long r = LibC.rawRead(fd, dst.asSlice(done), n - done);
            if (r <= 0) {
                return false;
            }
            done += r;
        }
        return true;
    }

    /** The next message of type request (others before it are skipped), or null after 5 s. */
    Msg next(int request) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (System.nanoTime() < deadline) {
            Msg m = messages.poll(100, TimeUnit.MILLISECONDS);
            if (m != null && m.request() == request) {
                return m;
            }
        }
        return null;
    }

    @Override
    public void close() {
        LibC.close(fd);
    }
}

package dev.vhostappliance.bench;

import java.io.RandomAccessFile;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

/**
 * Proves the benchmark's client really moves data: through libblkio, on every queue, writes a pattern,
 * reads it back into a cleared buffer and compares; then reads the image file on the host. A backend (or
 * a client) that completed requests without doing the I/O fails here.
 */
final class ClientCheck {
    private ClientCheck() {
    }

    static void check(Libblkio lib, String socket, int queues, Path image) throws Throwable {
        int bs = 65536;
        try (Libblkio.Device dev = lib.new Device(socket, queues, 2L * bs * queues);
                Arena arena = Arena.ofConfined()) {
            MemorySegment completions = arena.allocate(Libblkio.COMPLETION_SIZE * 4, 8);
            for (int q = 0; q < queues; q++) {
                MemorySegment queue = dev.queue(q);
                MemorySegment out = dev.buffers.asSlice(2L * bs * q, bs);
                MemorySegment in = dev.buffers.asSlice(2L * bs * q + bs, bs);
                for (int i = 0; i < bs; i++) {
                    out.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 7 + q + 1));
                }
                long offset = (long) (q + 1) << 20;
                lib.submitWrite(queue, offset, out, bs, 1);
                expectOne(lib, queue, completions, "write on queue " + q);
                in.fill((byte) 0);
                lib.submitRead(queue, offset, in, bs, 2);
                expectOne(lib, queue, completions, "read on queue " + q);
                if (in.mismatch(out) != -1) {
                    throw new IllegalStateException("queue " + q + ": read back differs at " + in.mismatch(out));
                }
                if (image != null) {
                    byte[] host = new byte[bs];
                    try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "r")) {
                        f.seek(offset);
                        f.readFully(host);
                    }
                    if (MemorySegment.ofArray(host).mismatch(out) != -1) {
                        throw new IllegalStateException("queue " + q + ": image file differs from what was written");
                    }
                }
            }
        }
    }

    private static void expectOne(Libblkio lib, MemorySegment queue, MemorySegment completions, String what) throws Throwable {
        int n = lib.doIo(queue, completions, 1, 1);
        if (n != 1 || Libblkio.completionRet(completions, 0) != 0) {
            throw new IllegalStateException(what + ": " + n + " completions, ret " + Libblkio.completionRet(completions, 0));
        }
    }
}

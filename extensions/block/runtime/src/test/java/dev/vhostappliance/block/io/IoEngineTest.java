package dev.vhostappliance.block.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostappliance.libc.Errno;
import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.server.Poll;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every engine against real files: on the machine's disk (ext4 here) buffered and with O_DIRECT, and on
 * tmpfs; every operation, errors the kernel returns, many requests in flight at once, more buffers than one
 * system call takes, and reads past the end of the file.
 */
class IoEngineTest {
    private static final int CAPACITY = 128;

    @TempDir
    Path disk;

    private final Arena arena = Arena.ofShared();
    private final List<Integer> fds = new ArrayList<>();
    private final List<Path> shm = new ArrayList<>();

    @AfterEach
    void close() throws Exception {
        fds.forEach(LibC::close);
        for (Path p : shm) {
            Files.deleteIfExists(p);
        }
        arena.close();
    }

    /** engine kind, where the file lives, O_DIRECT. Linux AIO only with O_DIRECT, as QEMU allows it. */
    static Stream<Arguments> engines() {
        return Stream.of(
                Arguments.of(IoEngineKind.IO_URING, "disk", false),
                Arguments.of(IoEngineKind.IO_URING, "disk", true),
                Arguments.of(IoEngineKind.IO_URING, "tmpfs", false),
                Arguments.of(IoEngineKind.NATIVE, "disk", true),
                Arguments.of(IoEngineKind.THREADS, "disk", false),
                Arguments.of(IoEngineKind.THREADS, "disk", true),
                Arguments.of(IoEngineKind.THREADS, "tmpfs", false));
    }

    private Path file(String where, long size) throws Exception {
        Path p = where.equals("disk") ? Files.createTempFile(disk, "img", ".raw")
                : Files.createTempFile(Path.of("/dev/shm"), "img", ".raw");
        if (!where.equals("disk")) {
            shm.add(p);
        }
        byte[] pattern = new byte[(int) size];
        new Random(size).nextBytes(pattern);
        Files.write(p, pattern);
        return p;
    }

    private int open(Path p, boolean direct, int mode) throws Exception {
        int fd = LibC.open(p.toString(), mode | LibC.O_CLOEXEC | (direct ? LibC.O_DIRECT : 0), 0);
        fds.add(fd);
        return fd;
    }

    /** iovecs over aligned buffers of the given lengths, filled from data (or zeroed). */
    private MemorySegment iov(int[] lengths, byte[] data) {
        MemorySegment iov = arena.allocate(16L * lengths.length, 8);
        int at = 0;
        for (int i = 0; i < lengths.length; i++) {
            MemorySegment buf = arena.allocate(lengths[i], 4096);
            if (data != null) {
                MemorySegment.copy(MemorySegment.ofArray(data), at, buf, 0, lengths[i]);
            }
            iov.set(ValueLayout.JAVA_LONG, 16L * i, buf.address());
            iov.set(ValueLayout.JAVA_LONG, 16L * i + 8, lengths[i]);
            at += lengths[i];
        }
        return iov;
    }

    /** The bytes the iovecs point at (their current addresses and lengths). */
    private static byte[] gather(MemorySegment iov, int[] lengths) {
        byte[] out = new byte[Arrays.stream(lengths).sum()];
        int at = 0;
        for (int i = 0; i < lengths.length; i++) {
            MemorySegment.copy(NativeMemory.ALL, iov.get(ValueLayout.JAVA_LONG, 16L * i), MemorySegment.ofArray(out), at,
                    lengths[i]);
            at += lengths[i];
        }
        return out;
    }

    /** Submits what is queued and reaps until n requests completed; the completed ones, in completion order. */
    private static List<IoRequest> run(IoEngine engine, int n) throws Exception {
        List<IoRequest> done = new ArrayList<>();
        engine.submit();
        Poll poll = new Poll(1);
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (done.size() < n) {
            assertTrue(System.nanoTime() < deadline, "completed in time: " + done.size() + " of " + n);
            engine.reap(done::add);
            if (done.size() < n && engine.completionFd() >= 0 && !engine.hasCompletions()) {
                poll.clear().add(engine.completionFd());
                poll.await(100);
            }
        }
        assertEquals(0, engine.inFlight());
        return done;
    }

    @ParameterizedTest(name = "{0} on {1}, O_DIRECT {2}")
    @MethodSource("engines")
    void writesAndReadsThroughScatteredBuffers(IoEngineKind kind, String where, boolean direct) throws Exception {
        Path p = file(where, 1 << 20);
        int fd = open(p, direct, LibC.O_RDWR);
        byte[] data = new byte[16384];
        new Random(3).nextBytes(data);
        try (IoEngine engine = kind.open(CAPACITY, fd, "test")) {
            assertEquals(kind.option(), engine.name());
            IoRequest w = new IoRequest();
            w.prepareWrite(fd, iov(new int[] {4096, 8192, 4096}, data), 3, 65536, data.length);
            engine.queue(w);
            assertEquals(0, run(engine, 1).get(0).result());
            assertArrayEquals(data, Arrays.copyOfRange(Files.readAllBytes(p), 65536, 65536 + data.length));
            int[] layout = {512, 15360, 512};
            MemorySegment in = iov(layout, null);
            IoRequest r = new IoRequest();
            r.prepareRead(fd, in, 3, 65536, data.length);
            engine.queue(r);
            assertEquals(0, run(engine, 1).get(0).result());
            assertArrayEquals(data, gather(in, layout));
            IoRequest f = new IoRequest();
            f.prepareDatasync(fd);
            engine.queue(f);
            assertEquals(0, run(engine, 1).get(0).result());
        }
    }

    @ParameterizedTest(name = "{0} on {1}, O_DIRECT {2}")
    @MethodSource("engines")
    void manyRequestsInFlightAtOnceEachGetsItsOwnData(IoEngineKind kind, String where, boolean direct) throws Exception {
        int n = 100;
        Path p = file(where, n * 4096L);
        byte[] expected = Files.readAllBytes(p);
        int fd = open(p, direct, LibC.O_RDWR);
        try (IoEngine engine = kind.open(CAPACITY, fd, "test")) {
            IoRequest[] rs = new IoRequest[n];
            MemorySegment[] bufs = new MemorySegment[n];
            for (int i = 0; i < n; i++) {
                bufs[i] = iov(new int[] {4096}, null);
                rs[i] = new IoRequest();
                rs[i].prepareRead(fd, bufs[i], 1, (long) (n - 1 - i) * 4096, 4096);
                engine.queue(rs[i]);
            }
            assertEquals(n, engine.inFlight());
            List<IoRequest> done = run(engine, n);
            assertEquals(n, done.size());
            assertEquals(n, done.stream().distinct().count(), "each request completed once");
            for (int i = 0; i < n; i++) {
                assertEquals(0, rs[i].result());
                int off = (n - 1 - i) * 4096;
                assertArrayEquals(Arrays.copyOfRange(expected, off, off + 4096), gather(bufs[i], new int[] {4096}), "request " + i);
            }
        }
    }

    @ParameterizedTest(name = "{0} on {1}, O_DIRECT {2}")
    @MethodSource("engines")
    void moreBuffersThanOneSystemCallTakes(IoEngineKind kind, String where, boolean direct) throws Exception {
        int count = IoRequest.IOV_MAX + 476; // two submissions
        Path p = file(where, count * 512L + 4096);
        int fd = open(p, direct, LibC.O_RDWR);
        int[] layout = new int[count];
        Arrays.fill(layout, 512);
        byte[] data = new byte[count * 512];
        new Random(7).nextBytes(data);
        try (IoEngine engine = kind.open(CAPACITY, fd, "test")) {
            IoRequest w = new IoRequest();
            w.prepareWrite(fd, iov(layout, data), count, 4096, data.length);
            engine.queue(w);
            assertEquals(0, run(engine, 1).get(0).result());
            assertArrayEquals(data, Arrays.copyOfRange(Files.readAllBytes(p), 4096, 4096 + data.length));
            MemorySegment in = iov(layout, null);
            IoRequest r = new IoRequest();
            r.prepareRead(fd, in, count, 4096, data.length);
            engine.queue(r);
            assertEquals(0, run(engine, 1).get(0).result());
            assertArrayEquals(data, gather(in, layout));
        }
    }

    @ParameterizedTest(name = "{0} on {1}, O_DIRECT {2}")
    @MethodSource("engines")
    void aReadPastTheEndOfTheFileReadsZeroesThere(IoEngineKind kind, String where, boolean direct) throws Exception {
        Path p = file(where, 8192);
        byte[] file = Files.readAllBytes(p);
        int fd = open(p, direct, LibC.O_RDWR);
        try (IoEngine engine = kind.open(CAPACITY, fd, "test")) {
            int[] layout = {4096, 8192};
            MemorySegment in = iov(layout, new byte[12288]);
            MemorySegment.copy(MemorySegment.ofArray(new byte[] {1, 2, 3}), 0, NativeMemory.ALL,
                    in.get(ValueLayout.JAVA_LONG, 16), 3); // garbage where zeroes must come
            IoRequest r = new IoRequest();
            r.prepareRead(fd, in, 2, 4096, 12288);
            engine.queue(r);
            assertEquals(0, run(engine, 1).get(0).result());
            byte[] expected = new byte[12288];
            System.arraycopy(file, 4096, expected, 0, 4096);
            assertArrayEquals(expected, gather(in, new int[] {4096, 8192}));
        }
    }

    @ParameterizedTest(name = "{0} on {1}, O_DIRECT {2}")
    @MethodSource("engines")
    void fallocatePunchesAndFallbacksDecideFailures(IoEngineKind kind, String where, boolean direct) throws Exception {
        Path p = file(where, 65536);
        int fd = open(p, direct, LibC.O_RDWR);
        try (IoEngine engine = kind.open(CAPACITY, fd, "test")) {
            IoRequest punch = new IoRequest();
            punch.prepareFallocate(fd, LibC.FALLOC_FL_PUNCH_HOLE | LibC.FALLOC_FL_KEEP_SIZE, 8192, 16384, null);
            engine.queue(punch);
            assertEquals(0, run(engine, 1).get(0).result());
            byte[] after = Files.readAllBytes(p);
            assertEquals(65536, after.length);
            assertArrayEquals(new byte[16384], Arrays.copyOfRange(after, 8192, 8192 + 16384));
            // an invalid mode: the kernel refuses it, and the fallback decides what the request returns
            int[] seen = {0};
            IoRequest bad = new IoRequest();
            bad.prepareFallocate(fd, 0x7fff_0000, 0, 4096, (r, error) -> {
                seen[0] = error;
                return 0;
            });
            engine.queue(bad);
            assertEquals(0, run(engine, 1).get(0).result(), "the fallback's answer");
            assertTrue(seen[0] < 0, "the fallback saw the kernel's error: " + seen[0]);
        }
    }

    @ParameterizedTest(name = "{0} on {1}, O_DIRECT {2}")
    @MethodSource("engines")
    void errorsOfTheKernelAreTheResult(IoEngineKind kind, String where, boolean direct) throws Exception {
        Path p = file(where, 65536);
        int readOnly = open(p, direct, LibC.O_RDONLY);
        try (IoEngine engine = kind.open(CAPACITY, readOnly, "test")) {
            IoRequest w = new IoRequest();
            w.prepareWrite(readOnly, iov(new int[] {4096}, new byte[4096]), 1, 0, 4096);
            engine.queue(w);
            assertEquals(-Errno.EBADF, run(engine, 1).get(0).result(), "a write on a read-only file");
            IoRequest r = new IoRequest();
            r.prepareRead(-1, iov(new int[] {4096}, null), 1, 0, 4096);
            engine.queue(r);
            assertEquals(-Errno.EBADF, run(engine, 1).get(0).result(), "no such file");
        }
    }

    @Test
    void aFullDeviceFailsWritesWithEnospc() throws Exception {
        int full = LibC.open("/dev/full", LibC.O_WRONLY | LibC.O_CLOEXEC, 0);
        fds.add(full);
        for (IoEngineKind kind : new IoEngineKind[] {IoEngineKind.IO_URING, IoEngineKind.THREADS}) {
            try (IoEngine engine = kind.open(CAPACITY, full, "test")) {
                IoRequest w = new IoRequest();
                w.prepareWrite(full, iov(new int[] {4096}, new byte[4096]), 1, 0, 4096);
                engine.queue(w);
                assertEquals(-28, run(engine, 1).get(0).result(), kind + ": ENOSPC");
            }
        }
    }

    @Test
    void retriesAndShortTransfersAreResubmittedNotReported() throws Exception {
        IoRequest r = new IoRequest();
        int[] layout = {4096, 4096};
        MemorySegment v = iov(layout, null);
        long second = v.get(ValueLayout.JAVA_LONG, 16);
        r.prepareRead(3, v, 2, 1000, 8192);
        assertFalse(r.answered(-Errno.EAGAIN), "EAGAIN is retried");
        assertFalse(r.answered(-Errno.EINTR), "EINTR is retried");
        assertFalse(r.answered(5000), "a short read goes on");
        assertEquals(1000 + 5000, r.nextOffset());
        assertEquals(1, r.iovCount(), "the first buffer is done");
        assertEquals(second + 904, NativeMemory.ALL.get(ValueLayout.JAVA_LONG, r.iovAddress()), "the rest of the second");
        assertEquals(8192 - 5000, NativeMemory.ALL.get(ValueLayout.JAVA_LONG, r.iovAddress() + 8), "what is left of it");
        assertTrue(r.answered(3192));
        assertEquals(0, r.result());
        IoRequest w = new IoRequest();
        w.prepareWrite(3, iov(layout, null), 2, 0, 8192);
        assertTrue(w.answered(0), "a write that moves nothing ends");
        assertEquals(-Errno.ENOSPC, w.result());
        IoRequest e = new IoRequest();
        e.prepareDatasync(3);
        assertTrue(e.answered(-Errno.EIO));
        assertEquals(-Errno.EIO, e.result());
    }

    @Test
    void aRingTheKernelRefusesFallsBackToThreads() {
        // io_uring takes at most 32768 entries: the kernel refuses this ring, and the queue still gets an engine
        try (IoEngine engine = IoEngineKind.IO_URING.open(65536, -1, "test")) {
            assertInstanceOf(ThreadPoolEngine.class, engine);
            assertEquals("threads", engine.name());
        }
    }
}

package dev.vhostappliance.bench;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;

/** libblkio (1.5) through java.lang.foreign: just what the load generator needs. */
final class Libblkio {
    /** struct blkio_mem_region: addr, len, iova, fd_offset, fd, flags. */
    static final long MEM_REGION_SIZE = 40;
    /** struct blkio_completion: user_data, error_msg, ret, reserved[12]. */
    static final long COMPLETION_SIZE = 32;

    private final MethodHandle create;
    private final MethodHandle connect;
    private final MethodHandle start;
    private final MethodHandle destroy;
    private final MethodHandle setStr;
    private final MethodHandle setInt;
    private final MethodHandle getUint64;
    private final MethodHandle allocMemRegion;
    private final MethodHandle mapMemRegion;
    private final MethodHandle getQueue;
    private final MethodHandle read;
    private final MethodHandle write;
    private final MethodHandle doIo;
    private final MethodHandle errorMsg;

    Libblkio(Path library) {
        Linker l = Linker.nativeLinker();
        SymbolLookup lib = SymbolLookup.libraryLookup(library, Arena.global());
        create = l.downcallHandle(lib.findOrThrow("blkio_create"), FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        connect = l.downcallHandle(lib.findOrThrow("blkio_connect"), FunctionDescriptor.of(JAVA_INT, ADDRESS));
        start = l.downcallHandle(lib.findOrThrow("blkio_start"), FunctionDescriptor.of(JAVA_INT, ADDRESS));
        destroy = l.downcallHandle(lib.findOrThrow("blkio_destroy"), FunctionDescriptor.ofVoid(ADDRESS));
        setStr = l.downcallHandle(lib.findOrThrow("blkio_set_str"), FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        setInt = l.downcallHandle(lib.findOrThrow("blkio_set_int"), FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
        getUint64 = l.downcallHandle(lib.findOrThrow("blkio_get_uint64"), FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        allocMemRegion = l.downcallHandle(lib.findOrThrow("blkio_alloc_mem_region"),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG));
        mapMemRegion = l.downcallHandle(lib.findOrThrow("blkio_map_mem_region"), FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        getQueue = l.downcallHandle(lib.findOrThrow("blkio_get_queue"), FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_INT));
        read = l.downcallHandle(lib.findOrThrow("blkioq_read"),
                FunctionDescriptor.ofVoid(ADDRESS, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS, JAVA_INT));
        write = l.downcallHandle(lib.findOrThrow("blkioq_write"),
                FunctionDescriptor.ofVoid(ADDRESS, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS, JAVA_INT));
        doIo = l.downcallHandle(lib.findOrThrow("blkioq_do_io"),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS));
        errorMsg = l.downcallHandle(lib.findOrThrow("blkio_get_error_msg"), FunctionDescriptor.of(ADDRESS));
    }

    private String error() throws Throwable {
        MemorySegment p = (MemorySegment) errorMsg.invokeExact();
        return p.equals(MemorySegment.NULL) ? "?" : p.reinterpret(4096).getString(0);
    }

    private void check(String call, int rc) throws Throwable {
        if (rc < 0) {
            throw new IllegalStateException(call + ": " + rc + " " + error());
        }
    }

    /** A connected, started virtio-blk-vhost-user instance with num queues and one mapped memory region. */
    final class Device implements AutoCloseable {
        final MemorySegment blkio;
        final MemorySegment buffers;
        final long capacity;
        private final Arena arena = Arena.ofShared();

        Device(String socket, int queues, long bufferBytes) throws Throwable {
            MemorySegment bp = arena.allocate(ADDRESS);
            check("blkio_create", (int) create.invokeExact(arena.allocateFrom("virtio-blk-vhost-user"), bp));
            blkio = bp.get(ADDRESS, 0);
            check("set path", (int) setStr.invokeExact(blkio, arena.allocateFrom("path"), arena.allocateFrom(socket)));
            check("blkio_connect", (int) connect.invokeExact(blkio));
            check("set num-queues", (int) setInt.invokeExact(blkio, arena.allocateFrom("num-queues"), queues));
            check("blkio_start", (int) start.invokeExact(blkio));
            MemorySegment cap = arena.allocate(JAVA_LONG);
            check("get capacity", (int) getUint64.invokeExact(blkio, arena.allocateFrom("capacity"), cap));
            capacity = cap.get(JAVA_LONG, 0);
            MemorySegment align = arena.allocate(JAVA_LONG);
            check("get mem-region-alignment", (int) getUint64.invokeExact(blkio, arena.allocateFrom("mem-region-alignment"), align));
            long a = Math.max(4096, align.get(JAVA_LONG, 0));
            long len = (bufferBytes + a - 1) / a * a;
            MemorySegment region = arena.allocate(MEM_REGION_SIZE, 8);
            check("blkio_alloc_mem_region", (int) allocMemRegion.invokeExact(blkio, region, len));
            check("blkio_map_mem_region", (int) mapMemRegion.invokeExact(blkio, region));
            buffers = region.get(ADDRESS, 0).reinterpret(len);
        }

        MemorySegment queue(int index) throws Throwable {
            return (MemorySegment) getQueue.invokeExact(blkio, index);
        }

        @Override
        public void close() throws Exception {
            try {
                MemorySegment bp = arena.allocate(ADDRESS);
                bp.set(ADDRESS, 0, blkio);
                destroy.invokeExact(bp);
            } catch (Throwable t) {
                throw new Exception(t);
            }
            arena.close();
        }
    }

    void submitRead(MemorySegment q, long offset, MemorySegment buf, long len, long userData) throws Throwable {
        read.invokeExact(q, offset, buf, len, MemorySegment.ofAddress(userData), 0);
    }

    void submitWrite(MemorySegment q, long offset, MemorySegment buf, long len, long userData) throws Throwable {
        write.invokeExact(q, offset, buf, len, MemorySegment.ofAddress(userData), 0);
    }

    /** Waits for at least min completions; returns how many were written into completions. */
    int doIo(MemorySegment q, MemorySegment completions, int min, int max) throws Throwable {
        return (int) doIo.invokeExact(q, completions, min, max, MemorySegment.NULL);
    }

    static long completionUserData(MemorySegment completions, int i) {
        return completions.get(ValueLayout.JAVA_LONG, COMPLETION_SIZE * i);
    }

    static int completionRet(MemorySegment completions, int i) {
        return completions.get(ValueLayout.JAVA_INT, COMPLETION_SIZE * i + 16);
    }
}

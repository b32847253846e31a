package dev.vhostappliance.block.qcow2;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * Inflates one compressed cluster into exactly one cluster of data, with the image's compression type:
 * zlib (raw deflate, {@code java.util.zip}) or zstd (the system's libzstd through FFM, loaded when the first
 * zstd image opens). The compressed bytes may be followed by garbage up to the sector's end (the format
 * says decompression stops when a cluster is produced); a stream that ends early, or does not finish its
 * frame within the cluster, is an error, never a short cluster. One per image; not thread-safe.
 */
abstract sealed class ClusterDecompressor {

    /** Decompresses src into all of dst; false if the data is not a valid cluster. */
    abstract boolean decompress(MemorySegment src, MemorySegment dst);

    abstract void close();

    static ClusterDecompressor of(int compressionType) throws Qcow2FormatException {
        return compressionType == 1 ? new Zstd() : new Zlib();
    }

    static final class Zlib extends ClusterDecompressor {
        private final Inflater inflater = new Inflater(true);

        @Override
        boolean decompress(MemorySegment src, MemorySegment dst) {
            inflater.reset();
            inflater.setInput(src.asByteBuffer());
            java.nio.ByteBuffer out = dst.asByteBuffer();
            try {
                while (out.hasRemaining()) {
                    int n = inflater.inflate(out);
                    if (n == 0 && (inflater.finished() || inflater.needsInput() || inflater.needsDictionary())) {
                        return false; // ended before a whole cluster
                    }
                }
                return true;
            } catch (DataFormatException e) {
                return false;
            }
        }

        @Override
        void close() {
            inflater.end();
        }
    }

    static final class Zstd extends ClusterDecompressor {
        private static final MethodHandle CREATE;
        private static final MethodHandle FREE;
        private static final MethodHandle RESET;
        private static final MethodHandle STREAM;
        private static final MethodHandle IS_ERROR;
        private static final String ERROR;

        static {
            MethodHandle create = null;
            MethodHandle free = null;
            MethodHandle reset = null;
            MethodHandle stream = null;
            MethodHandle isError = null;
            String error = null;
            try {
                SymbolLookup lib = SymbolLookup.libraryLookup("libzstd.so.1", Arena.global());
                Linker linker = Linker.nativeLinker();
                create = linker.downcallHandle(lib.findOrThrow("ZSTD_createDCtx"), FunctionDescriptor.of(ADDRESS));
                free = linker.downcallHandle(lib.findOrThrow("ZSTD_freeDCtx"), FunctionDescriptor.of(JAVA_LONG, ADDRESS));
                reset = linker.downcallHandle(lib.findOrThrow("ZSTD_DCtx_reset"), FunctionDescriptor.of(JAVA_LONG, ADDRESS, JAVA_INT));
                stream = linker.downcallHandle(lib.findOrThrow("ZSTD_decompressStream"),
                        FunctionDescriptor.of(JAVA_LONG, ADDRESS, ADDRESS, ADDRESS));
                isError = linker.downcallHandle(lib.findOrThrow("ZSTD_isError"), FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
            } catch (IllegalArgumentException | java.util.NoSuchElementException e) {
                error = "zstd-compressed images need libzstd.so.1 (" + e.getMessage() + ")";
            }
            CREATE = create;
            FREE = free;
            RESET = reset;
            STREAM = stream;
            IS_ERROR = isError;
            ERROR = error;
        }

        private static final long SESSION_ONLY = 1; // ZSTD_reset_session_only

        private final MemorySegment dctx;
        /** ZSTD_outBuffer and ZSTD_inBuffer: {pointer, size, pos} each. */
        private final MemorySegment buffers = Arena.ofAuto().allocate(48, 8);

        Zstd() throws Qcow2FormatException {
            if (ERROR != null) {
                throw new Qcow2FormatException(ERROR);
            }
            try {
                dctx = (MemorySegment) CREATE.invokeExact();
            } catch (Throwable t) {
                throw new IllegalStateException(t);
            }
            if (dctx.address() == 0) {
                throw new Qcow2FormatException("cannot create a zstd decompression context");
            }
        }

        @Override
        boolean decompress(MemorySegment src, MemorySegment dst) {
            try {
                long rc = (long) RESET.invokeExact(dctx, (int) SESSION_ONLY);
                if ((int) IS_ERROR.invokeExact(rc) != 0) {
                    return false;
                }
                MemorySegment out = buffers.asSlice(0, 24);
                MemorySegment in = buffers.asSlice(24, 24);
                out.set(JAVA_LONG, 0, dst.address());
                out.set(JAVA_LONG, 8, dst.byteSize());
                out.set(JAVA_LONG, 16, 0);
                in.set(JAVA_LONG, 0, src.address());
                in.set(JAVA_LONG, 8, src.byteSize());
                in.set(JAVA_LONG, 16, 0);
                long left = 1;
                while (out.get(JAVA_LONG, 16) < dst.byteSize()) {
                    long inBefore = in.get(JAVA_LONG, 16);
                    long outBefore = out.get(JAVA_LONG, 16);
                    left = (long) STREAM.invokeExact(dctx, out, in);
                    if ((int) IS_ERROR.invokeExact(left) != 0) {
                        return false;
                    }
                    if (in.get(JAVA_LONG, 16) <= inBefore && out.get(JAVA_LONG, 16) <= outBefore) {
                        return false; // no progress: the input ended before a whole cluster
                    }
                }
                return left == 0; // the frame ended exactly at the cluster's end
            } catch (Throwable t) {
                return false;
            }
        }

        @Override
        void close() {
            try {
                long ignored = (long) FREE.invokeExact(dctx);
            } catch (Throwable t) {
                // nothing to do: the context is gone either way
            }
        }
    }
}

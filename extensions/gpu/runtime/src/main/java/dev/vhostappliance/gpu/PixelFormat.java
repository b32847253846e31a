package dev.vhostappliance.gpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The virtio-gpu 2D formats, all four bytes a pixel, named by byte order in memory (B8G8R8X8: blue first).
 * The display wants x8r8g8b8 as a little-endian word, which is bytes B, G, R, X: each format knows where its
 * blue, green, red and alpha bytes sit, and converts a row to that order.
 */
public enum PixelFormat {
    B8G8R8A8(1, 0, 1, 2, 3),
    B8G8R8X8(2, 0, 1, 2, 3),
    A8R8G8B8(3, 3, 2, 1, 0),
    X8R8G8B8(4, 3, 2, 1, 0),
    R8G8B8A8(67, 2, 1, 0, 3),
    X8B8G8R8(68, 1, 2, 3, 0),
    A8B8G8R8(121, 1, 2, 3, 0),
    R8G8B8X8(134, 2, 1, 0, 3);

    public static final int BYTES_PER_PIXEL = 4;
    private static final ValueLayout.OfInt WORD = ValueLayout.JAVA_INT_UNALIGNED;

    final int code;
    private final int b;
    private final int g;
    private final int r;
    private final int a;

    PixelFormat(int code, int b, int g, int r, int a) {
        this.code = code;
        this.b = b;
        this.g = g;
        this.r = r;
        this.a = a;
    }

    /** The format of a virtio_gpu_formats code, or null. */
    public static PixelFormat of(int code) {
        for (PixelFormat f : values()) {
            if (f.code == code) {
                return f;
            }
        }
        return null;
    }

    /** True when the memory layout already is B, G, R, X/A: rows are copied as they are. */
    boolean isNative() {
        return b == 0 && g == 1 && r == 2 && a == 3;
    }

    /** Copies pixels from src to dst as B, G, R, A bytes (alpha kept: the cursor needs it). */
    public void toBgra(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, int pixels) {
        if (isNative()) {
            MemorySegment.copy(src, srcOffset, dst, dstOffset, (long) pixels * BYTES_PER_PIXEL);
            return;
        }
        int sb = b * 8;
        int sg = g * 8;
        int sr = r * 8;
        int sa = a * 8;
        for (int i = 0; i < pixels; i++) {
            int p = src.get(WORD, srcOffset + 4L * i); // little-endian: byte k is bits 8k..8k+7
            int out = ((p >>> sb) & 0xff) | ((p >>> sg) & 0xff) << 8 | ((p >>> sr) & 0xff) << 16 | ((p >>> sa) & 0xff) << 24;
            dst.set(WORD, dstOffset + 4L * i, out);
        }
    }
}

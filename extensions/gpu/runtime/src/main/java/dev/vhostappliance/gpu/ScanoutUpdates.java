package dev.vhostappliance.gpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * How a RESOURCE_FLUSH reaches the frontend's display, for 2D resources and for 3D ones read back from the
 * renderer alike: the flushed rectangle clipped to each scanout's window, sent as VHOST_USER_GPU_UPDATE
 * messages ({scanout, x, y, width, height} then BGRA rows) in strips of at most {@link #CHUNK} pixel bytes.
 */
public final class ScanoutUpdates {
    /** UPDATE messages carry at most this many pixel bytes; larger flushes go as several strips. */
    public static final int CHUNK = 1 << 20;
    /** The UPDATE header: scanout, x, y, width, height. */
    public static final int HEADER = 20;
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Where a strip's pixels come from. */
    public interface PixelRows {
        /**
         * Writes rows [y, y + rows) of columns [x, x + w) as BGRA into dst from dstOffset on, w * 4 bytes per
         * row; false stops the update (the pixels could not be had).
         */
        boolean copyBgra(int x, int y, int w, int rows, MemorySegment dst, long dstOffset);
    }

    /** The display: sends one UPDATE message; false when it is gone. */
    public interface Sink {
        boolean update(MemorySegment message, long size);
    }

    private ScanoutUpdates() {
    }

    /**
     * The part of the flushed rectangle (x, y, w, h) that a scanout's window (sx, sy, sw, sh) shows, in the
     * resource's coordinates, as {x, y, w, h} in out; false if it shows none of it.
     */
    public static boolean visible(int x, int y, int w, int h, int sx, int sy, int sw, int sh, int[] out) {
        int x0 = Math.max(x, sx);
        int y0 = Math.max(y, sy);
        int x1 = Math.min(x + w, sx + sw);
        int y1 = Math.min(y + h, sy + sh);
        if (x1 <= x0 || y1 <= y0) {
            return false;
        }
        out[0] = x0;
        out[1] = y0;
        out[2] = x1 - x0;
        out[3] = y1 - y0;
        return true;
    }

    /**
     * Sends the rectangle (x, y, w, h) of a resource, shown at (dx, dy) of scanout, as UPDATE messages built in
     * message ({@link #HEADER} + {@link #CHUNK} bytes). Returns the pixel bytes sent.
     */
    public static long send(int scanout, int x, int y, int w, int h, int dx, int dy, PixelRows pixels,
            MemorySegment message, Sink sink) {
        long rowBytes = (long) w * PixelFormat.BYTES_PER_PIXEL;
        int rowsPerStrip = (int) Math.max(1, CHUNK / rowBytes);
        long sent = 0;
        for (int row = 0; row < h; row += rowsPerStrip) {
            int rows = Math.min(rowsPerStrip, h - row);
            message.set(U32, 0, scanout);
            message.set(U32, 4, dx);
            message.set(U32, 8, dy + row);
            message.set(U32, 12, w);
            message.set(U32, 16, rows);
            if (!pixels.copyBgra(x, y + row, w, rows, message, HEADER)
                    || !sink.update(message, HEADER + rows * rowBytes)) {
                break;
            }
            sent += rows * rowBytes;
        }
        return sent;
    }
}

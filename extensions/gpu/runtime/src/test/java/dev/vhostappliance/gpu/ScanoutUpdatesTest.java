package dev.vhostappliance.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class ScanoutUpdatesTest {
    @Test
    void aFlushIsClippedToWhatTheScanoutShows() {
        int[] out = new int[4];
        assertTrue(ScanoutUpdates.visible(0, 0, 100, 100, 20, 30, 50, 10, out));
        assertArrayEquals(new int[] {20, 30, 50, 10}, out);
        assertTrue(ScanoutUpdates.visible(60, 35, 100, 100, 20, 30, 50, 10, out));
        assertArrayEquals(new int[] {60, 35, 10, 5}, out);
        assertFalse(ScanoutUpdates.visible(70, 0, 10, 100, 20, 30, 50, 10, out), "right of the window");
        assertFalse(ScanoutUpdates.visible(0, 40, 100, 5, 20, 30, 50, 10, out), "below the window");
    }

    /** A rectangle larger than one message goes as strips, each with its own rows and position, in order. */
    @Test
    void largeRectanglesGoAsStripsOfAtMostOneChunk() {
        int w = 1000;
        int h = 700; // 2.8 MB of pixels: two strips of 262 rows (1 MiB / 4000 bytes) and one of 176
        List<int[]> headers = new ArrayList<>();
        MemorySegment message = Arena.ofAuto().allocate(ScanoutUpdates.HEADER + ScanoutUpdates.CHUNK, 8);
        long sent = ScanoutUpdates.send(1, 5, 7, w, h, 2, 3, (x, y, width, rows, dst, off) -> {
            for (int k = 0; k < rows; k++) {
                dst.set(ValueLayout.JAVA_INT_UNALIGNED, off + (long) k * width * 4, y + k); // first pixel = source row
            }
            return true;
        }, message, (m, size) -> {
            int rows = m.get(ValueLayout.JAVA_INT_UNALIGNED, 16);
            assertEquals(ScanoutUpdates.HEADER + (long) rows * w * 4, size);
            assertTrue(size - ScanoutUpdates.HEADER <= ScanoutUpdates.CHUNK);
            int dy = m.get(ValueLayout.JAVA_INT_UNALIGNED, 8);
            assertEquals(7 + dy - 3, m.get(ValueLayout.JAVA_INT_UNALIGNED, ScanoutUpdates.HEADER), "row dy shows source row");
            headers.add(new int[] {m.get(ValueLayout.JAVA_INT_UNALIGNED, 0), m.get(ValueLayout.JAVA_INT_UNALIGNED, 4), dy,
                m.get(ValueLayout.JAVA_INT_UNALIGNED, 12), rows});
            return true;
        });
        assertEquals((long) w * h * 4, sent);
        assertEquals(3, headers.size());
        assertArrayEquals(new int[] {1, 2, 3, w, 262}, headers.get(0));
        assertArrayEquals(new int[] {1, 2, 3 + 2 * 262, w, 700 - 2 * 262}, headers.get(2));
    }

    @Test
    void aStripThatCannotBeReadOrSentEndsTheUpdate() {
        MemorySegment message = Arena.ofAuto().allocate(ScanoutUpdates.HEADER + ScanoutUpdates.CHUNK, 8);
        int[] sends = new int[1];
        assertEquals(0, ScanoutUpdates.send(0, 0, 0, 1000, 700, 0, 0, (x, y, w, rows, dst, off) -> false, message,
                (m, size) -> ++sends[0] > 0));
        assertEquals(0, sends[0], "nothing is sent without pixels");
        assertEquals(262L * 1000 * 4, ScanoutUpdates.send(0, 0, 0, 1000, 700, 0, 0, (x, y, w, rows, dst, off) -> true,
                message, (m, size) -> ++sends[0] == 1), "a display that goes away stops the strips");
        assertEquals(2, sends[0]);
    }
}

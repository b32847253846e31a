package dev.vhostappliance.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Each format's bytes land as B, G, R, A: the format names give the byte order in memory. */
class PixelFormatTest {

    @ParameterizedTest
    @EnumSource(PixelFormat.class)
    void everyFormatConvertsToBgra(PixelFormat f) {
        // one pixel: blue 0x11, green 0x22, red 0x33, alpha/x 0x44, laid out in the format's memory order
        String name = f.name(); // e.g. R8G8B8A8: R first
        byte[] mem = new byte[4];
        for (int i = 0; i < 4; i++) {
            mem[i] = switch (name.charAt(i * 2)) {
                case 'B' -> 0x11;
                case 'G' -> 0x22;
                case 'R' -> 0x33;
                default -> 0x44; // A or X
            };
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment src = a.allocate(8);
            MemorySegment dst = a.allocate(8);
            MemorySegment.copy(mem, 0, src, ValueLayout.JAVA_BYTE, 4, 4);
            f.toBgra(src, 4, dst, 4, 1);
            assertEquals(0x11, dst.get(ValueLayout.JAVA_BYTE, 4));
            assertEquals(0x22, dst.get(ValueLayout.JAVA_BYTE, 5));
            assertEquals(0x33, dst.get(ValueLayout.JAVA_BYTE, 6));
            assertEquals(0x44, dst.get(ValueLayout.JAVA_BYTE, 7));
            assertEquals(f, PixelFormat.of(f.code));
        }
        assertNull(PixelFormat.of(0));
    }
}

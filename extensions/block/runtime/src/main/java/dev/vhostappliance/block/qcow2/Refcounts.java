package dev.vhostappliance.block.qcow2;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Reading and writing one entry of a refcount block, for every width qcow2 allows (refcount_bits 1 to 64;
 * below 8 bits, bit 0 of a byte is the first entry's least significant bit).
 */
final class Refcounts {
    private static final ValueLayout.OfShort BE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    private final int order;
    private final int bits;
    /** The largest refcount an entry holds (all ones; -1 as unsigned for 64 bits). */
    final long max;

    Refcounts(int order) {
        this.order = order;
        this.bits = 1 << order;
        this.max = bits == 64 ? -1L : (1L << bits) - 1;
    }

    /** Entries in one refcount block of clusterSize bytes. */
    long entriesPerBlock(int clusterSize) {
        return (long) clusterSize * 8 / bits;
    }

    long get(MemorySegment block, long index) {
        return switch (bits) {
            case 64 -> block.get(Qcow2Header.BE_LONG, index * 8);
            case 32 -> Integer.toUnsignedLong(block.get(Qcow2Header.BE_INT, index * 4));
            case 16 -> Short.toUnsignedLong(block.get(BE_SHORT, index * 2));
            case 8 -> Byte.toUnsignedLong(block.get(ValueLayout.JAVA_BYTE, index));
            default -> {
                int perByte = 8 >> order;
                int shift = (int) (index % perByte) * bits;
                yield (block.get(ValueLayout.JAVA_BYTE, index / perByte) >> shift) & max;
            }
        };
    }

    void set(MemorySegment block, long index, long value) {
        switch (bits) {
            case 64 -> block.set(Qcow2Header.BE_LONG, index * 8, value);
            case 32 -> block.set(Qcow2Header.BE_INT, index * 4, (int) value);
            case 16 -> block.set(BE_SHORT, index * 2, (short) value);
            case 8 -> block.set(ValueLayout.JAVA_BYTE, index, (byte) value);
            default -> {
                int perByte = 8 >> order;
                int shift = (int) (index % perByte) * bits;
                long at = index / perByte;
                int b = block.get(ValueLayout.JAVA_BYTE, at);
                b = (int) ((b & ~(max << shift)) | ((value & max) << shift));
                block.set(ValueLayout.JAVA_BYTE, at, (byte) b);
            }
        }
    }
}

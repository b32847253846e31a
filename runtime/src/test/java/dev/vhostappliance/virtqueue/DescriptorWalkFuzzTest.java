package dev.vhostappliance.virtqueue;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.vhostappliance.memory.GuestMemory;
import dev.vhostappliance.testing.GuestRam;
import java.lang.foreign.MemorySegment;

/**
 * The descriptor-chain walker on rings the fuzzer writes: descriptor table (direct and indirect entries),
 * avail ring and index, feature flags. pop must return POPPED with every buffer inside guest memory, EMPTY
 * or BROKEN, and never throw.
 */
class DescriptorWalkFuzzTest {
    static final int SIZE = 16;
    static final long RAM = 1 << 16;
    static final GuestRam RAM_REGION;
    static final GuestMemory MEMORY;

    static {
        try {
            RAM_REGION = GuestRam.single(RAM);
            MEMORY = RAM_REGION.guestMemory();
        } catch (Exception e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    @FuzzTest(maxDuration = "60s")
    void walkingFuzzedRingsStaysInsideGuestMemory(FuzzedDataProvider data) {
        MemorySegment all = RAM_REGION.at(0, RAM);
        all.fill((byte) 0);
        boolean eventIdx = data.consumeBoolean();
        boolean indirect = data.consumeBoolean();
        byte[] desc = data.consumeBytes(16 * SIZE);
        byte[] avail = data.consumeBytes(4 + 2 * SIZE + 2);
        byte[] tables = data.consumeRemainingAsBytes(); // indirect tables and buffers at 0x4000
        MemorySegment.copy(desc, 0, all, java.lang.foreign.ValueLayout.JAVA_BYTE, 0x1000, desc.length);
        MemorySegment.copy(avail, 0, all, java.lang.foreign.ValueLayout.JAVA_BYTE, 0x2000, avail.length);
        MemorySegment.copy(tables, 0, all, java.lang.foreign.ValueLayout.JAVA_BYTE, 0x4000, Math.min(tables.length, 0x8000));
        SplitVirtqueue q = new SplitVirtqueue(0, SIZE, all.asSlice(0x1000, 16 * SIZE), all.asSlice(0x2000, 6 + 2 * SIZE),
                all.asSlice(0x3000, 6 + 8 * SIZE), MEMORY, 0, eventIdx, indirect, false, -1, -1, null);
        DescriptorChain chain = q.newChain();
        MemorySegment region = MEMORY.region(0).segment();
        for (int i = 0; i < 2 * SIZE; i++) {
            int r = q.pop(chain);
            if (r != Virtqueue.POPPED) {
                break;
            }
            for (int b = 0; b < chain.count(); b++) {
                assertTrue(chain.region(b) == region && chain.offset(b) >= 0 && chain.offset(b) + chain.length(b) <= RAM,
                        "buffer inside guest memory");
            }
            q.push(chain.head(), 0);
        }
        q.stop(0);
    }
}

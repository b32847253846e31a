package dev.vhostappliance.gpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.vhostappliance.memory.GuestMemory;
import dev.vhostappliance.testing.GuestRam;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Set;

/**
 * The virtio-gpu command decoder on command sequences the fuzzer writes (commands of 24..320 bytes; ids, sizes
 * and rectangles from a small set so that commands meet each other): every response is a known type, memory
 * stays within its limit, and nothing throws.
 */
class GpuCommandFuzzTest {
    static final GuestRam RAM;
    static final GuestMemory MEMORY;
    static final Set<Integer> RESPONSES = Set.of(VirtioGpu.RESP_OK_NODATA, VirtioGpu.RESP_OK_DISPLAY_INFO,
            VirtioGpu.RESP_OK_EDID, VirtioGpu.RESP_ERR_UNSPEC, VirtioGpu.RESP_ERR_OUT_OF_MEMORY,
            VirtioGpu.RESP_ERR_INVALID_SCANOUT_ID, VirtioGpu.RESP_ERR_INVALID_RESOURCE_ID, VirtioGpu.RESP_ERR_INVALID_PARAMETER);

    static {
        try {
            RAM = GuestRam.single(1 << 20);
            MEMORY = RAM.guestMemory();
        } catch (Exception e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    @FuzzTest(maxDuration = "60s")
    void anyCommandSequenceIsAnswered(FuzzedDataProvider data) {
        GpuCommands gpu = new GpuCommands(1 << 20);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment req = arena.allocate(512, 8);
            MemorySegment resp = arena.allocate(VirtioGpu.EDID_RESP_BYTES, 8);
            int[] types = {VirtioGpu.CMD_RESOURCE_CREATE_2D, VirtioGpu.CMD_RESOURCE_ATTACH_BACKING, VirtioGpu.CMD_TRANSFER_TO_HOST_2D,
                VirtioGpu.CMD_SET_SCANOUT, VirtioGpu.CMD_RESOURCE_FLUSH, VirtioGpu.CMD_RESOURCE_DETACH_BACKING,
                VirtioGpu.CMD_RESOURCE_UNREF, VirtioGpu.CMD_GET_EDID, VirtioGpu.CMD_GET_DISPLAY_INFO, VirtioGpu.CMD_UPDATE_CURSOR};
            int[] small = {0, 1, 2, 4, 16, 64, 100, 4096, -1, Integer.MAX_VALUE};
            for (int n = 0; n < 12 && data.remainingBytes() > 0; n++) {
                req.fill((byte) 0);
                int len = data.consumeInt(0, 320);
                req.set(ValueLayout.JAVA_INT_UNALIGNED, 0, data.pickValue(types));
                for (int off = 24; off + 4 <= len; off += 4) {
                    int v = data.consumeBoolean() ? data.pickValue(small) : data.consumeInt();
                    req.set(ValueLayout.JAVA_INT_UNALIGNED, off, v);
                }
                if (req.get(ValueLayout.JAVA_INT_UNALIGNED, 0) == VirtioGpu.CMD_UPDATE_CURSOR) {
                    gpu.cursor(req, len);
                    continue;
                }
                resp.fill((byte) 0);
                int respLen = gpu.control(req, len, resp, MEMORY);
                int type = resp.get(ValueLayout.JAVA_INT_UNALIGNED, 0);
                assertTrue(RESPONSES.contains(type), "response 0x" + Integer.toHexString(type));
                assertTrue(respLen >= VirtioGpu.HDR_BYTES && respLen <= VirtioGpu.EDID_RESP_BYTES);
                assertTrue(gpu.hostmem() <= 1 << 20, "within the memory limit");
            }
        } finally {
            gpu.close();
        }
    }
}

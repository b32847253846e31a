package dev.vhostappliance.gpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.vhostappliance.gpu.virgl.Virgl3dCommands;
import dev.vhostappliance.gpu.virgl.VirglRenderer;
import dev.vhostappliance.gpu.virgl.VirglTesting;
import dev.vhostappliance.memory.GuestMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;

/**
 * The 3D command set on sequences the fuzzer writes, run through virglrenderer (surfaceless, llvmpipe): ids,
 * sizes and boxes from a small set so that commands meet each other (a context, its resources, their backing),
 * command streams of plausible headers with fuzzed bodies. Every command gets a known response, nothing
 * throws, and the renderer survives: a crash in virglrenderer would end this JVM and fail the build.
 */
class Virgl3dCommandFuzzTest {
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED;
    static final Set<Integer> RESPONSES = Set.of(VirtioGpu.RESP_OK_NODATA, Virgl3dCommands.RESP_OK_CAPSET_INFO,
            Virgl3dCommands.RESP_OK_CAPSET, VirtioGpu.RESP_ERR_UNSPEC, VirtioGpu.RESP_ERR_OUT_OF_MEMORY,
            VirtioGpu.RESP_ERR_INVALID_SCANOUT_ID, VirtioGpu.RESP_ERR_INVALID_RESOURCE_ID,
            VirtioGpu.RESP_ERR_INVALID_PARAMETER);
    static final int[] TYPES = {Virgl3dCommands.CMD_CTX_CREATE, Virgl3dCommands.CMD_CTX_DESTROY,
        Virgl3dCommands.CMD_CTX_ATTACH_RESOURCE, Virgl3dCommands.CMD_CTX_DETACH_RESOURCE,
        Virgl3dCommands.CMD_RESOURCE_CREATE_3D, Virgl3dCommands.CMD_TRANSFER_TO_HOST_3D,
        Virgl3dCommands.CMD_TRANSFER_FROM_HOST_3D, Virgl3dCommands.CMD_SUBMIT_3D, VirtioGpu.CMD_RESOURCE_CREATE_2D,
        VirtioGpu.CMD_RESOURCE_ATTACH_BACKING, VirtioGpu.CMD_RESOURCE_DETACH_BACKING, VirtioGpu.CMD_RESOURCE_UNREF,
        VirtioGpu.CMD_TRANSFER_TO_HOST_2D, VirtioGpu.CMD_SET_SCANOUT, VirtioGpu.CMD_RESOURCE_FLUSH,
        VirtioGpu.CMD_GET_CAPSET_INFO, VirtioGpu.CMD_GET_CAPSET};
    /** Values that mean something: ids 0..3, formats/targets/binds, sizes, offsets, overflow edges. */
    static final int[] SMALL = {0, 1, 2, 3, 4, 8, 16, 64, 100, 4096, 1 << 20, -1, Integer.MAX_VALUE, Integer.MIN_VALUE};
    /** virgl command stream opcodes (virgl_protocol.h: create/bind/destroy object, framebuffer, clear, draw...). */
    static final int[] OPCODES = {1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21};

    /** 1 MiB of guest memory, the 2D fuzz target's. */
    static final GuestMemory MEMORY = GpuCommandFuzzTest.MEMORY;
    /** Shared: the commands run on the renderer's thread. */
    static final MemorySegment REQ = Arena.ofAuto().allocate(1024, 8);
    static final MemorySegment RESP = Arena.ofAuto().allocate(VirtioGpu.HDR_BYTES + 4096, 8);
    static VirglRenderer renderer;
    static Virgl3dCommands virgl;

    @AfterAll
    static void stop() {
        if (renderer != null) {
            renderer.call(() -> {
                virgl.reset();
                return null;
            });
            renderer.close();
            renderer = null;
        }
    }

    @FuzzTest(maxDuration = "60s")
    void anyCommandSequenceIsAnsweredAndTheRendererSurvives(FuzzedDataProvider data) {
        if (renderer == null) {
            renderer = VirglTesting.startOrSkip();
            virgl = new Virgl3dCommands(renderer, 4 << 20);
        }
        try {
            for (int n = 0; n < 16 && data.remainingBytes() > 0; n++) {
                REQ.fill((byte) 0);
                int type = data.pickValue(TYPES);
                int len = data.consumeInt(0, 1024);
                REQ.set(U32, 0, type);
                REQ.set(U32, 16, data.consumeInt(0, 3)); // ctx_id
                int off = 24;
                if (type == Virgl3dCommands.CMD_SUBMIT_3D && len >= 32) {
                    REQ.set(U32, 24, data.consumeBoolean() ? len - 32 : data.pickValue(SMALL)); // stream size
                    off = 32;
                }
                while (off + 4 <= len) {
                    int v;
                    if (type == Virgl3dCommands.CMD_SUBMIT_3D && data.consumeBoolean()) {
                        // a command header: opcode, object type, length in dwords
                        v = data.pickValue(OPCODES) | data.consumeInt(0, 31) << 8 | data.consumeInt(0, 40) << 16;
                    } else {
                        v = data.consumeBoolean() ? data.pickValue(SMALL) : data.consumeInt();
                    }
                    REQ.set(U32, off, v);
                    off += 4;
                }
                RESP.fill((byte) 0);
                int reqLen = len;
                int respLen = renderer.call(() -> virgl.control(REQ, reqLen, RESP, MEMORY));
                int status = RESP.get(U32, 0);
                assertTrue(respLen >= VirtioGpu.HDR_BYTES && respLen <= RESP.byteSize(), "response length " + respLen);
                assertTrue(RESPONSES.contains(status), "response 0x" + Integer.toHexString(status));
            }
        } finally {
            renderer.call(() -> {
                virgl.reset();
                return null;
            });
        }
    }
}

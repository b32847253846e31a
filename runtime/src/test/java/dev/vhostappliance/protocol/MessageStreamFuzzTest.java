package dev.vhostappliance.protocol;

import static org.junit.jupiter.api.Assertions.assertNull;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.vhostappliance.testing.EchoDevice;
import dev.vhostappliance.testing.TestFrontend;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The vhost-user message decoder on byte streams the fuzzer writes (a valid GET_FEATURES first, so the
 * backend is past its greeting state): the backend answers, refuses or hangs up, and never fails with an
 * exception of its own.
 */
class MessageStreamFuzzTest {

    @FuzzTest(maxDuration = "60s")
    void anyByteStreamIsHandledWithoutFailure(FuzzedDataProvider data) throws Exception {
        byte[] bytes = data.consumeRemainingAsBytes();
        TestFrontend fe = TestFrontend.connect(new EchoDevice(2));
        try (Arena arena = Arena.ofConfined()) {
            fe.getU64(VhostUserRequest.GET_FEATURES);
            if (bytes.length > 0) {
                MemorySegment m = arena.allocate(bytes.length);
                MemorySegment.copy(bytes, 0, m, ValueLayout.JAVA_BYTE, 0, bytes.length);
                fe.sendRaw(m);
            }
        } finally {
            fe.close(); // waits for the backend thread
        }
        assertNull(fe.backendFailure(), "backend failed on its own");
    }
}

package dev.vhostappliance.protocol;

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
 * exception of its own. Finding 1 (src/test/resources/.../truncated-header, a 1-byte stream): the oracle
 * first counted the ProtocolException that ends a session cut inside a header as a failure; it is the
 * intended refusal, kept as a regression input. Finding 2 (reply-to-a-closed-frontend): the same for the
 * EPIPE of a reply the frontend is no longer there to read.
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
        // A stream the frontend cuts short or garbles ends the session with a ProtocolException (logged; the
        // server goes on accepting): that is a refusal. Anything else escaping the backend is a bug.
        // So does a reply to a frontend that already hung up (EPIPE, ECONNRESET).
        Throwable t = fe.backendFailure();
        boolean hungUp = t instanceof dev.vhostappliance.libc.NativeCallException n
                && (n.errno() == dev.vhostappliance.libc.Errno.EPIPE || n.errno() == dev.vhostappliance.libc.Errno.ECONNRESET);
        if (t != null && !(t instanceof ProtocolException) && !hungUp) {
            throw new AssertionError("backend failed on its own: " + t, t);
        }
    }
}

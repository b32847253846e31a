package dev.vhostappliance.qmp;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.databind.node.ObjectNode;

/** Any QMP input gets a well-formed answer: a return or an error object, never an exception. */
class QmpInputFuzzTest {
    private static final QmpMonitor MONITOR = new QmpMonitor(() -> { });

    static {
        MONITOR.register("echo", args -> args);
        MONITOR.register("fails", args -> {
            throw new QmpException("no");
        });
    }

    @FuzzTest(maxDuration = "60s")
    void anyInputIsAnsweredWithReturnOrError(FuzzedDataProvider data) {
        boolean[] mode = {data.consumeBoolean()};
        ObjectNode r = MONITOR.handle(data.consumeRemainingAsString(), mode);
        assertTrue(r.has("return") ^ r.has("error"), r.toString());
        if (r.has("error")) {
            assertTrue(r.get("error").has("class") && r.get("error").has("desc"), r.toString());
        }
    }
}

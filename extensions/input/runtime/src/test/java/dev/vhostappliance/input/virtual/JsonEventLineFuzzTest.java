package dev.vhostappliance.input.virtual;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;

/** Event socket lines: parsed into events or refused with IllegalArgumentException, nothing else. */
class JsonEventLineFuzzTest {

    @FuzzTest(maxDuration = "60s")
    void linesParseOrAreRefused(FuzzedDataProvider data) {
        try {
            JsonEventLine.parse(data.consumeRemainingAsString(), (t, c, v) -> {
                if (t < 0 || t > 0x1f || c < 0 || c > 0xffff) {
                    throw new AssertionError("event out of range: " + t + " " + c);
                }
            });
        } catch (IllegalArgumentException expected) {
            // refused with a reason
        }
    }
}

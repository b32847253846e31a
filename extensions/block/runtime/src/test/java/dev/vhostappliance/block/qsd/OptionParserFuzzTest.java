package dev.vhostappliance.block.qsd;

import dev.vhostappliance.block.graph.OptionReader;
import dev.vhostappliance.block.graph.OptionException;
import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import java.util.Map;

/** The qemu-storage-daemon option parser (keyval and JSON) and reader: an OptionException or a result, nothing else. */
class OptionParserFuzzTest {

    @FuzzTest(maxDuration = "60s")
    void optionsParseOrFailWithOneSentence(FuzzedDataProvider data) {
        String implied = data.pickValue(new String[] {"type", "qom-type", "backend", "chardev", ""});
        String key = data.consumeString(16);
        try {
            Map<String, Object> tree = KeyValue.parse(data.consumeRemainingAsString(), implied.isEmpty() ? null : implied);
            OptionReader r = new OptionReader(tree);
            r.string(key, null);
            r.bool(key, false);
            r.integer(key, 0, Long.MIN_VALUE, Long.MAX_VALUE);
            r.size(key, 0);
            r.child(key);
            r.finish();
        } catch (OptionException expected) {
            if (expected.getMessage() == null || expected.getMessage().isEmpty()) {
                throw new AssertionError("an error without a message");
            }
        }
    }
}

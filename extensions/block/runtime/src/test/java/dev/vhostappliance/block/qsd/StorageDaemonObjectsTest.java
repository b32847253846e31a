package dev.vhostappliance.block.qsd;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** --object ids, as QEMU's: one id space for objects of every kind. */
class StorageDaemonObjectsTest {

    private static List<String> errors(Map<String, Map<String, Object>> objects) {
        List<String> errors = new ArrayList<>();
        StorageDaemon.fromTrees(new StorageDaemon.Trees(objects, Map.of(), Map.of(), Map.of()), "object.", "blockdev.",
                "nbd-server.", "export.", errors);
        return errors;
    }

    private static Map<String, Map<String, Object>> objects(Map<String, Object> first, Map<String, Object> second) {
        Map<String, Map<String, Object>> m = new LinkedHashMap<>();
        m.put("a", first);
        m.put("b", second);
        return m;
    }

    @Test
    void anIdTakenByAnotherKindOfObjectIsRefused() {
        Map<String, Object> iothread = Map.of("qom-type", "iothread");
        Map<String, Object> authz = Map.of("qom-type", "authz-simple", "identity", "CN=client");
        assertEquals(List.of("object.b: attempt to add duplicate property 'a' to object"),
                errors(objects(iothread, Map.of("qom-type", "authz-simple", "id", "a", "identity", "CN=client"))));
        assertEquals(List.of("object.b: attempt to add duplicate property 'a' to object"),
                errors(objects(authz, Map.of("qom-type", "iothread", "id", "a"))));
        assertEquals(List.of("object.b: attempt to add duplicate property 'a' to object"),
                errors(objects(iothread, Map.of("qom-type", "iothread", "id", "a"))));
        assertEquals(List.of(), errors(objects(iothread, authz)));
    }
}

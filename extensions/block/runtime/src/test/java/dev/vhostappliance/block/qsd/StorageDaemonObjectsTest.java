package dev.vhostappliance.block.qsd;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** --object ids, as QEMU's: one id space for objects of every kind; secret objects and what names them. */
class StorageDaemonObjectsTest {

    private static List<String> errors(Map<String, Map<String, Object>> objects) {
        return errors(objects, Map.of());
    }

    private static List<String> errors(Map<String, Map<String, Object>> objects, Map<String, Map<String, Object>> blockdevs) {
        List<String> errors = new ArrayList<>();
        StorageDaemon d = StorageDaemon.fromTrees(new StorageDaemon.Trees(objects, blockdevs, Map.of(), Map.of()), "object.",
                "blockdev.", "nbd-server.", "export.", errors);
        d.shutdown();
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

    @Test
    void secretsAreCheckedAndShareTheIdSpace() throws Exception {
        java.nio.file.Path file = java.nio.file.Files.createTempFile("secret", ".key");
        try {
            java.nio.file.Files.writeString(file, "AQBzTRRnAAAAABAAQ0bQu/PKkA8Ffq0pGOwvqw==\n");
            assertEquals(List.of(), errors(objects(Map.of("qom-type", "secret", "data", "a-key"),
                    Map.of("qom-type", "secret", "file", file.toString(), "format", "base64"))));
            assertEquals(List.of("object.b: attempt to add duplicate property 'a' to object"),
                    errors(objects(Map.of("qom-type", "secret", "data", "x"), Map.of("qom-type", "iothread", "id", "a"))));
            assertEquals(List.of("object.a: secret 'a': exactly one of 'data' and 'file' must be given"),
                    errors(Map.of("a", Map.of("qom-type", "secret"))));
            assertEquals(List.of("object.a: secret 'a': exactly one of 'data' and 'file' must be given"),
                    errors(Map.of("a", Map.of("qom-type", "secret", "data", "x", "file", file.toString()))));
            assertEquals(List.of("object.a: secret 'a': encrypted secrets (keyid=, iv=) are not supported"),
                    errors(Map.of("a", Map.of("qom-type", "secret", "data", "x", "keyid", "master", "iv", "abc"))));
            String notBase64 = errors(Map.of("a", Map.of("qom-type", "secret", "data", "not base64!", "format", "base64"))).get(0);
            assertEquals(true, notBase64.startsWith("object.a: secret 'a': the value is not base64"), notBase64);
            assertEquals(true, errors(Map.of("a", Map.of("qom-type", "secret", "file", "/nonexistent/key"))).get(0)
                    .startsWith("object.a: secret 'a': cannot read '/nonexistent/key'"));
        } finally {
            java.nio.file.Files.deleteIfExists(file);
        }
    }

    /** rbd options that are wrong are refused before any cluster is asked. */
    @Test
    void rbdOptionsAreCheckedBeforeTheClusterIsAsked() {
        Map<String, Object> base = Map.of("driver", "rbd", "pool", "rbd", "image", "i");
        assertEquals(List.of("blockdev.d: Parameter 'image' is missing"),
                errors(Map.of(), Map.of("d", Map.of("driver", "rbd", "pool", "rbd"))));
        assertEquals(List.of("blockdev.d: No secret with id 'nokey'"),
                errors(Map.of(), Map.of("d", with(base, "key-secret", "nokey"))));
        assertEquals(List.of("blockdev.d: Parameter 'auth-client-required' does not accept value 'kerberos' (cephx, none)"),
                errors(Map.of(), Map.of("d", with(base, "auth-client-required", List.of("cephx", "kerberos")))));
        assertEquals(List.of("blockdev.d: Parameter 'encrypt' is not supported (LUKS-encrypted RBD images)"),
                errors(Map.of(), Map.of("d", with(base, "encrypt", Map.of("format", "luks")))));
        assertEquals(List.of("blockdev.d: Parameter 'server.0.port' is missing"),
                errors(Map.of(), Map.of("d", with(base, "server", Map.of("0", Map.of("host", "10.0.0.1"))))));
        assertEquals(List.of("blockdev.d: Invalid parameter 'cache.no-flush'"),
                errors(Map.of(), Map.of("d", with(base, "cache", Map.of("no-flush", "on")))));
    }

    private static Map<String, Object> with(Map<String, Object> base, String key, Object value) {
        Map<String, Object> m = new LinkedHashMap<>(base);
        m.put(key, value);
        return m;
    }
}

package dev.vhostappliance.block.qsd;

import dev.vhostappliance.block.graph.OptionReader;
import dev.vhostappliance.block.graph.OptionException;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class KeyValueTest {

    @Test
    void keyvalNestsDottedKeys() throws Exception {
        Map<String, Object> m = KeyValue.parse("type=vhost-user-blk,id=e0,addr.type=unix,addr.path=/run/a.sock,writable=on", null);
        assertEquals(Map.of("type", "unix", "path", "/run/a.sock"), m.get("addr"));
        assertEquals(List.of("type", "id", "addr", "writable"), List.copyOf(m.keySet()));
    }

    @Test
    void doubledCommaIsALiteralComma() throws Exception {
        assertEquals("/img/a,b.raw", KeyValue.parse("driver=file,filename=/img/a,,b.raw,node-name=d", null).get("filename"));
        assertEquals("1,", KeyValue.parse("a=1,,", null).get("a"));
    }

    @Test
    void impliedKeyOnlyForTheFirstElement() throws Exception {
        Map<String, Object> m = KeyValue.parse("iothread,id=io0", "qom-type");
        assertEquals("iothread", m.get("qom-type"));
        OptionException e = assertThrows(OptionException.class, () -> KeyValue.parse("id=io0,iothread", "qom-type"));
        assertEquals("Expected '=' after parameter 'iothread'", e.getMessage());
        assertThrows(OptionException.class, () -> KeyValue.parse("file,node-name=x", null));
    }

    @ParameterizedTest
    @ValueSource(strings = {"a=1,a=2", "a=1,a.b=2", "a.b=1,a=2", "=x", "a..b=1", ",a=1"})
    void malformedKeyvalIsRejected(String arg) {
        assertThrows(OptionException.class, () -> KeyValue.parse(arg, null), arg);
    }

    @Test
    void jsonKeepsItsTypes() throws Exception {
        Map<String, Object> m = KeyValue.parse("{\"driver\":\"null-co\",\"node-name\":\"n\",\"size\":1073741824,"
                + "\"read-zeroes\":true,\"file\":{\"driver\":\"file\"}}", null);
        OptionReader r = new OptionReader(m);
        assertEquals(1L << 30, r.size("size", 0));
        assertTrue(r.bool("read-zeroes", false));
        assertTrue(r.isObject("file"));
        assertThrows(OptionException.class, () -> KeyValue.parse("{\"driver\":", null));
        assertThrows(OptionException.class, () -> KeyValue.parse("[1,2]", null));
    }

    @Test
    void readerConvertsQemuValuesAndRejectsUnusedKeys() throws Exception {
        OptionReader r = new OptionReader(KeyValue.parse("a=on,b=off,c=yes,s=4k,t=2G,n=7,x=1", null));
        assertTrue(r.bool("a", false));
        assertFalse(r.bool("b", true));
        assertTrue(r.bool("c", false));
        assertEquals(4096, r.size("s", 0));
        assertEquals(2L << 30, r.size("t", 0));
        assertEquals(7, r.integer("n", 0, 1, 10));
        OptionException e = assertThrows(OptionException.class, r::finish);
        assertEquals("Invalid parameter 'x'", e.getMessage());
        assertThrows(OptionException.class, () -> new OptionReader(KeyValue.parse("a=maybe", null)).bool("a", false));
        assertThrows(OptionException.class, () -> new OptionReader(KeyValue.parse("n=11", null)).integer("n", 0, 1, 10));
        assertThrows(OptionException.class, () -> new OptionReader(KeyValue.parse("s=12q", null)).size("s", 0));
        assertThrows(OptionException.class, () -> new OptionReader(KeyValue.parse("s=-1", null)).size("s", 0));
    }

    @Test
    void splitAcceptsBothSpellingsAndRejectsWhatIsNotSupported() throws Exception {
        var opts = StorageDaemonMode.split(new String[] {"--blockdev", "driver=null-co,node-name=n", "--pidfile=/run/p",
            "--chardev", "socket,id=c,path=/q,server=on,wait=off", "--monitor=chardev=c", "--nbd-server", "addr.type=unix"});
        assertEquals(new StorageDaemonMode.Opt("--blockdev", "driver=null-co,node-name=n"), opts.get(0));
        assertEquals(new StorageDaemonMode.Opt("--pidfile", "/run/p"), opts.get(1));
        assertEquals(new StorageDaemonMode.Opt("--chardev", "socket,id=c,path=/q,server=on,wait=off"), opts.get(2));
        assertEquals(new StorageDaemonMode.Opt("--monitor", "chardev=c"), opts.get(3));
        assertEquals(new StorageDaemonMode.Opt("--nbd-server", "addr.type=unix"), opts.get(4));
        for (String[] bad : new String[][] {{"--daemonize"},
                {"--frobnicate"}, {"--blockdev"}, {"stray"}}) {
            assertThrows(OptionException.class, () -> StorageDaemonMode.split(bad), String.join(" ", bad));
        }
    }
}

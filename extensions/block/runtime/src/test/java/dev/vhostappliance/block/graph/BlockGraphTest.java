package dev.vhostappliance.block.graph;

import static dev.vhostappliance.block.Trees.tree;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostappliance.block.io.InlineEngine;
import dev.vhostappliance.block.io.IoEngineKind;
import dev.vhostappliance.block.io.IoRequest;
import dev.vhostappliance.block.io.NativeMemory;
import dev.vhostappliance.block.node.BlockNode;
import dev.vhostappliance.block.node.RawNode;
import dev.vhostappliance.libc.Errno;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Nodes from --blockdev trees: the aio= engines, raw windows, and the options refused. */
class BlockGraphTest {
    @TempDir
    Path dir;

    private final BlockGraph graph = new BlockGraph();

    @AfterEach
    void close() {
        graph.close();
    }

    private Path image(int size) throws Exception {
        Path p = dir.resolve("img-" + size);
        byte[] b = new byte[size];
        new Random(size).nextBytes(b);
        Files.write(p, b);
        return p;
    }


    private BlockNode add(Object... kv) throws OptionException {
        return graph.add(new OptionReader(tree(kv)));
    }

    @Test
    void aioChoosesTheEngineAndIoUringIsTheDefault() throws Exception {
        Path img = image(65536);
        assertEquals(IoEngineKind.IO_URING, add("node-name", "a", "driver", "file", "filename", img.toString(),
                "locking", "off").engineKind());
        assertEquals(IoEngineKind.THREADS, add("node-name", "t", "driver", "file", "filename", img.toString(),
                "locking", "off", "aio", "threads", "aio-max-batch", "16").engineKind());
        assertEquals(IoEngineKind.NATIVE, add("node-name", "n", "driver", "file", "filename", img.toString(),
                "locking", "off", "aio", "native", "cache", tree("direct", "on")).engineKind());
        assertEquals(IoEngineKind.INLINE, add("node-name", "z", "driver", "null-co").engineKind());
    }

    @Test
    void badAioOptionsAreRefusedWithQemusWords() throws Exception {
        Path img = image(65536);
        OptionException native_ = assertThrows(OptionException.class,
                () -> add("node-name", "n", "driver", "file", "filename", img.toString(), "aio", "native"));
        assertTrue(native_.getMessage().contains("requires cache.direct=on"), native_.getMessage());
        OptionException bad = assertThrows(OptionException.class,
                () -> add("node-name", "b", "driver", "file", "filename", img.toString(), "aio", "inline"));
        assertEquals("Parameter 'aio' does not accept value 'inline'", bad.getMessage());
        assertTrue(graph.isEmpty(), "nothing was added");
    }

    @Test
    void aRawWindowReadsItsPartOfTheFile() throws Exception {
        Path img = image(65536);
        byte[] file = Files.readAllBytes(img);
        add("node-name", "f", "driver", "file", "filename", img.toString());
        BlockNode win = add("node-name", "w", "driver", "raw", "file", "f", "offset", "8192", "size", "16384");
        assertEquals(16384, win.size());
        assertSame(graph.get("f"), add("node-name", "plain", "driver", "raw", "file", "f"), "raw without a window is the file");
        try (Arena arena = Arena.ofConfined(); InlineEngine io = new InlineEngine(4)) {
            MemorySegment buf = arena.allocate(4096, 4096);
            MemorySegment iov = arena.allocate(16, 8);
            iov.set(ValueLayout.JAVA_LONG, 0, buf.address());
            iov.set(ValueLayout.JAVA_LONG, 8, 4096);
            IoRequest r = new IoRequest();
            win.read(io, r, iov, 1, 4096, 4096);
            io.submit();
            assertEquals(1, io.reap(done -> { }));
            assertEquals(0, r.result());
            byte[] got = new byte[4096];
            MemorySegment.copy(NativeMemory.ALL, buf.address(), MemorySegment.ofArray(got), 0, 4096);
            assertArrayEquals(Arrays.copyOfRange(file, 8192 + 4096, 8192 + 8192), got, "window offset added");
        }
    }

    @Test
    void aReadOnlyRawViewRefusesWrites() throws Exception {
        Path img = image(65536);
        add("node-name", "f", "driver", "file", "filename", img.toString());
        BlockNode ro = add("node-name", "ro", "driver", "raw", "file", "f", "read-only", "on");
        assertTrue(ro instanceof RawNode && ro.readOnly());
        try (InlineEngine io = new InlineEngine(4)) {
            IoRequest r = new IoRequest();
            ro.write(io, r, MemorySegment.NULL, 0, 0, 512);
            io.reap(done -> { });
            assertEquals(-Errno.EPERM, r.result());
        }
    }

    @Test
    void rawWindowsOutsideTheFileOrUnalignedAreRefused() throws Exception {
        Path img = image(65536);
        add("node-name", "f", "driver", "file", "filename", img.toString());
        OptionException past = assertThrows(OptionException.class,
                () -> add("node-name", "w1", "driver", "raw", "file", "f", "offset", "61440", "size", "8192"));
        assertTrue(past.getMessage().contains("has to be smaller or equal to the actual size"), past.getMessage());
        OptionException unaligned = assertThrows(OptionException.class,
                () -> add("node-name", "w2", "driver", "raw", "file", "f", "offset", "100"));
        assertEquals("raw offset and size must be multiples of 512", unaligned.getMessage());
        assertEquals(1, graph.nodes().size());
    }
}

package dev.vhostappliance.block.qcow2;

import static dev.vhostappliance.block.Trees.tree;

import dev.vhostappliance.block.ExternalTools;
import dev.vhostappliance.block.graph.BlockGraph;
import dev.vhostappliance.block.graph.OptionException;
import dev.vhostappliance.block.graph.OptionReader;
import dev.vhostappliance.block.io.InlineEngine;
import dev.vhostappliance.block.io.IoRequest;
import dev.vhostappliance.block.node.BlockNode;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** QEMU's own tools as the referee (qemu-img, qemu-io), and a node driven the way an export drives it. */
final class QemuTools {
    private QemuTools() {
    }

    static boolean available() {
        return ExternalTools.available("qemu-img", "qemu-io");
    }

    static ExternalTools.Result exec(String... cmd) {
        return ExternalTools.exec(cmd);
    }

    /** Runs a command that must succeed; its output. */
    static String run(String... cmd) {
        return ExternalTools.run(cmd);
    }

    static void create(Path image, String options, long size) {
        List<String> cmd = new ArrayList<>(List.of("qemu-img", "create", "-q", "-f", "qcow2"));
        if (!options.isEmpty()) {
            cmd.add("-o");
            cmd.add(options);
        }
        cmd.add(image.toString());
        cmd.add(Long.toString(size));
        run(cmd.toArray(String[]::new));
    }

    /** qemu-io commands on an image (format qcow2 unless raw). */
    static void qemuIo(Path image, String format, String... commands) {
        List<String> cmd = new ArrayList<>(List.of("qemu-io", "-f", format));
        for (String c : commands) {
            cmd.add("-c");
            cmd.add(c);
        }
        cmd.add(image.toString());
        String out = run(cmd.toArray(String[]::new));
        if (out.contains("error") || out.contains("failed")) {
            throw new AssertionError("qemu-io: " + out);
        }
    }

    /** The guest's view of an image (its whole chain) as bytes, by qemu-img convert. */
    static byte[] guestView(Path image, Path scratchDir) throws IOException {
        Path raw = Files.createTempFile(scratchDir, "view", ".raw");
        run("qemu-img", "convert", "-O", "raw", image.toString(), raw.toString());
        byte[] bytes = Files.readAllBytes(raw);
        Files.delete(raw);
        return bytes;
    }

    /** qemu-img check's output; fails unless it found no errors and no leaks. */
    static String checkClean(Path image) {
        ExternalTools.Result r = exec("qemu-img", "check", image.toString());
        if (r.status() != 0 || !r.output().contains("No errors were found") || r.output().contains("leaked")) {
            throw new AssertionError("qemu-img check " + image + " (exit " + r.status() + "):\n" + r.output());
        }
        return r.output();
    }


    static BlockNode open(BlockGraph graph, Object... kv) throws OptionException {
        return graph.add(new OptionReader(tree(kv)));
    }

    /** A qcow2 node over a file, the qemu-storage-daemon way, with extra options. */
    static BlockNode openQcow2(BlockGraph graph, String name, Path image, Object... extra) throws OptionException {
        Map<String, Object> t = tree("node-name", name, "driver", "qcow2",
                "file", tree("driver", "file", "filename", image.toString()));
        for (int i = 0; i < extra.length; i += 2) {
            t.put((String) extra[i], extra[i + 1]);
        }
        return graph.add(new OptionReader(t));
    }

    /** Drives a node as one queue thread of an export does: a request, its engine, its buffers. */
    static final class Driver implements AutoCloseable {
        private final Arena arena = Arena.ofConfined();
        private final InlineEngine io = new InlineEngine(8);
        private final MemorySegment buf;
        private final MemorySegment iov;
        private final IoRequest r = new IoRequest();

        Driver(int maxBytes) {
            buf = arena.allocate(maxBytes, 4096);
            iov = arena.allocate(16 * 3, 8);
        }

        /** The buffer as three iovecs of uneven sizes (as guests scatter them). */
        private int iovecs(long length) {
            long a = Math.min(length, 512);
            long b = Math.min(length - a, Math.max(0, (length - a) / 2 / 512 * 512));
            long c = length - a - b;
            long[] sizes = {a, b, c};
            int n = 0;
            long at = buf.address();
            for (long s : sizes) {
                if (s > 0) {
                    iov.set(ValueLayout.JAVA_LONG, 16L * n, at);
                    iov.set(ValueLayout.JAVA_LONG, 16L * n + 8, s);
                    at += s;
                    n++;
                }
            }
            return n;
        }

        private int finish() {
            io.submit();
            while (io.inFlight() > 0) {
                io.reap(done -> { });
            }
            return r.result();
        }

        int read(BlockNode node, long offset, byte[] into) {
            int n = iovecs(into.length);
            node.read(io, r, iov, n, offset, into.length);
            int rc = finish();
            MemorySegment.copy(buf, ValueLayout.JAVA_BYTE, 0, into, 0, into.length);
            return rc;
        }

        int write(BlockNode node, long offset, byte[] data) {
            MemorySegment.copy(data, 0, buf, ValueLayout.JAVA_BYTE, 0, data.length);
            int n = iovecs(data.length);
            node.write(io, r, iov, n, offset, data.length);
            return finish();
        }

        int writeZeroes(BlockNode node, long offset, long length, boolean unmap) {
            node.writeZeroes(io, r, offset, length, unmap);
            return finish();
        }

        int discard(BlockNode node, long offset, long length) {
            node.discard(io, r, offset, length);
            return finish();
        }

        int flush(BlockNode node) {
            node.flush(io, r);
            return finish();
        }

        @Override
        public void close() {
            io.close();
            arena.close();
        }
    }
}

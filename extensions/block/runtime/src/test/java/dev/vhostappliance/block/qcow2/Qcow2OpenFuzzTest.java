package dev.vhostappliance.block.qcow2;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.vhostappliance.block.node.BlockNode;
import dev.vhostappliance.libc.Errno;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The qcow2 header, its extensions, the L1 and refcount tables and every L2 entry and compressed cluster a
 * read meets: an image made of fuzzed bytes opens with one sentence of why not, or opens and answers reads
 * and writes with data or -errno; nothing else, and never a write far outside the image.
 */
class Qcow2OpenFuzzTest {
    /** A real image (v3, 4 KiB clusters, some data) as the base the fuzzer mutates. */
    private static final byte[] SEED = seed();

    private static byte[] seed() {
        try {
            Path dir = Files.createTempDirectory("qcow2-fuzz");
            Path img = dir.resolve("seed.qcow2");
            if (!QemuTools.available()) {
                return new byte[0];
            }
            QemuTools.create(img, "cluster_size=4096,extended_l2=off", 1 << 20);
            QemuTools.qemuIo(img, "qcow2", "write -P 0x11 0 8k", "write -z 64k 4k", "write -c -P 0x22 128k 4k");
            byte[] bytes = Files.readAllBytes(img);
            Files.delete(img);
            Files.delete(dir);
            return bytes;
        } catch (Exception e) {
            return new byte[0];
        }
    }

    @FuzzTest(maxDuration = "60s")
    void hostileImagesAreRefusedOrAnsweredWithErrors(FuzzedDataProvider data) {
        byte[] image = SEED.length > 0 && data.consumeBoolean() ? SEED.clone() : data.consumeBytes(8192);
        int flips = data.consumeInt(0, 64);
        for (int i = 0; i < flips && image.length > 0; i++) {
            image[data.consumeInt(0, image.length - 1)] = data.consumeByte();
        }
        MemoryNode file = new MemoryNode(image, image.length + (80L << 20));
        Qcow2Image qcow2;
        try {
            qcow2 = Qcow2Image.open("fuzz", file, Qcow2Options.defaults(data.consumeBoolean()));
        } catch (Qcow2FormatException refused) {
            if (refused.getMessage() == null || refused.getMessage().isEmpty()) {
                throw new AssertionError("refused without a reason");
            }
            return;
        }
        BlockNode node = new Qcow2Node(qcow2);
        try (QemuTools.Driver d = new QemuTools.Driver(64 << 10)) {
            long size = Math.min(node.size(), 1L << 30);
            for (int i = 0; i < 8 && size >= 512; i++) {
                long offset = data.consumeLong(0, size / 512 - 1) * 512;
                int length = (int) Math.min(data.consumeInt(1, 128) * 512L, size - offset);
                int rc = switch (data.consumeInt(0, 3)) {
                    case 0 -> d.read(node, offset, new byte[length]);
                    case 1 -> d.write(node, offset, new byte[length]);
                    case 2 -> d.writeZeroes(node, offset, length, data.consumeBoolean());
                    default -> d.flush(node);
                };
                if (rc > 0 || rc < -Errno.ECONNREFUSED) {
                    throw new AssertionError("result " + rc);
                }
            }
        } finally {
            node.close();
        }
        if (file.writesPastLimit > 0) {
            throw new AssertionError("wrote far outside the image");
        }
    }
}

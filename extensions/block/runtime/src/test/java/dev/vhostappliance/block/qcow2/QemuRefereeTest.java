package dev.vhostappliance.block.qcow2;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.vhostappliance.block.graph.BlockGraph;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;

/** What the qcow2 tests share: QEMU's tools (skipped without them), a directory, a block graph closed after each. */
abstract class QemuRefereeTest {
    @TempDir
    Path dir;

    final BlockGraph graph = new BlockGraph();

    /** Skipped without qemu-img and qemu-io, except in CI (VHOST_E2E_REQUIRED=1), where that fails. */
    @BeforeAll
    static void qemuTools() {
        if ("1".equals(System.getenv("VHOST_E2E_REQUIRED"))) {
            assertTrue(QemuTools.available(), "qemu-img and qemu-io are needed");
        }
        assumeTrue(QemuTools.available(), "qemu-img and qemu-io are needed");
    }

    @AfterEach
    void closeGraph() {
        graph.close();
    }
}

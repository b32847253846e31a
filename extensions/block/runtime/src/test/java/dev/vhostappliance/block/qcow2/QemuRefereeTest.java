package dev.vhostappliance.block.qcow2;

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

    @BeforeAll
    static void qemuTools() {
        assumeTrue(QemuTools.available(), "qemu-img and qemu-io are needed");
    }

    @AfterEach
    void closeGraph() {
        graph.close();
    }
}

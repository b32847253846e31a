package dev.vhostappliance.gpu.virgl;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * virglrenderer in this process, surfaceless (Mesa's llvmpipe: no /dev/dri on these machines): it
 * initialises, answers the virgl capsets, makes and destroys contexts without growing, and retires fences in
 * order. Needs libvirglrenderer1 and Mesa's EGL; skipped without them, except in CI (VHOST_E2E_REQUIRED=1).
 */
class VirglRendererTest {
    private static VirglRenderer renderer;
    private static final List<Integer> fences = new ArrayList<>();

    @BeforeAll
    static void start() {
        renderer = VirglTesting.startOrSkip();
        renderer.onFence(f -> {
            synchronized (fences) {
                fences.add(f);
            }
        });
    }

    @AfterAll
    static void stop() {
        if (renderer != null) {
            renderer.close();
        }
    }

    @Test
    void answersTheVirglCapsets() {
        int[] v1 = renderer.capset(VirglRenderer.CAPSET_VIRGL);
        int[] v2 = renderer.capset(VirglRenderer.CAPSET_VIRGL2);
        assertTrue(v1[0] >= 1 && v1[1] > 0, "virgl capset: version " + v1[0] + ", " + v1[1] + " bytes");
        assertTrue(v2[0] >= 1 && v2[1] > v1[1], "virgl2 capset: version " + v2[0] + ", " + v2[1] + " bytes");
        assertArrayEquals(new int[] {0, 0}, renderer.capset(99), "a capset virglrenderer does not have");
        byte[] caps = renderer.fillCaps(VirglRenderer.CAPSET_VIRGL2, v2[0], v2[1]);
        assertEquals(v2[1], caps.length);
        // union virgl_caps starts with max_version; v1's glsl_level (offset 4 + 16*4 bytes of format masks...)
        // is not checked here, only that the renderer filled something in
        int maxVersion = ByteBuffer.wrap(caps).order(ByteOrder.LITTLE_ENDIAN).getInt(0);
        assertTrue(maxVersion >= 1, "caps max_version " + maxVersion);
    }

    @Test
    void contextsComeAndGoWithoutGrowing() throws Exception {
        for (int i = 1; i <= 50; i++) { // warm-up: the driver's one-time allocations
            assertEquals(0, renderer.createContext(i, "warm-up"));
            renderer.destroyContext(i);
        }
        long before = rssKiB();
        for (int i = 1; i <= 1000; i++) {
            assertEquals(0, renderer.createContext(i, "ctx" + i), "context " + i);
            renderer.destroyContext(i);
        }
        long grown = rssKiB() - before;
        assertTrue(grown < 32 * 1024, "1000 contexts made and destroyed grew the process by " + grown + " KiB");
    }

    @Test
    void fencesRetireInOrder() throws Exception {
        synchronized (fences) {
            fences.clear();
        }
        for (int f = 1; f <= 5; f++) {
            assertEquals(0, renderer.createFence(f, 0));
        }
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (System.nanoTime() < deadline) {
            renderer.poll();
            synchronized (fences) {
                if (fences.contains(5)) {
                    break;
                }
            }
            Thread.sleep(5);
        }
        synchronized (fences) {
            // virglrenderer names the newest fence retired: every fence up to it is done (QEMU retires its queue
            // up to that id); what it names never goes back
            assertEquals(5, fences.getLast(), "the last fence retired: " + fences);
            for (int i = 1; i < fences.size(); i++) {
                assertTrue(fences.get(i) >= fences.get(i - 1), "fences in order: " + fences);
            }
        }
    }

    @Test
    void oneRendererPerProcess() {
        VirglUnavailableException e = assertThrows(VirglUnavailableException.class, () -> VirglRenderer.start(null));
        assertTrue(e.getMessage().contains("already in use"), e.getMessage());
    }

    private static long rssKiB() throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        throw new AssertionError("no VmRSS");
    }
}

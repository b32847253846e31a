package dev.vhostappliance.gpu.virgl;

import org.junit.jupiter.api.Assumptions;

/** What the 3D tests share: the process's renderer, surfaceless; skipped without it, except in CI. */
public final class VirglTesting {
    private VirglTesting() {
    }

    /** A renderer (EGL surfaceless); the test is aborted without virglrenderer and failed in CI (VHOST_E2E_REQUIRED=1). */
    public static VirglRenderer startOrSkip() {
        try {
            return VirglRenderer.start(null);
        } catch (VirglUnavailableException e) {
            if ("1".equals(System.getenv("VHOST_E2E_REQUIRED"))) {
                throw new AssertionError("virglrenderer is needed in CI: " + e.getMessage());
            }
            Assumptions.abort("virglrenderer unavailable: " + e.getMessage());
            throw new IllegalStateException("unreachable");
        }
    }
}

package dev.vhostappliance.gpu.virgl;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

/**
 * Asks EGL for a surfaceless display before virglrenderer does: virglrenderer 0.10 dereferences a null
 * display when EGL has none (no vendor library, no Mesa), which kills the process instead of failing
 * {@code virgl_renderer_init}. Two calls of libEGL.so.1.
 */
final class EglProbe {
    private static final int EGL_PLATFORM_SURFACELESS_MESA = 0x31DD;

    private EglProbe() {
    }

    /** null when a surfaceless EGL display initialises here, else a sentence of why not. */
    static String surfaceless() {
        try (Arena arena = Arena.ofConfined()) {
            SymbolLookup egl;
            try {
                egl = SymbolLookup.libraryLookup("libEGL.so.1", Arena.global()); // never unloaded: Mesa's threads stay
            } catch (IllegalArgumentException e) {
                return "libEGL.so.1 cannot be loaded (Debian: apt-get install libegl1 libegl-mesa0)";
            }
            Linker linker = Linker.nativeLinker();
            MethodHandle getDisplay = linker.downcallHandle(egl.findOrThrow("eglGetPlatformDisplay"),
                    FunctionDescriptor.of(ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
            MethodHandle initialize = linker.downcallHandle(egl.findOrThrow("eglInitialize"),
                    FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
            MemorySegment display = (MemorySegment) getDisplay.invokeExact(EGL_PLATFORM_SURFACELESS_MESA, MemorySegment.NULL,
                    MemorySegment.NULL);
            if (display.address() == 0) {
                return "EGL has no surfaceless display here (is Mesa's libegl-mesa0 installed?)";
            }
            MemorySegment major = arena.allocate(JAVA_INT);
            MemorySegment minor = arena.allocate(JAVA_INT);
            if ((int) initialize.invokeExact(display, major, minor) == 0) {
                return "EGL's surfaceless display does not initialise (is Mesa's libegl-mesa0 installed?)";
            }
            return null; // left initialised: virglrenderer gets the same display and initialises it again
        } catch (Throwable t) {
            return "EGL cannot be asked: " + t.getMessage();
        }
    }
}

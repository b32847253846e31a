package dev.vhostappliance.gpu.virgl;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;

/**
 * libvirglrenderer.so.1 (virglrenderer 0.10, {@code virglrenderer.h}) over FFM, loaded when first used: the
 * 2D device never touches it, and a machine without it only loses 3D. Thin: one handle per C function, no
 * policy. Every call must come from the one thread that owns the renderer ({@link VirglRenderer}); the
 * library keeps global state and its GL context is current on that thread.
 */
final class VirglLibrary {
    static final String SONAME = "libvirglrenderer.so.1";

    /** virgl_renderer_init flags. */
    static final int USE_EGL = 1;
    static final int USE_SURFACELESS = 1 << 3;

    /** struct virgl_renderer_callbacks, version 2: {int version; write_fence; 3 GL callbacks; get_drm_fd}. */
    static final long CALLBACKS_BYTES = 8 + 5 * 8;

    final MethodHandle init;
    final MethodHandle cleanup;
    final MethodHandle poll;
    final MethodHandle getCapSet;
    final MethodHandle fillCaps;
    final MethodHandle contextCreate;
    final MethodHandle contextDestroy;
    final MethodHandle createFence;
    final MethodHandle resourceCreate;
    final MethodHandle resourceUnref;
    final MethodHandle attachIov;
    final MethodHandle detachIov;
    final MethodHandle ctxAttachResource;
    final MethodHandle ctxDetachResource;
    final MethodHandle submitCmd;
    final MethodHandle transferReadIov;
    final MethodHandle transferWriteIov;
    final MethodHandle getCursorData;
    /** libc's free, for what the library allocates for us (cursor data). */
    final MethodHandle free;

    private VirglLibrary(SymbolLookup lib) {
        Linker linker = Linker.nativeLinker();
        init = linker.downcallHandle(lib.findOrThrow("virgl_renderer_init"), FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS));
        cleanup = linker.downcallHandle(lib.findOrThrow("virgl_renderer_cleanup"), FunctionDescriptor.ofVoid(ADDRESS));
        poll = linker.downcallHandle(lib.findOrThrow("virgl_renderer_poll"), FunctionDescriptor.ofVoid());
        getCapSet = linker.downcallHandle(lib.findOrThrow("virgl_renderer_get_cap_set"),
                FunctionDescriptor.ofVoid(JAVA_INT, ADDRESS, ADDRESS));
        fillCaps = linker.downcallHandle(lib.findOrThrow("virgl_renderer_fill_caps"),
                FunctionDescriptor.ofVoid(JAVA_INT, JAVA_INT, ADDRESS));
        contextCreate = linker.downcallHandle(lib.findOrThrow("virgl_renderer_context_create"),
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
        contextDestroy = linker.downcallHandle(lib.findOrThrow("virgl_renderer_context_destroy"), FunctionDescriptor.ofVoid(JAVA_INT));
        createFence = linker.downcallHandle(lib.findOrThrow("virgl_renderer_create_fence"),
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
        resourceCreate = linker.downcallHandle(lib.findOrThrow("virgl_renderer_resource_create"),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
        resourceUnref = linker.downcallHandle(lib.findOrThrow("virgl_renderer_resource_unref"), FunctionDescriptor.ofVoid(JAVA_INT));
        attachIov = linker.downcallHandle(lib.findOrThrow("virgl_renderer_resource_attach_iov"),
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
        detachIov = linker.downcallHandle(lib.findOrThrow("virgl_renderer_resource_detach_iov"),
                FunctionDescriptor.ofVoid(JAVA_INT, ADDRESS, ADDRESS));
        ctxAttachResource = linker.downcallHandle(lib.findOrThrow("virgl_renderer_ctx_attach_resource"),
                FunctionDescriptor.ofVoid(JAVA_INT, JAVA_INT));
        ctxDetachResource = linker.downcallHandle(lib.findOrThrow("virgl_renderer_ctx_detach_resource"),
                FunctionDescriptor.ofVoid(JAVA_INT, JAVA_INT));
        submitCmd = linker.downcallHandle(lib.findOrThrow("virgl_renderer_submit_cmd"),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
        FunctionDescriptor transfer = FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                ADDRESS, JAVA_LONG, ADDRESS, JAVA_INT);
        transferReadIov = linker.downcallHandle(lib.findOrThrow("virgl_renderer_transfer_read_iov"), transfer);
        transferWriteIov = linker.downcallHandle(lib.findOrThrow("virgl_renderer_transfer_write_iov"), transfer);
        getCursorData = linker.downcallHandle(lib.findOrThrow("virgl_renderer_get_cursor_data"),
                FunctionDescriptor.of(ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
        free = linker.downcallHandle(linker.defaultLookup().findOrThrow("free"), FunctionDescriptor.ofVoid(ADDRESS));
    }

    private static volatile Object loaded;

    /** The library, or a sentence saying why it cannot be had (not installed, a symbol missing). */
    static VirglLibrary load() throws VirglUnavailableException {
        Object l = loaded;
        if (l == null) {
            synchronized (VirglLibrary.class) {
                l = loaded;
                if (l == null) {
                    try {
                        l = new VirglLibrary(SymbolLookup.libraryLookup(SONAME, Arena.global()));
                    } catch (IllegalArgumentException | java.util.NoSuchElementException e) {
                        l = SONAME + " cannot be loaded (Debian: apt-get install libvirglrenderer1): " + e.getMessage();
                    }
                    loaded = l;
                }
            }
        }
        if (l instanceof String why) {
            throw new VirglUnavailableException(why);
        }
        return (VirglLibrary) l;
    }

    /** An upcall stub for a static method of owner (a callback of the struct), alive for the process. */
    static MemorySegment upcall(Class<?> owner, String method, MethodType type, FunctionDescriptor descriptor) {
        try {
            MethodHandle target = MethodHandles.lookup().findStatic(owner, method, type);
            return Linker.nativeLinker().upcallStub(target, descriptor, Arena.global());
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(e);
        }
    }
}

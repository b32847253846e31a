package dev.vhostappliance.gpu.virgl;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import dev.vhostappliance.libc.LibC;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodType;
import java.nio.file.Path;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.function.IntConsumer;
import org.jboss.logging.Logger;

/**
 * The process's virglrenderer: initialised with EGL on a render node (GBM) when one is given, otherwise
 * surfaceless (Mesa's llvmpipe renders in software: no /dev/dri needed), and driven from one thread of its
 * own, which owns the GL context; every call goes through {@link #call}. virglrenderer keeps global state, so
 * there is at most one per process. Fences come back through {@code write_fence} on that thread, from
 * {@code virgl_renderer_poll}: the newest retired, never going back. While fences made by {@link #fenceHere}
 * are out, the thread polls for them every {@link #FENCE_POLL_MICROS} µs (QEMU's virtio-gpu-gl polls on a
 * 10 ms timer without virglrenderer's sync thread; a guest waiting on every frame's fence wants it sooner).
 */
public final class VirglRenderer implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(VirglRenderer.class);
    /** virtio-gpu capsets. */
    public static final int CAPSET_VIRGL = 1;
    public static final int CAPSET_VIRGL2 = 2;

    private static final Object ACTIVE_LOCK = new Object();
    /** The one renderer of the process (its callbacks find it here), or null. */
    private static VirglRenderer active;

    private final VirglLibrary lib;
    /** How often the renderer's thread looks for retired fences while some are out. */
    static final long FENCE_POLL_MICROS = 250;
    private final ScheduledThreadPoolExecutor thread;
    private final Arena arena = Arena.ofShared();
    private final Path renderNode;
    private volatile IntConsumer fenceListener = fence -> { };
    private boolean initialised;
    // the renderer's thread only: the newest fence made by fenceHere and retired, whether a poll is scheduled,
    // whether virgl_renderer_cleanup ran (a poll scheduled before must not call into the library after it)
    private int lastFence;
    private int retiredFence;
    private boolean pollScheduled;
    private boolean cleanedUp;
    private final Runnable pollFences = this::pollFences;
    /** virgl_renderer_init refuses a NULL cookie (-1 after building its GL context): this one is never read. */
    private final MemorySegment cookie = arena.allocate(8, 8);

    private VirglRenderer(VirglLibrary lib, Path renderNode) {
        this.lib = lib;
        this.renderNode = renderNode;
        this.thread = new ScheduledThreadPoolExecutor(1, r -> Thread.ofPlatform().name("virgl").daemon(true).unstarted(r));
        thread.setExecuteExistingDelayedTasksAfterShutdownPolicy(false);
    }

    /**
     * Loads the library and initialises it on its thread: on renderNode if not null, else surfaceless. A
     * sentence on failure (library missing, no EGL, another renderer in this process).
     */
    public static VirglRenderer start(Path renderNode) throws VirglUnavailableException {
        VirglLibrary lib = VirglLibrary.load();
        if (renderNode == null) {
            String why = EglProbe.surfaceless();
            if (why != null) {
                throw new VirglUnavailableException(why);
            }
        }
        synchronized (ACTIVE_LOCK) {
            if (active != null) {
                throw new VirglUnavailableException("virglrenderer is already in use in this process (one gpu device with --virgl)");
            }
            VirglRenderer r = new VirglRenderer(lib, renderNode);
            active = r;
            try {
                int rc = r.call(r::init);
                if (rc != 0) {
                    throw new VirglUnavailableException("virgl_renderer_init failed (" + rc + ") "
                            + (renderNode == null ? "with EGL surfaceless (is Mesa's libegl-mesa0 installed?)" : "on " + renderNode));
                }
                r.initialised = true;
                return r;
            } catch (VirglUnavailableException | RuntimeException e) {
                r.shutdown();
                throw e;
            }
        }
    }

    /** True if libvirglrenderer.so.1 loads in this process (not whether it can render: that is {@link #start}). */
    public static boolean libraryAvailable() {
        try {
            VirglLibrary.load();
            return true;
        } catch (VirglUnavailableException e) {
            return false;
        }
    }

    /** The first DRM render node of this host (/dev/dri/renderD128 and up), or null. */
    public static Path firstRenderNode() {
        for (int i = 128; i < 192; i++) {
            Path p = Path.of("/dev/dri/renderD" + i);
            if (java.nio.file.Files.exists(p)) {
                return p;
            }
        }
        return null;
    }

    private int init() throws Throwable {
        MemorySegment cbs = arena.allocate(VirglLibrary.CALLBACKS_BYTES, 8);
        cbs.set(JAVA_INT, 0, renderNode == null ? 1 : 2);
        cbs.set(ADDRESS, 8, Callbacks.WRITE_FENCE);
        // 16..40: the GL callbacks stay NULL: with USE_EGL virglrenderer makes its own contexts
        cbs.set(ADDRESS, 40, Callbacks.GET_DRM_FD);
        int flags = VirglLibrary.USE_EGL | (renderNode == null ? VirglLibrary.USE_SURFACELESS : 0);
        return (int) lib.init.invokeExact(cookie, flags, cbs);
    }

    /** The bindings, for code already on the renderer's thread (inside {@link #call}). */
    VirglLibrary library() {
        return lib;
    }

    /**
     * Where retired fences go, on the renderer's thread: each call names the newest fence retired, so every
     * fence up to it is done (virglrenderer does not name each one).
     */
    public void onFence(IntConsumer listener) {
        this.fenceListener = listener;
    }

    /** Work for the renderer's thread: library calls, which may throw anything. */
    @FunctionalInterface
    public interface OnRendererThread<T> {
        T run() throws Throwable;
    }

    /** Runs task on the renderer's thread and returns its result; what it throws comes back unchecked. */
    public <T> T call(OnRendererThread<T> task) {
        Future<T> f = thread.submit(() -> {
            try {
                return task.run();
            } catch (Throwable t) {
                throw rethrow(t);
            }
        });
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted waiting for the virgl thread", e);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            throw c instanceof RuntimeException re ? re : new IllegalStateException(c);
        }
    }

    /** {max version, max size} of a capset; {0, 0} when virglrenderer does not have it. Any thread. */
    public int[] capset(int id) {
        return call(() -> capsetHere(id));
    }

    /** {@link #capset}, on the renderer's thread already. */
    int[] capsetHere(int id) throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ver = a.allocate(JAVA_INT);
            MemorySegment size = a.allocate(JAVA_INT);
            lib.getCapSet.invokeExact(id, ver, size);
            return new int[] {ver.get(JAVA_INT, 0), size.get(JAVA_INT, 0)};
        }
    }

    /** The capset's bytes at version (its size from {@link #capset}). Any thread. */
    public byte[] fillCaps(int id, int version, int size) {
        return call(() -> {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment buf = a.allocate(Math.max(size, 1), 8);
                fillCapsHere(id, version, buf);
                return buf.asSlice(0, size).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
            }
        });
    }

    /** Fills dst (the capset's size, zeroed first) with the capset at version, on the renderer's thread already. */
    void fillCapsHere(int id, int version, MemorySegment dst) throws Throwable {
        dst.fill((byte) 0);
        lib.fillCaps.invokeExact(id, version, dst);
    }

    /** virgl_renderer_context_create: 0 or an errno-like code. Any thread. */
    public int createContext(int id, String name) {
        return call(() -> {
            try (Arena a = Arena.ofConfined()) {
                byte[] n = name.getBytes(java.nio.charset.StandardCharsets.UTF_8);
                MemorySegment s = a.allocateFrom(java.lang.foreign.ValueLayout.JAVA_BYTE, n);
                return (int) lib.contextCreate.invokeExact(id, n.length, s);
            }
        });
    }

    public void destroyContext(int id) {
        call(() -> {
            lib.contextDestroy.invokeExact(id);
            return null;
        });
    }

    /** A fence after everything submitted so far (ctx 0: the renderer's own). Any thread. */
    public int createFence(int fenceId, int ctxId) {
        return call(() -> (int) lib.createFence.invokeExact(fenceId, ctxId));
    }

    /**
     * On the renderer's thread (inside {@link #call}): a fence after all work submitted so far; returns its id
     * (never 0), or 0 if virglrenderer refused one. The thread polls until it retires and {@link #onFence}
     * hears of it.
     */
    public int fenceHere() throws Throwable {
        int id = lastFence + 1 == 0 ? 1 : lastFence + 1;
        int rc = (int) lib.createFence.invokeExact(id, 0);
        if (rc != 0) {
            return 0;
        }
        lastFence = id;
        schedulePoll();
        return id;
    }

    private void schedulePoll() {
        if (pollScheduled || cleanedUp) {
            return;
        }
        try {
            thread.schedule(pollFences, FENCE_POLL_MICROS, TimeUnit.MICROSECONDS);
            pollScheduled = true;
        } catch (RejectedExecutionException e) {
            // closing: nobody waits for these fences any more
        }
    }

    private void pollFences() {
        pollScheduled = false;
        if (cleanedUp) {
            return;
        }
        try {
            lib.poll.invokeExact();
        } catch (Throwable t) {
            LOG.errorf(t, "virgl_renderer_poll");
            return;
        }
        if (retiredFence != lastFence) {
            schedulePoll();
        }
    }

    /** Retires finished fences: the listener hears each, on the renderer's thread. Any thread. */
    public void poll() {
        call(() -> {
            lib.poll.invokeExact();
            return null;
        });
    }

    private static RuntimeException rethrow(Throwable t) {
        return t instanceof RuntimeException re ? re : new IllegalStateException(t);
    }

    @Override
    public void close() {
        synchronized (ACTIVE_LOCK) {
            if (initialised) {
                try {
                    call(() -> {
                        cleanedUp = true;
                        lib.cleanup.invokeExact(cookie);
                        return null;
                    });
                } catch (RuntimeException e) {
                    LOG.warnf("virgl_renderer_cleanup: %s", e.getMessage());
                }
                initialised = false;
            }
            shutdown();
        }
    }

    private void shutdown() {
        thread.shutdown();
        if (active == this) {
            active = null;
        }
        arena.close();
    }

    /** The C callbacks: static upcalls that find the process's renderer. They never throw into C. */
    static final class Callbacks {
        static final MemorySegment WRITE_FENCE = VirglLibrary.upcall(Callbacks.class, "writeFence",
                MethodType.methodType(void.class, MemorySegment.class, int.class), FunctionDescriptor.ofVoid(ADDRESS, JAVA_INT));
        static final MemorySegment GET_DRM_FD = VirglLibrary.upcall(Callbacks.class, "getDrmFd",
                MethodType.methodType(int.class, MemorySegment.class), FunctionDescriptor.of(JAVA_INT, ADDRESS));

        private Callbacks() {
        }

        static void writeFence(MemorySegment cookie, int fence) {
            try {
                VirglRenderer r = active;
                if (r != null) {
                    r.retiredFence = fence;
                    r.fenceListener.accept(fence);
                }
            } catch (Throwable t) {
                LOG.errorf(t, "virgl fence %d", fence);
            }
        }

        /** A new fd of the render node each call (virglrenderer owns and closes it); -1 for none. */
        static int getDrmFd(MemorySegment cookie) {
            try {
                VirglRenderer r = active;
                if (r == null || r.renderNode == null) {
                    return -1;
                }
                return LibC.open(r.renderNode.toString(), LibC.O_RDWR | LibC.O_CLOEXEC, 0);
            } catch (Throwable t) {
                LOG.errorf("render node: %s", t.getMessage());
                return -1;
            }
        }
    }
}

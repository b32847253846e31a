package dev.vhostappliance.block.rbd;

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
 * librados.so.2 and librbd.so.1 (Ceph 16, {@code librados.h}/{@code librbd.h}) over FFM, loaded when the first
 * rbd node opens: a machine without Ceph's client libraries only loses rbd nodes. Thin: one handle per C
 * function, results as the library returns them (0 or -errno), no policy. Handles and pointers the library
 * hands out ({@code rados_t}, {@code rados_ioctx_t}, {@code rbd_image_t}, {@code rbd_completion_t}) are plain
 * addresses.
 */
public final class Librbd {
    static final String RADOS_SONAME = "librados.so.2";
    static final String RBD_SONAME = "librbd.so.1";
    /** rbd_lock_mode_t. */
    static final int LOCK_MODE_EXCLUSIVE = 0;

    final MethodHandle radosCreate;
    final MethodHandle radosConfReadFile;
    final MethodHandle radosConfSet;
    final MethodHandle radosConfGet;
    final MethodHandle radosConnect;
    final MethodHandle radosShutdown;
    final MethodHandle radosIoctxCreate;
    final MethodHandle radosIoctxDestroy;
    final MethodHandle radosIoctxSetNamespace;
    final MethodHandle open;
    final MethodHandle openReadOnly;
    final MethodHandle close;
    final MethodHandle getSize;
    final MethodHandle resize;
    final MethodHandle updateWatch;
    final MethodHandle updateUnwatch;
    final MethodHandle lockAcquire;
    final MethodHandle lockRelease;
    final MethodHandle isExclusiveLockOwner;
    final MethodHandle invalidateCache;
    /** The asynchronous calls, for the rbd engine: static so the JIT sees constants on the hot path. */
    public static final MethodHandle AIO_CREATE_COMPLETION;
    public static final MethodHandle AIO_GET_RETURN_VALUE;
    public static final MethodHandle AIO_RELEASE;
    public static final MethodHandle AIO_READV;
    public static final MethodHandle AIO_WRITEV;
    public static final MethodHandle AIO_FLUSH;
    public static final MethodHandle AIO_DISCARD;
    public static final MethodHandle AIO_WRITE_ZEROES;
    private static final Object LOADED;

    static {
        Object loaded;
        MethodHandle[] aio = new MethodHandle[8];
        try {
            SymbolLookup rados = SymbolLookup.libraryLookup(RADOS_SONAME, Arena.global());
            SymbolLookup rbd = SymbolLookup.libraryLookup(RBD_SONAME, Arena.global());
            Librbd lib = new Librbd(rados, rbd);
            FunctionDescriptor vectored = FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG);
            aio[0] = link(rbd, "rbd_aio_create_completion", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS, ADDRESS));
            aio[1] = link(rbd, "rbd_aio_get_return_value", FunctionDescriptor.of(JAVA_LONG, JAVA_LONG));
            aio[2] = link(rbd, "rbd_aio_release", FunctionDescriptor.ofVoid(JAVA_LONG));
            aio[3] = link(rbd, "rbd_aio_readv", vectored);
            aio[4] = link(rbd, "rbd_aio_writev", vectored);
            aio[5] = link(rbd, "rbd_aio_flush", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
            aio[6] = link(rbd, "rbd_aio_discard", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG));
            aio[7] = link(rbd, "rbd_aio_write_zeroes",
                    FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT));
            loaded = lib;
        } catch (IllegalArgumentException | java.util.NoSuchElementException e) {
            loaded = "Ceph's client libraries cannot be loaded (Debian: apt-get install librbd1): " + e.getMessage();
        }
        LOADED = loaded;
        AIO_CREATE_COMPLETION = aio[0];
        AIO_GET_RETURN_VALUE = aio[1];
        AIO_RELEASE = aio[2];
        AIO_READV = aio[3];
        AIO_WRITEV = aio[4];
        AIO_FLUSH = aio[5];
        AIO_DISCARD = aio[6];
        AIO_WRITE_ZEROES = aio[7];
    }

    private static MethodHandle link(SymbolLookup lib, String name, FunctionDescriptor d) {
        return Linker.nativeLinker().downcallHandle(lib.findOrThrow(name), d);
    }

    private Librbd(SymbolLookup rados, SymbolLookup rbd) {
        radosCreate = link(rados, "rados_create", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        radosConfReadFile = link(rados, "rados_conf_read_file", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        radosConfSet = link(rados, "rados_conf_set", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        radosConfGet = link(rados, "rados_conf_get", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG));
        radosConnect = link(rados, "rados_connect", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        radosShutdown = link(rados, "rados_shutdown", FunctionDescriptor.ofVoid(ADDRESS));
        radosIoctxCreate = link(rados, "rados_ioctx_create", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        radosIoctxDestroy = link(rados, "rados_ioctx_destroy", FunctionDescriptor.ofVoid(ADDRESS));
        radosIoctxSetNamespace = link(rados, "rados_ioctx_set_namespace", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS));
        open = link(rbd, "rbd_open", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
        openReadOnly = link(rbd, "rbd_open_read_only", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
        close = link(rbd, "rbd_close", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        getSize = link(rbd, "rbd_get_size", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        resize = link(rbd, "rbd_resize", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
        updateWatch = link(rbd, "rbd_update_watch", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
        updateUnwatch = link(rbd, "rbd_update_unwatch", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
        lockAcquire = link(rbd, "rbd_lock_acquire", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        lockRelease = link(rbd, "rbd_lock_release", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        isExclusiveLockOwner = link(rbd, "rbd_is_exclusive_lock_owner", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        invalidateCache = link(rbd, "rbd_invalidate_cache", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    }

    /** The libraries, or a sentence saying why they cannot be had. */
    static Librbd load() throws RbdException {
        if (LOADED instanceof String why) {
            throw new RbdException(why);
        }
        return (Librbd) LOADED;
    }

    /** True if librbd and librados load on this machine. */
    public static boolean available() {
        return LOADED instanceof Librbd;
    }

    /** An upcall stub for the static method of lookup's class, alive for the process. */
    public static MemorySegment upcall(MethodHandles.Lookup lookup, String method, MethodType type, FunctionDescriptor descriptor) {
        try {
            MethodHandle target = lookup.findStatic(lookup.lookupClass(), method, type);
            return Linker.nativeLinker().upcallStub(target, descriptor, Arena.global());
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(e);
        }
    }
}

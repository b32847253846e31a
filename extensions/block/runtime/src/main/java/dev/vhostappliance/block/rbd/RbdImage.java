package dev.vhostappliance.block.rbd;

import static java.lang.foreign.ValueLayout.ADDRESS;

import dev.vhostappliance.libc.Errno;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongConsumer;

/**
 * One open RBD image and the cluster connection it came through (librados' {@code rados_t}, the pool's I/O
 * context, librbd's {@code rbd_image_t}): connected with bounded timeouts so a cluster that is away is an
 * error, not a hang; watched so a resize made elsewhere is seen. The synchronous calls here are for set-up,
 * resize and locking; the data path is the rbd engine's.
 */
public final class RbdImage implements AutoCloseable {
    /**
     * Timeouts we set when the configuration leaves them at Ceph's defaults (none, or 300 s to mount): joining
     * the cluster, a monitor command, and an OSD operation. An OSD operation that has not finished after
     * {@link #OSD_OP_TIMEOUT} fails with ETIMEDOUT (the guest sees an I/O error), so a cluster that went away
     * is an error after that long, and a few seconds of an OSD restarting are only a stall.
     */
    public static final String CONNECT_TIMEOUT = "15";
    public static final String MON_OP_TIMEOUT = "15";
    public static final String OSD_OP_TIMEOUT = "60";

    private final Librbd lib;
    private final MemorySegment cluster;
    private final MemorySegment ioctx;
    private final MemorySegment image;
    private final String spec;
    private final boolean readOnly;
    private long watchHandle = -1;
    private final int watchId;
    private volatile LongConsumer onResize;
    private volatile long size;

    private RbdImage(Librbd lib, MemorySegment cluster, MemorySegment ioctx, MemorySegment image, String spec, boolean readOnly,
            long size) {
        this.lib = lib;
        this.cluster = cluster;
        this.ioctx = ioctx;
        this.image = image;
        this.spec = spec;
        this.readOnly = readOnly;
        this.size = size;
        this.watchId = NEXT_ID.getAndIncrement();
    }

    /**
     * Joins the cluster and opens the image (read-only for a snapshot or read-only); a sentence naming what
     * failed otherwise (the libraries, the configuration, the cluster, the key, the pool, the image).
     */
    public static RbdImage open(RbdOptions o) throws RbdException {
        Librbd lib = Librbd.load();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            MemorySegment user = o.user() == null ? MemorySegment.NULL : arena.allocateFrom(o.user());
            check((int) lib.radosCreate.invokeExact(out, user),
                    "cannot create a cluster handle" + (o.user() == null ? "" : " for user '" + o.user() + "'"));
            MemorySegment cluster = out.get(ADDRESS, 0);
            try {
                configure(lib, arena, cluster, o);
                int rc = (int) lib.radosConnect.invokeExact(cluster);
                if (rc < 0) {
                    throw new RbdException("cannot connect to the Ceph cluster" + describeConnect(rc));
                }
                check((int) lib.radosIoctxCreate.invokeExact(cluster, arena.allocateFrom(o.pool()), out),
                        "cannot open pool '" + o.pool() + "'");
                MemorySegment ioctx = out.get(ADDRESS, 0);
                try {
                    if (o.namespace() != null && !o.namespace().isEmpty()) {
                        lib.radosIoctxSetNamespace.invokeExact(ioctx, arena.allocateFrom(o.namespace()));
                    }
                    boolean readOnly = o.readOnly() || o.snapshot() != null;
                    MemorySegment snap = o.snapshot() == null ? MemorySegment.NULL : arena.allocateFrom(o.snapshot());
                    MemorySegment name = arena.allocateFrom(o.image());
                    rc = readOnly ? (int) lib.openReadOnly.invokeExact(ioctx, name, out, snap)
                            : (int) lib.open.invokeExact(ioctx, name, out, snap);
                    check(rc, "cannot open image '" + o.spec() + "'");
                    MemorySegment image = out.get(ADDRESS, 0);
                    MemorySegment sizeOut = arena.allocate(ValueLayout.JAVA_LONG);
                    rc = (int) lib.getSize.invokeExact(image, sizeOut);
                    if (rc < 0) {
                        int ignored = (int) lib.close.invokeExact(image);
                        check(rc, "cannot size image '" + o.spec() + "'");
                    }
                    RbdImage img = new RbdImage(lib, cluster, ioctx, image, o.spec(), readOnly, sizeOut.get(ValueLayout.JAVA_LONG, 0));
                    img.watch();
                    return img;
                } catch (RbdException | RuntimeException e) {
                    lib.radosIoctxDestroy.invokeExact(ioctx);
                    throw e;
                }
            } catch (RbdException | RuntimeException e) {
                lib.radosShutdown.invokeExact(cluster);
                throw e;
            }
        } catch (RbdException | RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static void configure(Librbd lib, Arena arena, MemorySegment cluster, RbdOptions o) throws Throwable {
        MemorySegment path = o.conf() == null ? MemorySegment.NULL : arena.allocateFrom(o.conf());
        int rc = (int) lib.radosConfReadFile.invokeExact(cluster, path);
        if (rc < 0 && o.conf() != null) { // without conf= a missing /etc/ceph/ceph.conf is fine (QEMU's rule too)
            throw new RbdException("cannot read Ceph configuration '" + o.conf() + "': " + Errno.describe(-rc));
        }
        setIfDefault(lib, arena, cluster, "client_mount_timeout", "300", CONNECT_TIMEOUT);
        setIfDefault(lib, arena, cluster, "rados_mon_op_timeout", "0", MON_OP_TIMEOUT);
        setIfDefault(lib, arena, cluster, "rados_osd_op_timeout", "0", OSD_OP_TIMEOUT);
        if (o.servers() != null && !o.servers().isEmpty()) {
            set(lib, arena, cluster, "mon_host", String.join(",", o.servers().stream().map(RbdOptions.Server::monHost).toList()));
        }
        if (o.key() != null) {
            set(lib, arena, cluster, "key", o.key());
        }
        if (o.authClientRequired() != null && !o.authClientRequired().isEmpty()) {
            set(lib, arena, cluster, "auth_client_required", String.join(";", o.authClientRequired()));
        }
        set(lib, arena, cluster, "rbd_cache", o.direct() ? "false" : "true");
    }

    private static void set(Librbd lib, Arena arena, MemorySegment cluster, String option, String value) throws Throwable {
        int rc = (int) lib.radosConfSet.invokeExact(cluster, arena.allocateFrom(option), arena.allocateFrom(value));
        if (rc < 0) {
            throw new RbdException("Ceph refuses " + option + "=" + (option.equals("key") ? "<the key>" : value) + ": " + Errno.describe(-rc));
        }
    }

    /** Sets option unless the configuration file changed it from Ceph's default. */
    private static void setIfDefault(Librbd lib, Arena arena, MemorySegment cluster, String option, String cephDefault, String value)
            throws Throwable {
        MemorySegment buf = arena.allocate(64);
        int rc = (int) lib.radosConfGet.invokeExact(cluster, arena.allocateFrom(option), buf, 64L);
        String current = rc == 0 ? buf.getString(0) : cephDefault;
        if (current.equals(cephDefault) || current.equals(cephDefault + ".000000")) {
            set(lib, arena, cluster, option, value);
        }
    }

    private static String describeConnect(int rc) {
        return switch (-rc) {
            case Errno.ETIMEDOUT -> ": no monitor answered within " + CONNECT_TIMEOUT + " s (client_mount_timeout)";
            case Errno.EACCES, Errno.EPERM -> ": permission denied (wrong user or key?)";
            case Errno.ENOENT -> ": no monitor address or key found (conf=, server=, key-secret=)";
            default -> ": " + Errno.describe(-rc);
        };
    }

    private static void check(int rc, String what) throws RbdException {
        if (rc < 0) {
            throw new RbdException(what + ": " + (rc == -Errno.ENOENT ? "does not exist" : Errno.describe(-rc)));
        }
    }

    // ------------------------------------------------------------------ resize notification

    private static final Map<Integer, RbdImage> WATCHED = new ConcurrentHashMap<>();
    private static final java.util.concurrent.atomic.AtomicInteger NEXT_ID = new java.util.concurrent.atomic.AtomicInteger();
    private static final MemorySegment UPDATE_CALLBACK = Librbd.available() ? Librbd.upcall(MethodHandles.lookup(), "updated",
            MethodType.methodType(void.class, long.class), FunctionDescriptor.ofVoid(ValueLayout.JAVA_LONG)) : null;
    /** Size checks run here, off librbd's thread (its callback must not call back into the image). */
    private static final java.util.concurrent.Executor WATCHER = java.util.concurrent.Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "rbd-watch");
        t.setDaemon(true);
        return t;
    });

    private void watch() {
        WATCHED.put(watchId, this);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment handle = arena.allocate(ValueLayout.JAVA_LONG);
            int rc = (int) lib.updateWatch.invokeExact(image, handle, UPDATE_CALLBACK, MemorySegment.ofAddress(watchId));
            if (rc == 0) {
                watchHandle = handle.get(ValueLayout.JAVA_LONG, 0);
            }
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** The image header changed (a resize, a snapshot, a lock moving): librbd's thread; re-read the size elsewhere. */
    private static void updated(long arg) {
        RbdImage img = WATCHED.get((int) arg);
        if (img != null) {
            WATCHER.execute(img::refreshSize);
        }
    }

    /** Whom to tell of a new size (the node). */
    public void onResize(LongConsumer listener) {
        this.onResize = listener;
    }

    /** Re-reads the size from the cluster; tells the listener if it changed. Returns it. */
    public long refreshSize() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.JAVA_LONG);
            int rc = (int) lib.getSize.invokeExact(image, out);
            if (rc == 0) {
                long newSize = out.get(ValueLayout.JAVA_LONG, 0);
                if (newSize != size) {
                    size = newSize;
                    LongConsumer l = onResize;
                    if (l != null) {
                        l.accept(newSize);
                    }
                }
            }
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
        return size;
    }

    public long size() {
        return size;
    }

    public boolean readOnly() {
        return readOnly;
    }

    public String spec() {
        return spec;
    }

    /** The rbd_image_t, for the engine. */
    public MemorySegment handle() {
        return image;
    }

    /** rbd_resize; 0 or -errno. */
    public int resize(long newSize) {
        try {
            int rc = (int) lib.resize.invokeExact(image, newSize);
            if (rc == 0) {
                refreshSize();
            }
            return rc;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * Takes the image's exclusive lock and keeps it (librbd does not hand it to another client that asks, as it
     * does for a lock it took on its own); 0 or -errno (-EROFS: another client holds it, -EINVAL: the image has
     * no exclusive-lock feature).
     */
    public int lockExclusive() {
        try {
            return (int) lib.lockAcquire.invokeExact(image, Librbd.LOCK_MODE_EXCLUSIVE);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Gives the lock up (after the writes in flight finished); 0 or -errno. */
    public int unlock() {
        try {
            return (int) lib.lockRelease.invokeExact(image);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Drops what librbd's cache holds (another host wrote the image: a migration's destination). */
    public int invalidateCache() {
        try {
            return (int) lib.invalidateCache.invokeExact(image);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    @Override
    public void close() {
        try {
            WATCHED.remove(watchId);
            if (watchHandle >= 0) {
                int ignored = (int) lib.updateUnwatch.invokeExact(image, watchHandle);
            }
            int ignored = (int) lib.close.invokeExact(image);
            lib.radosIoctxDestroy.invokeExact(ioctx);
            lib.radosShutdown.invokeExact(cluster);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
}

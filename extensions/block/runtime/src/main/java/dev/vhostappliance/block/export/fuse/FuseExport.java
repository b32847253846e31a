package dev.vhostappliance.block.export.fuse;

import dev.vhostappliance.block.export.ExportedNode;
import dev.vhostappliance.block.node.BlockNode;
import dev.vhostappliance.cli.StartupException;
import java.nio.file.Path;

/**
 * qemu-storage-daemon's {@code --export type=fuse}: the node appears as the regular file mountpoint (raw),
 * served by the kernel's FUSE protocol spoken directly on /dev/fuse (see {@link FuseSession}; why not
 * libfuse: no C library to load, and one file needs none of its tree-walking).
 */
public final class FuseExport extends ExportedNode {
    private final FuseMount mount;
    private final FuseSession session;
    private Thread thread;
    private boolean started;

    private FuseExport(String id, String nodeName, BlockNode node, FuseMount mount, FuseSession session) {
        super(id, nodeName, node);
        this.mount = mount;
        this.session = session;
    }

    /** Mounts the export (allowOther: on, off or auto); serving starts with {@link #start()}. */
    public static FuseExport mount(String id, String nodeName, BlockNode node, Path mountpoint, boolean writable,
            boolean growable, String allowOther) throws StartupException {
        FuseMount m = FuseMount.mount(mountpoint, allowOther);
        return new FuseExport(id, nodeName, node, m, new FuseSession(m, node, writable, growable, m.allowOther(),
                "FUSE export '" + id + "'"));
    }


    @Override
    public String type() {
        return "fuse";
    }



    @Override
    public synchronized void start() {
        if (!started) {
            started = true;
            thread = new Thread(session, "fuse-" + id());
            thread.setDaemon(true);
            thread.start();
        }
    }

    @Override
    public void requestStop() {
        mount.unmount(); // the session's read then fails with ENODEV and it ends
    }

    @Override
    public void awaitStop(long millis) {
        Thread t;
        synchronized (this) {
            t = thread;
        }
        if (t != null) {
            try {
                t.join(Math.max(millis, 1));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Never: QEMU's FUSE export has no connections to count and never refuses a safe removal. */
    @Override
    public boolean inUse() {
        return false;
    }

    @Override
    public void delete(boolean hard) {
        close();
    }

    /** Unmounts, waits for the session to end (it frees what it holds), or frees it if it never started. */
    @Override
    public void close() {
        requestStop();
        awaitStop(5000);
        synchronized (this) {
            if (!started) {
                started = true; // once
                session.release();
            }
        }
    }
}

package dev.vhostappliance.server;

import dev.vhostappliance.device.VirtioDevice;
import dev.vhostappliance.protocol.VhostUserBackend;
import org.jboss.logging.Logger;

/**
 * One device served on its own socket and thread, for processes that serve several (qemu-storage-daemon
 * exports, config-file setups): started once, stopped from any thread (its frontend disconnected, its thread
 * joined), then closed. With retry, a serve loop that fails is logged and started again after a pause, the
 * other devices untouched.
 */
public final class ServedDevice {
    private static final Logger LOG = Logger.getLogger(ServedDevice.class);
    public static final long RETRY_MILLIS = 5000;
    static final long JOIN_MILLIS = 5000;

    private final String name; // "export exp0", "device disk0": for logs and the thread's name
    private final VirtioDevice device;
    private final BackendServer server;
    private final VhostUserBackend backend;
    private final boolean retry;
    private volatile String state = "listening";
    private Thread thread;

    /** kind and id name it in logs and threads ("export", "exp0"). */
    public ServedDevice(String kind, String id, VirtioDevice device, BackendServer server, boolean retry) {
        this.name = kind + " " + id;
        this.device = device;
        this.server = server;
        this.retry = retry;
        this.backend = new VhostUserBackend(device);
    }

    public synchronized void start() {
        thread = Thread.ofPlatform().name(name.replace(' ', '-')).start(this::serve);
    }

    private void serve() {
        while (!server.stopSignal().isSignalled()) {
            try {
                state = "listening";
                server.serve(backend::serve);
                return; // stopped
            } catch (Exception | Error e) {
                state = "failed";
                if (!retry) {
                    LOG.errorf("%s failed: %s", name, e.toString());
                    return;
                }
                LOG.errorf("%s failed: %s; the other devices keep serving; retrying in %d s", name, e,
                        RETRY_MILLIS / 1000);
                try {
                    if (server.stopSignal().isSignalled()) {
                        return;
                    }
                    Thread.sleep(RETRY_MILLIS);
                } catch (InterruptedException ie) {
                    return;
                }
            }
        }
    }

    /** Asks the serve loop to end (a connected frontend is disconnected); from any thread, returns at once. */
    public void requestStop() {
        server.stop();
    }

    /** Requests the stop and waits, at most joinMillis (0: no bound), for the serving thread to end. */
    public void stop(long joinMillis) {
        requestStop();
        Thread t;
        synchronized (this) {
            t = thread;
        }
        if (t != null) {
            try {
                t.join(joinMillis);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** {@link #stop(long)} bounded by 5 s, then the socket and the device closed. */
    public void stopAndClose() {
        stop(JOIN_MILLIS);
        close();
    }

    public void close() {
        server.close();
        device.close();
    }

    public boolean connected() {
        return server.hasFrontend();
    }

    public String state() {
        return state;
    }

    public VirtioDevice device() {
        return device;
    }

    public VhostUserBackend backend() {
        return backend;
    }
}

package dev.vhostappliance.app.run;

import dev.vhostappliance.cli.DeviceCommand;
import dev.vhostappliance.device.VirtioDevice;
import dev.vhostappliance.protocol.VhostUserBackend;
import dev.vhostappliance.server.BackendServer;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import org.jboss.logging.Logger;

/**
 * Serves many devices in one process, each isolated on its own thread and socket: a device whose serving
 * fails is logged and served again after a pause; the others are not touched. Devices can be added and
 * removed while the others run (QMP).
 */
public final class DeviceHost {
    private static final Logger LOG = Logger.getLogger(DeviceHost.class);
    static final long RETRY_MILLIS = 5000;

    /** One served device. */
    public static final class Served {
        final String id;
        final String type;
        final VirtioDevice device;
        final DeviceCommand command;
        final BackendServer server;
        final Path socket;
        volatile boolean removed;
        volatile String state = "listening";
        volatile VhostUserBackend backend;
        Thread thread;

        Served(String id, String type, VirtioDevice device, DeviceCommand command, BackendServer server, Path socket) {
            this.id = id;
            this.type = type;
            this.device = device;
            this.command = command;
            this.server = server;
            this.socket = socket;
        }

        public String id() {
            return id;
        }

        public String type() {
            return type;
        }

        public Path socket() {
            return socket;
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

    private final Map<String, Served> devices = new ConcurrentHashMap<>();
    private final CountDownLatch stopped = new CountDownLatch(1);

    public synchronized boolean has(String id) {
        return devices.containsKey(id);
    }

    public List<Served> list() {
        return devices.values().stream().sorted((a, b) -> a.id.compareTo(b.id)).toList();
    }

    /** Starts serving a device whose server already listens. */
    public synchronized void add(String id, String type, VirtioDevice device, DeviceCommand command, BackendServer server,
            Path socket) {
        Served s = new Served(id, type, device, command, server, socket);
        devices.put(id, s);
        s.thread = Thread.ofPlatform().name("device-" + id).start(() -> serve(s));
    }

    private void serve(Served s) {
        VhostUserBackend backend = new VhostUserBackend(s.device);
        s.backend = backend;
        while (!s.removed && stopped.getCount() > 0) {
            try {
                s.state = "listening";
                s.server.serve(backend::serve);
                return; // stopped
            } catch (Exception | Error e) {
                s.state = "failed";
                LOG.errorf("device %s failed: %s; the other devices keep serving; retrying in %d s", s.id, e,
                        RETRY_MILLIS / 1000);
                try {
                    if (s.server.stopSignal().isSignalled()) {
                        return;
                    }
                    Thread.sleep(RETRY_MILLIS);
                } catch (InterruptedException ie) {
                    return;
                }
            }
        }
    }

    /** Stops a device (its frontend is disconnected), closes its socket and what it opened. */
    public synchronized boolean remove(String id) {
        Served s = devices.remove(id);
        if (s == null) {
            return false;
        }
        s.removed = true;
        stop(s);
        return true;
    }

    private static void stop(Served s) {
        s.server.stop();
        if (s.thread != null) {
            try {
                s.thread.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        s.server.close();
        s.device.close();
        s.command.release();
    }

    /** Blocks until {@link #stopAll()}, then stops every device. */
    public void awaitStop() {
        try {
            stopped.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        for (Served s : list()) {
            remove(s.id);
        }
    }

    public void stopAll() {
        stopped.countDown();
        for (Served s : devices.values()) {
            s.server.stop();
        }
    }
}

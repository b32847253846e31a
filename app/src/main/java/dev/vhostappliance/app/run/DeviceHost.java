package dev.vhostappliance.app.run;

import dev.vhostappliance.cli.DeviceCommand;
import dev.vhostappliance.device.VirtioDevice;
import dev.vhostappliance.protocol.VhostUserBackend;
import dev.vhostappliance.server.BackendServer;
import dev.vhostappliance.server.ServedDevice;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;

/**
 * Serves many devices in one process, each isolated on its own thread and socket ({@link ServedDevice}, with
 * retry: a device whose serving fails is logged and served again after a pause; the others are not touched).
 * Devices can be added and removed while the others run (QMP).
 */
public final class DeviceHost {

    /** One served device of the setup: its id, type, the command that built it, and how it is served. */
    public static final class Served {
        final String id;
        final String type;
        final DeviceCommand command;
        final Path socket;
        final ServedDevice serving;

        Served(String id, String type, DeviceCommand command, Path socket, ServedDevice serving) {
            this.id = id;
            this.type = type;
            this.command = command;
            this.socket = socket;
            this.serving = serving;
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
            return serving.connected();
        }

        public String state() {
            return serving.state();
        }

        public VirtioDevice device() {
            return serving.device();
        }

        public VhostUserBackend backend() {
            return serving.backend();
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

    /** Starts serving a device whose server already listens; a failing serve loop is retried. */
    public synchronized void add(String id, String type, VirtioDevice device, DeviceCommand command, BackendServer server,
            Path socket) {
        Served s = new Served(id, type, command, socket, new ServedDevice("device", id, device, server, true));
        devices.put(id, s);
        s.serving.start();
    }

    /** Stops a device (its frontend is disconnected), closes its socket and what it opened. */
    public synchronized boolean remove(String id) {
        Served s = devices.remove(id);
        if (s == null) {
            return false;
        }
        s.serving.stopAndClose();
        s.command.release();
        return true;
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
            s.serving.requestStop();
        }
    }
}

package dev.vhostappliance.cli;

import dev.vhostappliance.device.VhostDeviceProvider;
import dev.vhostappliance.device.VirtioDevice;
import dev.vhostappliance.protocol.VhostUserBackend;
import dev.vhostappliance.server.BackendServer;
import dev.vhostappliance.server.ShutdownSignals;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * The options every vhost-user backend program has (QEMU's "Backend program conventions"), and the run:
 * print capabilities, or create the device, open the socket, serve until SIGTERM. Device commands extend
 * this with their own options and {@link #createDevice()}.
 */
public abstract class DeviceCommand implements Callable<Integer> {

    @Spec
    protected CommandSpec spec;

    @Option(names = "--socket-path", paramLabel = "PATH",
            description = "Listen on the vhost-user Unix socket PATH (a stale socket file is replaced).")
    protected Path socketPath;

    @Option(names = "--fd", paramLabel = "FDNUM",
            description = "Use the inherited socket FDNUM, listening or connected (exit when a connected one closes).")
    protected Integer fd;

    @Option(names = "--client",
            description = "Connect to a frontend listening on --socket-path instead of listening (ChardevSocket server=off).")
    protected boolean client;

    @Option(names = "--reconnect", paramLabel = "SECONDS", defaultValue = "0",
            description = "With --client: retry connecting every SECONDS, also after a disconnect (0: connect once).")
    protected int reconnect;

    @Option(names = "--print-capabilities",
            description = "Print the backend capabilities as JSON and exit; other options are ignored.")
    protected boolean printCapabilities;

    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help and exit.")
    protected boolean help;

    /** The provider this command belongs to (type and capabilities). */
    protected abstract VhostDeviceProvider provider();

    /** Builds the device from this command's options; fails early with one clear sentence. */
    protected abstract VirtioDevice createDevice() throws StartupException;

    /**
     * For setups that serve many devices in one process (run --config, QMP x-vhost-device-add): the device these
     * parsed options describe. Where it listens is {@link #socketPath()}, {@link #client()}, {@link #reconnect()}.
     */
    public final VirtioDevice newDevice() throws StartupException {
        return createDevice();
    }

    /** Releases what {@link #newDevice()} opened beyond the device itself (a block command's image). */
    public final void release() {
        afterServing();
    }

    public Path socketPath() {
        return socketPath;
    }

    public boolean client() {
        return client;
    }

    public int reconnect() {
        return reconnect;
    }

    /** Called once serving ended (or failed to start): release what {@link #createDevice()} opened. */
    protected void afterServing() {
    }

    @Override
    public Integer call() throws Exception {
        if (printCapabilities) {
            spec.commandLine().getOut().println(Capabilities.json(provider()));
            spec.commandLine().getOut().flush();
            return ExitCodes.OK;
        }
        if (socketPath != null && fd != null) {
            throw new ParameterException(spec.commandLine(), "--socket-path and --fd are mutually exclusive");
        }
        if (socketPath == null && fd == null) {
            throw new ParameterException(spec.commandLine(), "one of --socket-path=PATH or --fd=FDNUM is required");
        }
        // Handle SIGTERM before the socket exists: a management layer may stop us as soon as it sees it.
        AtomicReference<BackendServer> running = new AtomicReference<>();
        AtomicBoolean stopRequested = new AtomicBoolean();
        ShutdownSignals.onTerminate(() -> {
            stopRequested.set(true);
            BackendServer s = running.get();
            if (s != null) {
                s.stop();
            }
        });
        if (client && socketPath == null) {
            throw new ParameterException(spec.commandLine(), "--client needs --socket-path=PATH");
        }
        if (reconnect != 0 && !client) {
            throw new ParameterException(spec.commandLine(), "--reconnect only applies with --client");
        }
        VirtioDevice device = createDevice();
        try (BackendServer server = client ? BackendServer.client(socketPath, reconnect)
                : socketPath != null ? BackendServer.listen(socketPath) : BackendServer.inherit(fd)) {
            running.set(server);
            if (stopRequested.get()) {
                server.stop();
            }
            VhostUserBackend backend = new VhostUserBackend(device);
            server.serve(backend::serve);
        } finally {
            device.close();
            afterServing();
        }
        return ExitCodes.OK;
    }
}

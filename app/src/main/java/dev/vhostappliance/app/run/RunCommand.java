package dev.vhostappliance.app.run;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import dev.vhostappliance.cli.DeviceCommand;
import dev.vhostappliance.cli.ExitCodes;
import dev.vhostappliance.cli.StartupException;
import dev.vhostappliance.device.DeviceCatalog;
import dev.vhostappliance.device.VhostDeviceProvider;
import dev.vhostappliance.device.VirtioDevice;
import dev.vhostappliance.qmp.QmpException;
import dev.vhostappliance.qmp.QmpMonitor;
import dev.vhostappliance.server.BackendServer;
import dev.vhostappliance.server.ShutdownSignals;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.GroupPrincipal;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import org.jboss.logging.Logger;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Option;

/**
 * {@code vhost-appliance run [--config FILE] [--check]}: every device of the configuration ({@link ConfigFile})
 * in one process. The whole configuration is validated first, each device built and its socket bound; every
 * error is listed, one line each with its key, and nothing starts (exit 1). Then each device serves isolated
 * ({@link DeviceHost}); an optional QMP monitor adds, removes and lists devices live.
 */
@Command(name = "run", description = "Serve every device of a configuration file (YAML or properties).", sortOptions = false)
public final class RunCommand implements Callable<Integer> {
    private static final Logger LOG = Logger.getLogger(RunCommand.class);
    static final List<String> SETTINGS = List.of("appliance.monitor.socket-path", "appliance.sockets.mode",
            "appliance.sockets.group");

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--config", paramLabel = "FILE", description = "The configuration file (.yaml/.yml or .properties).")
    Path config;

    @Option(names = "--check", description = "Validate the configuration (devices built, sockets not bound) and exit.")
    boolean check;

    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help and exit.")
    boolean help;

    /** A device built from its keys, ready to listen. */
    record Built(DeviceSpec spec, DeviceCommand command, VirtioDevice device, Path socket) {
    }

    @Override
    public Integer call() throws Exception {
        ConfigFile cf;
        try {
            cf = ConfigFile.load(config);
        } catch (IOException e) {
            throw new StartupException(e.getMessage());
        }
        List<String> errors = new ArrayList<>();
        for (String k : cf.unknownKeys(SETTINGS)) {
            errors.add(k + ": unknown key");
        }
        Set<PosixFilePermission> mode = socketMode(cf.get("appliance.sockets.mode"), errors);
        GroupPrincipal group = socketGroup(cf.get("appliance.sockets.group"), errors);
        Map<String, Map<String, String>> devices = cf.devices();
        String monitorPath = cf.get("appliance.monitor.socket-path");
        var blockdevs = cf.trees(ConfigFile.BLOCKDEV);
        var exportTrees = cf.trees(ConfigFile.EXPORT);
        var objectTrees = cf.trees(ConfigFile.OBJECT);
        var nbdServer = cf.tree(ConfigFile.NBD_SERVER);
        dev.vhostappliance.block.qsd.StorageDaemon storage = null;
        if (!blockdevs.isEmpty() || !exportTrees.isEmpty() || !nbdServer.isEmpty()) {
            // built (images locked, sockets bound) even with --check: the same checks as the real start
            storage = dev.vhostappliance.block.qsd.StorageDaemon.fromTrees(
                    new dev.vhostappliance.block.qsd.StorageDaemon.Trees(objectTrees, blockdevs, nbdServer, exportTrees),
                    ConfigFile.OBJECT, ConfigFile.BLOCKDEV, ConfigFile.NBD_SERVER, ConfigFile.EXPORT, errors);
        }
        if (devices.isEmpty() && monitorPath == null && blockdevs.isEmpty() && exportTrees.isEmpty()) {
            errors.add("appliance.devices: no devices configured (appliance.devices.ID.type=block|input|gpu ...)"
                    + (cf.sources().isEmpty() ? "; no configuration file found" : " in " + String.join(", ", cf.sources())));
        }
        List<Built> built = new ArrayList<>();
        Map<Path, String> sockets = new HashMap<>();
        for (Map.Entry<String, Map<String, String>> d : devices.entrySet()) {
            Built b = build(d.getKey(), d.getValue(), errors);
            if (b == null) {
                continue;
            }
            String other = sockets.putIfAbsent(b.socket().toAbsolutePath(), d.getKey());
            if (other != null) {
                errors.add(ConfigFile.DEVICES + d.getKey() + ".socket-path: " + b.socket() + " is also device " + other + "'s");
            }
            built.add(b);
        }
        Map<String, BackendServer> servers = new LinkedHashMap<>();
        if (errors.isEmpty() && !check) {
            for (Built b : built) {
                try {
                    servers.put(b.spec().id(), openSocket(b, mode, group));
                } catch (StartupException | IOException e) {
                    errors.add(ConfigFile.DEVICES + b.spec().id() + ".socket-path: " + e.getMessage());
                }
            }
        }
        if (!errors.isEmpty()) {
            PrintWriter err = spec.commandLine().getErr();
            for (String e : errors) {
                err.println("run: " + e);
            }
            err.flush();
            servers.values().forEach(BackendServer::close);
            if (storage != null) {
                storage.shutdown();
            }
            for (Built b : built) {
                b.device().close();
                b.command().release();
            }
            return ExitCodes.STARTUP_FAILURE;
        }
        if (check) {
            if (storage != null) {
                storage.shutdown();
            }
            spec.commandLine().getOut().println("configuration OK: " + built.size() + " device(s)"
                    + (storage != null ? " and " + storage.exportIds().size() + " block export(s)" : "") + " from "
                    + String.join(", ", cf.sources()));
            for (Built b : built) {
                b.device().close();
                b.command().release();
            }
            return ExitCodes.OK;
        }
        DeviceHost host = new DeviceHost();
        ShutdownSignals.onTerminate(host::stopAll);
        if (storage != null) {
            storage.startServing();
        }
        for (Built b : built) {
            host.add(b.spec().id(), b.spec().type(), b.device(), b.command(), servers.get(b.spec().id()), b.socket());
        }
        QmpMonitor monitor = null;
        if (monitorPath != null) {
            monitor = new QmpMonitor(host::stopAll);
            registerCommands(monitor, host, mode, group);
            monitor.listen(Path.of(monitorPath));
            applyOwnership(Path.of(monitorPath), mode, group);
        }
        if (storage != null) {
            LOG.infof("serving block exports %s (qemu-storage-daemon shape)", storage.exportIds());
        }
        LOG.infof("serving %d device(s): %s", built.size(), String.join(", ", built.stream()
                .map(b -> b.spec().id() + " (" + b.spec().type() + ", " + b.socket() + ")").toList()));
        host.awaitStop();
        if (storage != null) {
            storage.shutdown();
        }
        if (monitor != null) {
            monitor.close();
        }
        return ExitCodes.OK;
    }

    /** Builds one device from its keys; adds errors (prefixed with the device's key) and returns null on failure. */
    static Built build(String id, Map<String, String> keys, List<String> errors) {
        String prefix = ConfigFile.DEVICES + id;
        String type = keys.get("type");
        if (type == null) {
            errors.add(prefix + ".type: missing (block, input or gpu)");
            return null;
        }
        VhostDeviceProvider provider = DeviceCatalog.byType(type).orElse(null);
        if (provider == null) {
            errors.add(prefix + ".type: unknown device type '" + type + "' (block, input or gpu)");
            return null;
        }
        DeviceCommand command = (DeviceCommand) provider.newCommand();
        CommandLine cl = new CommandLine(command);
        List<String> args = new ArrayList<>();
        boolean ok = true;
        for (Map.Entry<String, String> k : keys.entrySet()) {
            if (k.getKey().equals("type")) {
                continue;
            }
            OptionSpec opt = cl.getCommandSpec().findOption("--" + k.getKey());
            if (opt == null || k.getKey().equals("fd") || k.getKey().equals("print-capabilities") || k.getKey().equals("help")) {
                errors.add(prefix + "." + k.getKey() + ": not an option of " + type + " devices");
                ok = false;
            } else if (opt.typeInfo().isBoolean()) {
                String v = k.getValue().trim();
                if (v.equals("true")) {
                    args.add("--" + k.getKey());
                } else if (!v.equals("false")) {
                    errors.add(prefix + "." + k.getKey() + ": expected true or false, not '" + v + "'");
                    ok = false;
                }
            } else {
                args.add("--" + k.getKey() + "=" + k.getValue());
            }
        }
        if (!keys.containsKey("socket-path")) {
            errors.add(prefix + ".socket-path: missing");
            ok = false;
        }
        if (!ok) {
            return null;
        }
        try {
            cl.parseArgs(args.toArray(new String[0]));
            VirtioDevice device = command.newDevice();
            return new Built(new DeviceSpec(id, type, args), command, device, command.socketPath());
        } catch (CommandLine.ParameterException | StartupException e) {
            errors.add(prefix + ": " + e.getMessage());
            command.release();
            return null;
        }
    }

    static Set<PosixFilePermission> socketMode(String text, List<String> errors) {
        if (text == null) {
            return null;
        }
        try {
            int m = Integer.parseInt(text.trim(), 8);
            if (m < 0 || m > 0777) {
                throw new NumberFormatException();
            }
            Set<PosixFilePermission> perms = java.util.EnumSet.noneOf(PosixFilePermission.class);
            PosixFilePermission[] order = {PosixFilePermission.OTHERS_EXECUTE, PosixFilePermission.OTHERS_WRITE,
                    PosixFilePermission.OTHERS_READ, PosixFilePermission.GROUP_EXECUTE, PosixFilePermission.GROUP_WRITE,
                    PosixFilePermission.GROUP_READ, PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.OWNER_WRITE,
                    PosixFilePermission.OWNER_READ};
            for (int i = 0; i < order.length; i++) {
                if ((m & (1 << i)) != 0) {
                    perms.add(order[i]);
                }
            }
            return perms;
        } catch (NumberFormatException e) {
            errors.add("appliance.sockets.mode: '" + text + "' is not an octal mode such as 0660");
            return null;
        }
    }

    static GroupPrincipal socketGroup(String name, List<String> errors) {
        if (name == null) {
            return null;
        }
        try {
            return java.nio.file.FileSystems.getDefault().getUserPrincipalLookupService().lookupPrincipalByGroupName(name);
        } catch (IOException e) {
            errors.add("appliance.sockets.group: no group '" + name + "'");
            return null;
        }
    }

    /** The device's socket: connecting (--client) or listening with the configured mode and group. */
    static BackendServer openSocket(Built b, Set<PosixFilePermission> mode, GroupPrincipal group)
            throws StartupException, IOException {
        if (b.command().client()) {
            return BackendServer.client(b.socket(), b.command().reconnect());
        }
        BackendServer server = BackendServer.listen(b.socket());
        try {
            applyOwnership(b.socket(), mode, group);
        } catch (IOException e) {
            server.close();
            throw e;
        }
        return server;
    }

    static void applyOwnership(Path socket, Set<PosixFilePermission> mode, GroupPrincipal group) throws IOException {
        if (group != null) {
            Files.getFileAttributeView(socket, PosixFileAttributeView.class).setGroup(group);
        }
        if (mode != null) {
            Files.setPosixFilePermissions(socket, mode);
        }
    }

    /** The monitor's device commands: query-vhost-devices, x-vhost-device-add, x-vhost-device-del. */
    static void registerCommands(QmpMonitor monitor, DeviceHost host, Set<PosixFilePermission> mode, GroupPrincipal group) {
        JsonNodeFactory nodes = JsonNodeFactory.instance;
        monitor.register("query-vhost-devices", args -> {
            ArrayNode list = nodes.arrayNode();
            for (DeviceHost.Served s : host.list()) {
                list.addObject().put("id", s.id()).put("type", s.type()).put("socket-path", s.socket().toString())
                        .put("connected", s.connected()).put("state", s.state());
            }
            return list;
        });
        monitor.register("query-vhost-stats", args -> {
            ArrayNode list = nodes.arrayNode();
            for (DeviceHost.Served s : host.list()) {
                list.add(dev.vhostappliance.qmp.DeviceStatsJson.of(s.id(), s.type(), s.connected(), s.device(), s.backend()));
            }
            return list;
        });
        monitor.register("input-send-event", args -> {
            List<DeviceHost.Served> inputs = host.list().stream()
                    .filter(s -> s.device() instanceof dev.vhostappliance.input.VirtioInputDevice).toList();
            String id = args.has("device") ? args.get("device").asText() : null;
            DeviceHost.Served target = null;
            for (DeviceHost.Served s : inputs) {
                if (id == null ? inputs.size() == 1 : s.id().equals(id)) {
                    target = s;
                }
            }
            if (target == null) {
                throw new QmpException(QmpException.DEVICE_NOT_FOUND, id != null ? "Device '" + id + "' is not an input device"
                        : inputs.isEmpty() ? "No input device" : "Several input devices: give 'device'");
            }
            var device = (dev.vhostappliance.input.VirtioInputDevice) target.device();
            try {
                device.inject(dev.vhostappliance.input.QmpInputEvents.toEvdev(args.get("events"), device.identity()));
            } catch (IllegalArgumentException e) {
                throw new QmpException(e.getMessage());
            }
            return nodes.objectNode();
        });
        monitor.register("x-vhost-device-del", args -> {
            String id = args.path("id").asText(null);
            if (id == null || !host.remove(id)) {
                throw new QmpException(QmpException.DEVICE_NOT_FOUND, "Device '" + id + "' not found");
            }
            return nodes.objectNode();
        });
        monitor.register("x-vhost-device-add", args -> {
            String id = args.path("id").asText(null);
            if (id == null || id.isEmpty()) {
                throw new QmpException("Parameter 'id' is missing");
            }
            if (host.has(id)) {
                throw new QmpException("Duplicate device ID '" + id + "'");
            }
            Map<String, String> keys = new java.util.TreeMap<>();
            keys.put("type", args.path("type").asText(null));
            JsonNode opts = args.path("options");
            opts.fields().forEachRemaining(f -> keys.put(f.getKey(), f.getValue().isValueNode() ? f.getValue().asText()
                    : String.join(",", java.util.stream.StreamSupport.stream(f.getValue().spliterator(), false)
                            .map(JsonNode::asText).toList())));
            if (keys.get("type") == null) {
                keys.remove("type");
            }
            List<String> errors = new ArrayList<>();
            Built b = build(id, keys, errors);
            if (b == null) {
                throw new QmpException(String.join("; ", errors));
            }
            try {
                host.add(id, b.spec().type(), b.device(), b.command(), openSocket(b, mode, group), b.socket());
            } catch (StartupException | IOException e) {
                b.device().close();
                b.command().release();
                throw new QmpException(e.getMessage());
            }
            return nodes.objectNode();
        });
    }
}

package dev.vhostappliance.block.qsd;

import dev.vhostappliance.block.export.BlockExport;
import dev.vhostappliance.block.export.fuse.FuseExport;
import dev.vhostappliance.block.export.nbd.NbdExport;
import dev.vhostappliance.block.export.nbd.NbdServer;
import dev.vhostappliance.block.export.nbd.TlsCredentials;
import dev.vhostappliance.block.export.vhostuser.VhostUserBlkExport;
import dev.vhostappliance.block.export.vhostuser.VirtioBlkDevice;
import dev.vhostappliance.block.graph.BlockGraph;
import dev.vhostappliance.block.graph.OptionException;
import dev.vhostappliance.block.graph.OptionReader;
import dev.vhostappliance.block.node.BlockNode;
import dev.vhostappliance.cli.ExitCodes;
import dev.vhostappliance.cli.StartupException;
import dev.vhostappliance.libc.FileLocks;
import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.NativeCallException;
import dev.vhostappliance.qmp.QmpMonitor;
import dev.vhostappliance.server.BackendServer;
import dev.vhostappliance.server.ShutdownSignals;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import org.jboss.logging.Logger;

/**
 * A drop-in for qemu-storage-daemon's vhost-user-blk exports: builds the {@link BlockGraph}, creates every
 * export's socket, writes the pid file, then serves each export on its own thread until SIGTERM (exit 0).
 * Config files ({@code run --config}) build the same graph and exports through {@link #fromTrees}. Any option
 * or key it does not support is a one-line error and exit 1, never silently ignored.
 */
public final class StorageDaemon {
    private static final Logger LOG = Logger.getLogger(StorageDaemon.class);
    public static final int MAX_QUEUES = 1024;

    private final BlockGraph graph = new BlockGraph();
    /** --object iothread ids and their poll-max-ns (-1: not given). */
    private final Map<String, Long> iothreads = new LinkedHashMap<>();
    /** --object tls-creds-x509 (endpoint=server) by id, and --object authz-simple identities by id. */
    private final Map<String, TlsCredentials> tlsCreds = new LinkedHashMap<>();
    private final Map<String, String> authz = new LinkedHashMap<>();
    /** --object secret values by id (the raw bytes; a user of one asks for them as it needs them). */
    private final Map<String, byte[]> secrets = new LinkedHashMap<>();

    {
        // an rbd node's key-secret: Ceph takes the key base64-encoded, as QEMU's rbd driver passes it
        graph.setSecrets(id -> secrets.containsKey(id) ? java.util.Base64.getEncoder().encodeToString(secrets.get(id)) : null);
    }
    private final Set<String> exportIds = new LinkedHashSet<>();
    /** Read by the SIGTERM handler while set-up may still add to it. */
    private final List<BlockExport> exports = new java.util.concurrent.CopyOnWriteArrayList<>();
    /** The NBD server (--nbd-server, nbd-server-start), or null. */
    private NbdServer nbdServer;
    private String pidfile;
    private int pidfileFd = -1;
    /** --chardev socket ids to their paths, and the monitors on them. */
    private final Map<String, Path> chardevs = new LinkedHashMap<>();
    private final List<QmpMonitor> monitors = new ArrayList<>();
    private final CountDownLatch stopped = new CountDownLatch(1);

    /**
     * The qemu-storage-daemon shape inside a config file ({@code run}): objects (TLS), nodes, the NBD server and
     * exports as JSON-like trees, keyed by id and node name (the server's tree empty when there is none).
     */
    public record Trees(Map<String, Map<String, Object>> objects, Map<String, Map<String, Object>> blockdevs,
            Map<String, Object> nbdServer, Map<String, Map<String, Object>> exports) {
    }

    /**
     * Builds the daemon a config file describes. Every error is added to errors, prefixed with the key it came
     * from; the daemon returned serves nothing until {@link #startServing()}.
     */
    public static StorageDaemon fromTrees(Trees trees, String objectPrefix, String blockdevPrefix, String nbdPrefix,
            String exportPrefix, List<String> errors) {
        StorageDaemon d = new StorageDaemon();
        eachTree(trees.objects(), "id", objectPrefix, errors, d::object);
        eachTree(trees.blockdevs(), "node-name", blockdevPrefix, errors, d::addNode);
        if (!trees.nbdServer().isEmpty()) {
            try {
                d.startNbdServer(new OptionReader(new LinkedHashMap<>(trees.nbdServer())));
            } catch (OptionException e) {
                errors.add(nbdPrefix.substring(0, nbdPrefix.length() - 1) + ": " + e.getMessage());
            }
        }
        eachTree(trees.exports(), "id", exportPrefix, errors, tree -> {
            tree.putIfAbsent("type", "vhost-user-blk");
            d.export(new OptionReader(tree));
        });
        return d;
    }

    /** What a config file's tree of one kind (objects, nodes, exports) makes. */
    private interface TreeAction {
        void apply(Map<String, Object> tree) throws OptionException;
    }

    /** Applies action to every tree, its map key as idKey unless the tree names it; errors prefixed with the key. */
    private static void eachTree(Map<String, Map<String, Object>> trees, String idKey, String prefix, List<String> errors,
            TreeAction action) {
        for (Map.Entry<String, Map<String, Object>> t : trees.entrySet()) {
            try {
                Map<String, Object> tree = new LinkedHashMap<>(t.getValue());
                tree.putIfAbsent(idKey, t.getKey());
                action.apply(tree);
            } catch (OptionException e) {
                errors.add(prefix + t.getKey() + ": " + e.getMessage());
            }
        }
    }

    /** Serves every export on its own thread; returns at once. */
    public synchronized void startServing() {
        for (BlockExport e : exports) {
            e.start();
        }
    }

    /** The ids of the exports, in order. */
    public List<String> exportIds() {
        return exports.stream().map(BlockExport::id).toList();
    }

    /** Stops every export and releases nodes, sockets and locks. */
    public void shutdown() {
        stopAll();
        for (BlockExport e : exports) {
            e.awaitStop(5000);
        }
        close();
    }

    /** Runs the daemon; returns the exit status. Errors are one line on err, prefixed with the program. */
    public static int run(String program, String[] args, PrintStream err) {
        StorageDaemon d = new StorageDaemon();
        AtomicBoolean stopRequested = new AtomicBoolean();
        ShutdownSignals.onTerminate(() -> {
            stopRequested.set(true);
            d.stopAll();
        });
        try {
            d.configure(StorageDaemonMode.split(args), program);
        } catch (OptionException e) {
            err.println(program + ": " + e.getMessage());
            d.close();
            return ExitCodes.STARTUP_FAILURE;
        }
        try {
            d.writePidfile();
        } catch (StartupException e) {
            err.println(program + ": " + e.getMessage());
            d.close();
            return ExitCodes.STARTUP_FAILURE;
        }
        if (stopRequested.get()) {
            d.stopAll();
        }
        d.serveAll();
        d.close();
        return ExitCodes.OK;
    }

    private void configure(List<StorageDaemonMode.Opt> opts, String program) throws OptionException {
        for (StorageDaemonMode.Opt o : opts) {
            try {
                switch (o.name()) {
                    case "--object" -> object(KeyValue.parse(o.value(), "qom-type"));
                    case "--blockdev" -> graph.add(new OptionReader(KeyValue.parse(o.value(), null)));
                    case "--pidfile" -> pidfile = o.value();
                    case "--chardev" -> chardev(KeyValue.parse(o.value(), "backend"));
                    case "--nbd-server" -> startNbdServer(new OptionReader(KeyValue.parse(o.value(), null)));
                    default -> { }
                }
            } catch (OptionException e) {
                throw new OptionException(o.describe() + ": " + e.getMessage());
            }
        }
        // Exports after every node and object exists, in command-line order; monitors last.
        each(opts, "--export", "type", this::export);
        each(opts, "--monitor", "chardev", this::monitor);
        if (exports.isEmpty() && graph.isEmpty() && monitors.isEmpty()) {
            throw new OptionException("nothing to do: give --blockdev and --export options (or a device, see --help)");
        }
    }

    /** What one option does with its parsed value. */
    private interface OptionAction {
        void apply(OptionReader value) throws OptionException;
    }

    /** Runs action on every option called name, in order; an error names the option it came from. */
    private static void each(List<StorageDaemonMode.Opt> opts, String name, String impliedKey, OptionAction action)
            throws OptionException {
        for (StorageDaemonMode.Opt o : opts) {
            if (o.name().equals(name)) {
                try {
                    action.apply(new OptionReader(KeyValue.parse(o.value(), impliedKey)));
                } catch (OptionException e) {
                    throw new OptionException(o.describe() + ": " + e.getMessage());
                }
            }
        }
    }

    /** --chardev socket,id=ID,path=PATH,server=on,wait=off: the only chardev a monitor can use here. */
    private void chardev(Map<String, Object> tree) throws OptionException {
        OptionReader r = new OptionReader(tree);
        String backend = r.required("backend");
        String id = r.required("id");
        if (!backend.equals("socket")) {
            throw new OptionException("chardev backend '" + backend + "' is not supported (only socket)");
        }
        String path = r.required("path");
        if (!r.bool("server", false)) {
            throw new OptionException("chardev '" + id + "': only server=on sockets are supported");
        }
        if (r.bool("wait", true)) {
            throw new OptionException("chardev '" + id + "': wait=on is not supported; give wait=off");
        }
        r.finish();
        if (chardevs.putIfAbsent(id, Path.of(path)) != null) {
            throw new OptionException("attempt to add duplicate chardev '" + id + "'");
        }
    }

    /** --monitor [chardev=]ID[,mode=control][,pretty=off]: a QMP monitor on that chardev. */
    private void monitor(OptionReader r) throws OptionException {
        String id = r.required("chardev");
        String mode = r.string("mode", "control");
        if (!mode.equals("control")) {
            throw new OptionException("monitor mode '" + mode + "' is not supported (only control: QMP)");
        }
        r.bool("pretty", false);
        r.finish();
        Path path = chardevs.get(id);
        if (path == null) {
            throw new OptionException("chardev \"" + id + "\" not found");
        }
        QmpMonitor m = new QmpMonitor(this::stopAll);
        new BlockQmpCommands(this, m).register();
        try {
            m.listen(path);
        } catch (StartupException e) {
            throw new OptionException(e.getMessage());
        }
        monitors.add(m);
    }

    void event(String name, com.fasterxml.jackson.databind.node.ObjectNode data) {
        for (QmpMonitor m : monitors) {
            m.event(name, data);
        }
    }

    // ------------------------------------------------------------------ used by the QMP commands

    synchronized Map<String, BlockNode> nodes() {
        return graph.nodes();
    }

    List<BlockExport> exports() {
        return List.copyOf(exports);
    }

    /** --nbd-server, nbd-server-start: one server per daemon, serving at once. */
    synchronized void startNbdServer(OptionReader r) throws OptionException {
        NbdServerConfig config = NbdServerConfig.parse(r);
        if (nbdServer != null) {
            throw new OptionException("NBD server already running");
        }
        TlsCredentials tls = null;
        if (config.tlsCreds() != null) {
            tls = tlsCreds.get(config.tlsCreds());
            if (tls == null) {
                throw new OptionException("No TLS credentials with id '" + config.tlsCreds() + "'");
            }
            if (config.tlsAuthz() != null) {
                String identity = authz.get(config.tlsAuthz());
                if (identity == null) {
                    throw new OptionException("No authorization object with id '" + config.tlsAuthz() + "'");
                }
                try {
                    tls = tls.withIdentity(identity);
                } catch (StartupException e) {
                    throw new OptionException(e.getMessage());
                }
            }
        }
        try {
            nbdServer = config.open();
        } catch (StartupException e) {
            throw new OptionException(e.getMessage());
        }
        if (tls != null) {
            nbdServer.requireTls(tls);
        } else if (config.type().equals("inet")) {
            LOG.warnf("NBD server on %s has no TLS: anyone who can connect can read its exports (and write the writable ones)",
                    nbdServer.where());
        }
        nbdServer.start();
    }

    /** nbd-server-stop: every NBD export goes (BLOCK_EXPORT_DELETED for each), then the server. */
    synchronized void stopNbdServer() throws OptionException {
        if (nbdServer == null) {
            throw new OptionException("NBD server not running");
        }
        for (BlockExport e : exports) {
            if (e instanceof NbdExport) {
                deleteExport(e.id(), true);
            }
        }
        nbdServer.close();
        nbdServer = null;
    }

    /** The NBD server's TCP port (tests bind port 0), or -1. */
    public synchronized int nbdPort() {
        return nbdServer == null ? -1 : nbdServer.port();
    }

    /** blockdev-add: a node from a JSON tree like --blockdev's. */
    synchronized void addNode(Map<String, Object> tree) throws OptionException {
        graph.add(new OptionReader(tree));
    }

    /** blockdev-del: a node no export (or raw node) uses. */
    synchronized void deleteNode(String name) throws OptionException {
        BlockNode node = graph.get(name);
        for (BlockExport e : exports) {
            if (node != null && (e.node() == node || e.nodeName().equals(name))) {
                throw new OptionException("Node '" + name + "' is busy: block device is in use by block export '" + e.id() + "'");
            }
        }
        graph.delete(name);
    }

    /** block-export-add: an export from a JSON tree like --export's, serving at once. */
    synchronized void addExport(Map<String, Object> tree) throws OptionException {
        export(new OptionReader(tree));
        exports.get(exports.size() - 1).start();
    }

    /**
     * block-export-del: safe refuses while a frontend is connected; hard disconnects it. The export is gone
     * when this returns, and BLOCK_EXPORT_DELETED has been sent.
     */
    synchronized void deleteExport(String id, boolean hard) throws OptionException {
        BlockExport e = exports.stream().filter(x -> x.id().equals(id)).findFirst().orElse(null);
        if (e == null) {
            throw new OptionException("Export '" + id + "' is not found");
        }
        try {
            e.delete(hard);
        } catch (StartupException ex) {
            throw new OptionException(ex.getMessage());
        }
        exports.remove(e);
        exportIds.remove(id);
        var data = com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.objectNode().put("id", id);
        event("BLOCK_EXPORT_DELETED", data);
    }

    /** block_resize: the node's storage grows or shrinks; every export over it tells its frontend. */
    synchronized long resize(String name, long size) throws OptionException {
        BlockNode node = graph.get(name);
        if (node == null) {
            throw new OptionException("Cannot find device='' nor node-name='" + name + "'");
        }
        if (size < 0) {
            throw new OptionException("Parameter 'size' expects a non-negative value");
        }
        try {
            node.resize(size);
        } catch (StartupException e) {
            throw new OptionException(e.getMessage());
        }
        for (BlockExport e : exports) {
            if (graph.uses(e.node(), name)) {
                e.sizeChanged();
            }
        }
        return node.size();
    }

    private void object(Map<String, Object> tree) throws OptionException {
        OptionReader r = new OptionReader(tree);
        String type = r.required("qom-type");
        switch (type) {
            case "iothread" -> iothread(r);
            case "tls-creds-x509" -> tlsCredsX509(r);
            case "authz-simple" -> authzSimple(r);
            case "secret" -> secret(r);
            default -> throw new OptionException("object type '" + type + "' is not supported (iothread, secret, tls-creds-x509, authz-simple)");
        }
    }

    /** tls-creds-x509,id=,dir=,endpoint=server[,verify-peer=on]: the NBD server's certificates (QEMU's file names). */
    private void tlsCredsX509(OptionReader r) throws OptionException {
        String id = r.required("id");
        String dir = r.required("dir");
        String endpoint = r.string("endpoint", "client");
        boolean verifyPeer = r.bool("verify-peer", true);
        r.finish();
        if (!endpoint.equals("server")) {
            throw new OptionException("tls-creds-x509 '" + id + "': only endpoint=server is supported (the NBD server's side)");
        }
        objectIdFree(id);
        try {
            tlsCreds.put(id, TlsCredentials.load(id, Path.of(dir), verifyPeer));
        } catch (StartupException e) {
            throw new OptionException(e.getMessage());
        }
    }

    /** authz-simple,id=,identity=DN: the one client certificate name the NBD server lets in. */
    private void authzSimple(OptionReader r) throws OptionException {
        String id = r.required("id");
        String identity = r.required("identity");
        r.finish();
        objectIdFree(id);
        authz.put(id, identity);
    }

    /**
     * secret,id=,data=|file=[,format=raw|base64]: a value (an RBD key) kept out of the options that name it.
     * Secrets encrypted with another secret (keyid=, iv=) are not supported.
     */
    private void secret(OptionReader r) throws OptionException {
        String id = r.required("id");
        String data = r.string("data", null);
        String file = r.string("file", null);
        String format = r.string("format", "raw");
        if (r.has("keyid") || r.has("iv")) {
            throw new OptionException("secret '" + id + "': encrypted secrets (keyid=, iv=) are not supported");
        }
        r.finish();
        if ((data == null) == (file == null)) {
            throw new OptionException("secret '" + id + "': exactly one of 'data' and 'file' must be given");
        }
        if (!format.equals("raw") && !format.equals("base64")) {
            throw new OptionException("secret '" + id + "': Parameter 'format' does not accept value '" + format + "'");
        }
        byte[] value;
        if (data != null) {
            value = data.getBytes(StandardCharsets.UTF_8);
        } else {
            try {
                value = java.nio.file.Files.readAllBytes(Path.of(file));
            } catch (java.io.IOException e) {
                throw new OptionException("secret '" + id + "': cannot read '" + file + "': " + e.getMessage());
            }
        }
        if (format.equals("base64")) {
            try {
                value = java.util.Base64.getDecoder().decode(new String(value, StandardCharsets.US_ASCII).strip());
            } catch (IllegalArgumentException e) {
                throw new OptionException("secret '" + id + "': the value is not base64: " + e.getMessage());
            }
        }
        objectIdFree(id);
        secrets.put(id, value);
    }

    /** Objects of every kind share one id space, as QEMU's. */
    private void objectIdFree(String id) throws OptionException {
        if (tlsCreds.containsKey(id) || authz.containsKey(id) || iothreads.containsKey(id) || secrets.containsKey(id)) {
            throw new OptionException("attempt to add duplicate property '" + id + "' to object");
        }
    }

    private void iothread(OptionReader r) throws OptionException {
        String id = r.required("id");
        // poll-max-ns: how long the queue threads of exports on this iothread poll their rings and
        // completions before sleeping (QEMU's adaptive window; grow/shrink are accepted, our window is fixed).
        long pollMaxNs = r.has("poll-max-ns") ? r.integer("poll-max-ns", 0, 0, Long.MAX_VALUE) : -1;
        r.integer("poll-grow", 0, 0, Long.MAX_VALUE);
        r.integer("poll-shrink", 0, 0, Long.MAX_VALUE);
        r.finish();
        objectIdFree(id);
        iothreads.put(id, pollMaxNs);
    }

    private void export(OptionReader r) throws OptionException {
        String type = r.required("type");
        switch (type) {
            case "vhost-user-blk" -> vhostUserBlkExport(r);
            case "nbd" -> nbdExport(r);
            case "fuse" -> fuseExport(r);
            case "vduse-blk" -> throw new OptionException(
                    "export type 'vduse-blk' needs the kernel's vduse module, which this machine does not have");
            default -> throw new OptionException("export type '" + type + "' is not supported (vhost-user-blk or nbd)");
        }
    }

    /** --export type=nbd: the node under a name on the NBD server, which must be running. */
    private void nbdExport(OptionReader r) throws OptionException {
        String id = r.required("id");
        String nodeName = r.required("node-name");
        String name = r.string("name", nodeName);
        String description = r.string("description", null);
        boolean writable = r.bool("writable", false);
        r.bool("writethrough", false);
        String iothread = r.string("iothread", null);
        r.bool("fixed-iothread", false);
        boolean depth = r.bool("allocation-depth", false);
        if (r.nonEmptyList("bitmaps")) {
            throw new OptionException("bitmaps: dirty bitmaps are not supported (there are none to export)");
        }
        r.finish();
        BlockNode node = exportedNode(id, nodeName, writable, iothread);
        if (name.getBytes(java.nio.charset.StandardCharsets.UTF_8).length > 4096) {
            throw new OptionException("export name '" + name.substring(0, 32) + "...' too long");
        }
        if (description != null && description.getBytes(java.nio.charset.StandardCharsets.UTF_8).length > 4096) {
            throw new OptionException("description '" + description.substring(0, 32) + "...' too long");
        }
        if (nbdServer == null) {
            throw new OptionException("NBD server not running");
        }
        NbdExport e = new NbdExport(id, name, description, nodeName, node, writable, depth);
        try {
            e.addTo(nbdServer);
        } catch (StartupException ex) {
            throw new OptionException(ex.getMessage());
        }
        exportIds.add(id);
        exports.add(e);
    }

    /** --export type=fuse,mountpoint=FILE[,growable=][,allow-other=on|off|auto]: the node as a regular file. */
    private void fuseExport(OptionReader r) throws OptionException {
        String id = r.required("id");
        String nodeName = r.required("node-name");
        String mountpoint = r.required("mountpoint");
        boolean writable = r.bool("writable", false);
        boolean growable = r.bool("growable", false);
        String allowOther = r.string("allow-other", "auto");
        r.bool("writethrough", false);
        String iothread = r.string("iothread", null);
        r.bool("fixed-iothread", false);
        r.finish();
        if (!allowOther.equals("on") && !allowOther.equals("off") && !allowOther.equals("auto")) {
            throw new OptionException("allow-other must be on, off or auto, is '" + allowOther + "'");
        }
        BlockNode node = exportedNode(id, nodeName, writable, iothread);
        try {
            exports.add(FuseExport.mount(id, nodeName, node, Path.of(mountpoint), writable, growable, allowOther));
        } catch (StartupException e) {
            throw new OptionException(e.getMessage());
        }
        exportIds.add(id);
    }

    /** nbd-server-add (deprecated in QEMU, still used): an NBD export whose id is its name. */
    synchronized void addNbdExport(Map<String, Object> args) throws OptionException {
        Map<String, Object> tree = new LinkedHashMap<>();
        OptionReader r = new OptionReader(args);
        String device = r.required("device");
        String name = r.string("name", device);
        tree.put("type", "nbd");
        tree.put("id", name);
        tree.put("node-name", device);
        tree.put("name", name);
        if (r.has("description")) {
            tree.put("description", r.string("description", null));
        }
        tree.put("writable", r.bool("writable", false));
        if (r.nonEmptyList("bitmap")) {
            throw new OptionException("bitmap: dirty bitmaps are not supported (there are none to export)");
        }
        r.finish();
        export(new OptionReader(tree));
    }

    /** nbd-server-remove: the NBD export with that id. */
    synchronized void removeNbdExport(String id, boolean hard) throws OptionException {
        if (nbdServer == null) {
            throw new OptionException("NBD server not running");
        }
        BlockExport e = exports.stream().filter(x -> x.id().equals(id)).findFirst().orElse(null);
        if (!(e instanceof NbdExport)) {
            throw new OptionException("Export '" + id + "' is not found");
        }
        deleteExport(id, hard);
    }

    /** --export type=vhost-user-blk: a socket of its own, served on a thread of its own. */
    private void vhostUserBlkExport(OptionReader r) throws OptionException {
        String id = r.required("id");
        String nodeName = r.required("node-name");
        boolean writable = r.bool("writable", false);
        boolean writethrough = r.bool("writethrough", false);
        String iothread = r.string("iothread", null);
        r.bool("fixed-iothread", false);
        int queues = (int) r.integer("num-queues", 1, 1, MAX_QUEUES);
        long lbs = r.size("logical-block-size", 512);
        if (lbs < 512 || lbs > 2 * 1024 * 1024 || Long.bitCount(lbs) != 1) {
            throw new OptionException("logical-block-size must be a power of two between 512 and 2097152");
        }
        OptionReader addr = r.child("addr");
        if (addr == null) {
            throw new OptionException("Parameter 'addr' is missing");
        }
        String addrType = addr.required("type");
        String path = null;
        int fd = -1;
        switch (addrType) {
            case "unix" -> path = addr.required("path");
            case "fd" -> fd = addr.fileDescriptor("str");
            default -> throw new OptionException("addr.type '" + addrType + "' is not supported (unix or fd)");
        }
        addr.finish();
        r.finish();
        BlockNode node = exportedNode(id, nodeName, writable, iothread);
        if (node.size() < lbs) {
            throw new OptionException("node '" + nodeName + "' is smaller than one logical block");
        }
        VirtioBlkDevice device = new VirtioBlkDevice(node, writable, queues, (int) lbs, writethrough, null);
        if (iothread != null && iothreads.get(iothread) >= 0) {
            device.setPollNanos(iothreads.get(iothread));
        }
        try {
            BackendServer server = path != null ? BackendServer.listen(Path.of(path)) : BackendServer.inherit(fd);
            exports.add(new VhostUserBlkExport(id, nodeName, device, server));
            exportIds.add(id);
        } catch (StartupException e) {
            throw new OptionException(e.getMessage());
        }
    }

    /**
     * The checks every export makes of its common options: the id is new, the iothread and the node exist, a
     * writable export's node is writable. Returns the node; the id is taken once the export exists.
     */
    private BlockNode exportedNode(String id, String nodeName, boolean writable, String iothread) throws OptionException {
        if (exportIds.contains(id)) {
            throw new OptionException("Block export id '" + id + "' is already in use");
        }
        if (iothread != null && !iothreads.containsKey(iothread)) {
            throw new OptionException("Cannot find iothread '" + iothread + "'");
        }
        BlockNode node = graph.get(nodeName);
        if (node == null) {
            throw new OptionException("Cannot find node '" + nodeName + "'");
        }
        if (writable && node.readOnly()) {
            throw new OptionException("Cannot export read-only node '" + nodeName + "' as writable");
        }
        return node;
    }

    /** Writes the pid once every export listens; locked so two daemons cannot share a pid file. */
    private void writePidfile() throws StartupException {
        if (pidfile == null) {
            return;
        }
        try {
            int fd = LibC.open(pidfile, LibC.O_RDWR | LibC.O_CREAT | LibC.O_CLOEXEC, 0644);
            if (!FileLocks.tryLock(fd, true)) {
                LibC.close(fd);
                throw new StartupException("Cannot lock pid file '" + pidfile + "': another daemon uses it");
            }
            try (Arena arena = Arena.ofConfined()) {
                LibC.ftruncate(fd, 0);
                byte[] pid = (LibC.getpid() + "\n").getBytes(StandardCharsets.US_ASCII);
                MemorySegment buf = arena.allocateFrom(ValueLayout.JAVA_BYTE, pid);
                if (LibC.rawPwrite(fd, buf, pid.length, 0) != pid.length) {
                    LibC.close(fd);
                    throw new StartupException("Cannot write pid file '" + pidfile + "'");
                }
            }
            pidfileFd = fd;
        } catch (NativeCallException e) {
            throw new StartupException("Cannot open pid file '" + pidfile + "': " + e.getMessage());
        }
    }

    /** Serves every export on a thread of its own until SIGTERM or QMP quit. */
    private void serveAll() {
        startServing();
        try {
            stopped.await();
        } catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
        }
        for (BlockExport e : exports) {
            e.requestStop();
        }
        for (BlockExport e : exports) {
            e.awaitStop(0);
        }
    }

    private void stopAll() {
        stopped.countDown();
        for (BlockExport e : exports) {
            e.requestStop();
        }
    }

    private void close() {
        for (QmpMonitor m : monitors) {
            m.close();
        }
        for (BlockExport e : exports) {
            e.close();
        }
        NbdServer nbd;
        synchronized (this) {
            nbd = nbdServer;
            nbdServer = null;
        }
        if (nbd != null) {
            nbd.close();
        }
        graph.close();
        if (pidfileFd >= 0) {
            LibC.unlink(pidfile);
            LibC.close(pidfileFd);
        }
    }
}

package dev.vhostappliance.block.graph;

import dev.vhostappliance.block.io.IoEngineKind;
import dev.vhostappliance.block.node.BlockNode;
import dev.vhostappliance.block.node.FileNode;
import dev.vhostappliance.block.node.NullNode;
import dev.vhostappliance.block.node.RawNode;
import dev.vhostappliance.block.rbd.RbdNode;
import dev.vhostappliance.block.rbd.RbdOptions;
import dev.vhostappliance.cli.StartupException;
import dev.vhostappliance.block.qcow2.Qcow2FormatException;
import dev.vhostappliance.block.qcow2.Qcow2Header;
import dev.vhostappliance.block.qcow2.Qcow2Image;
import dev.vhostappliance.block.qcow2.Qcow2Node;
import dev.vhostappliance.block.qcow2.Qcow2Options;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

/**
 * The block nodes of one process by node name, built from qemu-storage-daemon's {@code --blockdev} trees
 * (command line, config file and QMP {@code blockdev-add} alike): {@code file}/{@code host_device},
 * {@code null-co}, {@code rbd}, and the formats {@code raw} and {@code qcow2} over another node. Exports look their node up here. Not thread-safe:
 * its owner serialises changes.
 */
public final class BlockGraph {
    public static final long NULL_CO_DEFAULT_SIZE = 1L << 30;

    private final Map<String, BlockNode> nodes = new LinkedHashMap<>();
    private int autoNames;

    /** The node called name, or null. */
    public BlockNode get(String name) {
        return nodes.get(name);
    }

    public boolean isEmpty() {
        return nodes.isEmpty();
    }

    /** A copy of the nodes by name, in the order they were added. */
    public Map<String, BlockNode> nodes() {
        return new LinkedHashMap<>(nodes);
    }

    /**
     * Adds the node a blockdev tree describes (node-name required), with the nodes it implies; if any of them
     * fails, none is added.
     */
    public BlockNode add(OptionReader r) throws OptionException {
        Set<String> before = new HashSet<>(nodes.keySet());
        try {
            return add(r, r.required("node-name"));
        } catch (OptionException | RuntimeException e) {
            List<String> added = new ArrayList<>(nodes.keySet());
            added.removeAll(before);
            Collections.reverse(added);
            for (String n : added) {
                nodes.remove(n).close();
            }
            throw e;
        }
    }

    /** True if node is the node called name or reads through it (at any depth). */
    public boolean uses(BlockNode node, String name) {
        BlockNode target = nodes.get(name);
        return target != null && reaches(node, target);
    }

    private static boolean reaches(BlockNode node, BlockNode target) {
        if (node == target) {
            return true;
        }
        for (BlockNode child : node.children()) {
            if (reaches(child, target)) {
                return true;
            }
        }
        return false;
    }

    /** Removes a node that no other node reads through (the caller checked exports); closes it. */
    public void delete(String name) throws OptionException {
        BlockNode node = nodes.get(name);
        if (node == null) {
            throw new OptionException("Failed to find node with node-name='" + name + "'");
        }
        for (Map.Entry<String, BlockNode> other : nodes.entrySet()) {
            if (!other.getKey().equals(name) && other.getValue() != node && other.getValue().children().contains(node)) {
                throw new OptionException("Node '" + name + "' is busy: node '" + other.getKey() + "' reads through it");
            }
        }
        nodes.remove(name);
        if (!nodes.containsValue(node)) {
            node.close();
            // nodes made implicitly for this one (an inline file, a backing file from the header) go with it
            for (BlockNode child : node.children()) {
                String childName = nameOf(child);
                if (childName != null && childName.startsWith(IMPLICIT) && !usedByOthers(child)) {
                    delete(childName);
                }
            }
        }
    }

    private String nameOf(BlockNode node) {
        for (Map.Entry<String, BlockNode> e : nodes.entrySet()) {
            if (e.getValue() == node) {
                return e.getKey();
            }
        }
        return null;
    }

    private boolean usedByOthers(BlockNode child) {
        for (BlockNode n : nodes.values()) {
            if (n != child && n.children().contains(child)) {
                return true;
            }
        }
        return false;
    }

    /** Closes every node once, each before the nodes it reads through (a format flushes into its file). */
    public void close() {
        List<BlockNode> order = new ArrayList<>(new LinkedHashSet<>(nodes.values()));
        Collections.reverse(order); // children are added before their parents
        order.forEach(BlockNode::close);
        nodes.clear();
    }

    /** Names of nodes the graph made itself, as QEMU's "#blockNNN". */
    static final String IMPLICIT = "#block";

    /** Creates the node described by r under name (the caller read node-name, if any). */
    private BlockNode add(OptionReader r, String name) throws OptionException {
        if (nodes.containsKey(name)) {
            throw new OptionException("Duplicate nodes with node-name='" + name + "'");
        }
        String driver = r.required("driver");
        boolean readOnly = r.bool("read-only", false);
        BlockNode node = switch (driver) {
            case "file", "host_device" -> file(r, name, readOnly);
            case "null-co" -> {
                long size = r.size("size", NULL_CO_DEFAULT_SIZE);
                boolean readZeroes = r.bool("read-zeroes", false);
                if (r.integer("latency-ns", 0, 0, Long.MAX_VALUE) != 0) {
                    throw new OptionException("Parameter 'latency-ns' is not supported");
                }
                r.finish();
                yield new NullNode(name, size, readZeroes, readOnly);
            }
            case "raw" -> raw(r, name, readOnly);
            case "qcow2" -> qcow2(r, name, readOnly);
            case "rbd" -> rbd(r, name, readOnly);
            default -> throw new OptionException("Unknown driver '" + driver + "' (supported: file, host_device, null-co, raw, qcow2, rbd)");
        };
        nodes.put(name, node);
        return node;
    }

    private FileNode file(OptionReader r, String name, boolean readOnly) throws OptionException {
        String filename = r.required("filename");
        boolean autoReadOnly = r.bool("auto-read-only", false);
        String locking = r.string("locking", "auto");
        if (!Set.of("auto", "on", "off").contains(locking)) {
            throw new OptionException("Parameter 'locking' does not accept value '" + locking + "'");
        }
        String discard = r.string("discard", "ignore");
        if (!Set.of("ignore", "off", "unmap", "on").contains(discard)) {
            throw new OptionException("Parameter 'discard' does not accept value '" + discard + "'");
        }
        String aio = r.string("aio", IoEngineKind.IO_URING.option());
        IoEngineKind engine = IoEngineKind.fromOption(aio);
        if (engine == null) {
            throw new OptionException("Parameter 'aio' does not accept value '" + aio + "'");
        }
        r.integer("aio-max-batch", 0, 0, Long.MAX_VALUE); // we submit a whole batch at once anyway
        boolean noFlush = false;
        boolean direct = false;
        OptionReader cache = r.child("cache");
        if (cache != null) {
            direct = cache.bool("direct", false);
            noFlush = cache.bool("no-flush", false);
            cache.finish();
        }
        r.finish();
        if (engine == IoEngineKind.NATIVE && !direct) {
            throw new OptionException("aio=native was specified, but it requires cache.direct=on, which was not specified.");
        }
        try {
            return FileNode.open(name, Path.of(filename), new FileNode.Options(readOnly, autoReadOnly,
                    !locking.equals("off"), discard.equals("unmap") || discard.equals("on"), noFlush, direct, engine));
        } catch (StartupException e) {
            throw new OptionException(e.getMessage());
        }
    }

    /**
     * An rbd node (BlockdevOptionsRbd): the image in the cluster, the key from a {@code secret} object named
     * by key-secret. Joining the cluster and opening the image are bounded by timeouts (see RbdImage).
     */
    private BlockNode rbd(OptionReader r, String name, boolean readOnly) throws OptionException {
        String pool = r.required("pool");
        String image = r.required("image");
        String namespace = r.string("namespace", null);
        String snapshot = r.string("snapshot", null);
        String conf = r.string("conf", null);
        String user = r.string("user", null);
        String keySecret = r.string("key-secret", null);
        List<String> auth = r.strings("auth-client-required");
        for (String a : auth) {
            if (!a.equals("cephx") && !a.equals("none")) {
                throw new OptionException("Parameter 'auth-client-required' does not accept value '" + a + "' (cephx, none)");
            }
        }
        List<RbdOptions.Server> servers = new ArrayList<>();
        for (OptionReader s : r.objects("server")) {
            String host = s.required("host");
            String port = s.required("port");
            s.finish();
            servers.add(new RbdOptions.Server(host, port));
        }
        if (r.has("encrypt")) {
            throw new OptionException("Parameter 'encrypt' is not supported (LUKS-encrypted RBD images)");
        }
        String discard = r.string("discard", "ignore");
        if (!Set.of("ignore", "off", "unmap", "on").contains(discard)) {
            throw new OptionException("Parameter 'discard' does not accept value '" + discard + "'");
        }
        boolean exclusive = r.bool("x-exclusive-lock", true);
        boolean direct = false;
        OptionReader cache = r.child("cache");
        if (cache != null) {
            direct = cache.bool("direct", false);
            cache.finish();
        }
        r.finish();
        String key = null;
        if (keySecret != null) {
            key = secrets.apply(keySecret);
            if (key == null) {
                throw new OptionException("No secret with id '" + keySecret + "'");
            }
        }
        try {
            return RbdNode.open(name, new RbdOptions(pool, namespace, image, snapshot, conf, user, key, auth, servers,
                    readOnly, direct, discard.equals("unmap") || discard.equals("on"), exclusive));
        } catch (StartupException e) {
            throw new OptionException(e.getMessage());
        }
    }

    /** Where key-secret= finds a secret's value by id (the daemon's secret objects); none by default. */
    private java.util.function.Function<String, String> secrets = id -> null;

    public void setSecrets(java.util.function.Function<String, String> secrets) {
        this.secrets = secrets;
    }

    /** The node r's key names: a reference to an existing node, or a tree made into an implicit one. */
    private BlockNode childNode(OptionReader r, String key, boolean readOnly) throws OptionException {
        if (r.isObject(key)) {
            OptionReader child = r.child(key);
            if (readOnly) {
                child.setDefault("read-only", true); // as in QEMU, children inherit read-only
            }
            String childName = child.has("node-name") ? child.required("node-name") : IMPLICIT + (autoNames++);
            return add(child, childName);
        }
        String ref = r.required(key);
        BlockNode node = nodes.get(ref);
        if (node == null) {
            throw new OptionException("Cannot find device='' nor node-name='" + ref + "'");
        }
        return node;
    }

    private BlockNode raw(OptionReader r, String name, boolean readOnly) throws OptionException {
        BlockNode file = childNode(r, "file", readOnly);
        long offset = r.size("offset", 0);
        long size = r.has("size") ? r.size("size", 0) : -1;
        r.finish();
        if (offset > file.size() || (size >= 0 && size > file.size() - offset)) {
            throw new OptionException("The sum of offset (" + offset + ") and size (" + Math.max(size, 0)
                    + ") has to be smaller or equal to the actual size of the containing file (" + file.size() + ")");
        }
        if (offset % 512 != 0 || (size >= 0 && size % 512 != 0)) {
            throw new OptionException("raw offset and size must be multiples of 512");
        }
        if (offset == 0 && size < 0 && (!readOnly || file.readOnly())) {
            return file; // the raw format over a file is that file
        }
        return new RawNode(name, file, offset, size, readOnly);
    }

    /**
     * A qcow2 node over its file node; its backing node from {@code backing=} (a node, a tree, or null for
     * none) or else from the image header, opened read-only with the format the header names or, without
     * one, the format its first bytes show; the whole chain, checked for loops.
     */
    private BlockNode qcow2(OptionReader r, String name, boolean readOnly) throws OptionException {
        BlockNode file = childNode(r, "file", readOnly);
        boolean backingGiven = r.has("backing");
        BlockNode backing = null;
        String backingRef = r.isObject("backing") ? null : r.string("backing", null);
        if (r.isObject("backing") || (backingRef != null && !backingRef.equals("null"))) {
            backing = childNode(r, "backing", true);
        } // backing=null (JSON null or the keyval string): no backing file, whatever the header says
        Qcow2Options options = qcow2Options(r, readOnly);
        r.finish();
        Qcow2Image image = openQcow2(name, file, options);
        Qcow2Node node = new Qcow2Node(image);
        try {
            if (backing != null) {
                image.setBacking(backing); // an existing node: it cannot read through this new one
            } else if (!backingGiven && image.backingFile() != null) {
                Set<Path> chain = new HashSet<>();
                chain.add(realPath(file));
                image.setBacking(openBackingChain(image, file, chain));
            }
        } catch (OptionException e) {
            image.close();
            throw e;
        }
        return node;
    }

    private static Qcow2Image openQcow2(String name, BlockNode file, Qcow2Options options) throws OptionException {
        try {
            return Qcow2Image.open(name, file, options);
        } catch (Qcow2FormatException e) {
            throw new OptionException("Could not open node '" + name + "': " + e.getMessage());
        }
    }

    private Qcow2Options qcow2Options(OptionReader r, boolean readOnly) throws OptionException {
        long cacheSize = r.has("cache-size") ? r.size("cache-size", 0) : -1;
        long l2CacheSize = r.has("l2-cache-size") ? r.size("l2-cache-size", 0) : -1;
        long entrySize = r.has("l2-cache-entry-size") ? r.size("l2-cache-entry-size", 0) : -1;
        long refcountCacheSize = r.has("refcount-cache-size") ? r.size("refcount-cache-size", 0) : -1;
        r.integer("cache-clean-interval", 0, 0, Integer.MAX_VALUE); // caches are kept; nothing to clean
        String discard = r.string("discard", "ignore");
        if (!Set.of("ignore", "off", "unmap", "on").contains(discard)) {
            throw new OptionException("Parameter 'discard' does not accept value '" + discard + "'");
        }
        boolean passRequest = r.bool("pass-discard-request", true);
        r.bool("pass-discard-snapshot", true);
        boolean passOther = r.bool("pass-discard-other", false);
        Boolean lazy = r.has("lazy-refcounts") ? r.bool("lazy-refcounts", false) : null;
        boolean overlap = true;
        if (r.isObject("overlap-check")) {
            OptionReader o = r.child("overlap-check");
            overlap = !"none".equals(o.string("template", "cached"));
            o.finish();
        } else {
            String mode = r.string("overlap-check", "cached");
            if (!Set.of("none", "constant", "cached", "all").contains(mode)) {
                throw new OptionException("Parameter 'overlap-check' does not accept value '" + mode + "'");
            }
            overlap = !mode.equals("none");
        }
        if (r.has("data-file")) {
            throw new OptionException("Parameter 'data-file' is not supported (external data files)");
        }
        if (r.has("encrypt")) {
            throw new OptionException("Parameter 'encrypt' is not supported (encrypted images)");
        }
        return new Qcow2Options(readOnly, cacheSize, l2CacheSize, entrySize, refcountCacheSize,
                discard.equals("unmap") || discard.equals("on"), passRequest, passOther, lazy, overlap);
    }

    /** Opens the backing file image names (relative to the directory of its file), read-only, and its own chain. */
    private BlockNode openBackingChain(Qcow2Image image, BlockNode imageFile, Set<Path> chain) throws OptionException {
        if (!(imageFile instanceof FileNode f)) {
            throw new OptionException("Cannot open the backing file of node '" + image.name()
                    + "': its file is not a file; give backing=NODE");
        }
        Path path = f.path().toAbsolutePath().getParent().resolve(image.backingFile());
        Path real;
        try {
            real = path.toRealPath();
        } catch (IOException e) {
            throw new OptionException("Could not open backing file of node '" + image.name() + "': " + path + ": " + e.getMessage());
        }
        if (!chain.add(real)) {
            throw new OptionException("Backing chain of node '" + image.name() + "' loops back to " + real);
        }
        FileNode backingFile;
        try {
            backingFile = FileNode.open(IMPLICIT + (autoNames++), path, FileNode.Options.defaults(true)
                    .withAio(f.engineKind()).withDirect(f.memoryAlignment() > 1));
        } catch (StartupException e) {
            throw new OptionException("Could not open backing file of node '" + image.name() + "': " + e.getMessage());
        }
        nodes.put(backingFile.name(), backingFile);
        String format = image.backingFormat() != null ? image.backingFormat() : probe(backingFile);
        switch (format) {
            case "raw" -> {
                return backingFile;
            }
            case "qcow2" -> {
                String name = IMPLICIT + (autoNames++);
                Qcow2Image backing = openQcow2(name, backingFile, Qcow2Options.defaults(true));
                Qcow2Node node = new Qcow2Node(backing);
                nodes.put(name, node);
                if (backing.backingFile() != null) {
                    backing.setBacking(openBackingChain(backing, backingFile, chain));
                }
                return node;
            }
            default -> throw new OptionException("Backing file " + path + " has format '" + format + "', which is not supported");
        }
    }

    private static Path realPath(BlockNode file) {
        if (file instanceof FileNode f) {
            try {
                return f.path().toRealPath();
            } catch (IOException e) {
                return f.path().toAbsolutePath();
            }
        }
        return Path.of("/dev/null/" + System.identityHashCode(file));
    }

    /** qcow2 if the file starts with its magic, raw otherwise. */
    private static String probe(BlockNode file) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment head = arena.allocate(512, 4096);
            if (file.readSync(head, 0) == 0 && Qcow2Header.hasMagic(head)) {
                return "qcow2";
            }
        }
        return "raw";
    }
}

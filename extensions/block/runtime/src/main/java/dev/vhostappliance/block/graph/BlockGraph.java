package dev.vhostappliance.block.graph;

import dev.vhostappliance.block.io.IoEngineKind;
import dev.vhostappliance.block.node.BlockNode;
import dev.vhostappliance.block.node.FileNode;
import dev.vhostappliance.block.node.NullNode;
import dev.vhostappliance.block.node.RawNode;
import dev.vhostappliance.cli.StartupException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

/**
 * The block nodes of one process by node name, built from qemu-storage-daemon's {@code --blockdev} trees
 * (command line, config file and QMP {@code blockdev-add} alike): {@code file}/{@code host_device},
 * {@code null-co}, and {@code raw} over another node. Exports look their node up here. Not thread-safe:
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

    /** Adds the node a blockdev tree describes (node-name required). */
    public BlockNode add(OptionReader r) throws OptionException {
        return add(r, r.required("node-name"));
    }

    /** True if node is the node called name or reads through it. */
    public boolean uses(BlockNode node, String name) {
        BlockNode target = nodes.get(name);
        return node == target || (node instanceof RawNode raw && raw.under() == target);
    }

    /** Removes a node that no other node reads through (the caller checked exports); closes it. */
    public void delete(String name) throws OptionException {
        BlockNode node = nodes.get(name);
        if (node == null) {
            throw new OptionException("Failed to find node with node-name='" + name + "'");
        }
        for (Map.Entry<String, BlockNode> other : nodes.entrySet()) {
            if (!other.getKey().equals(name) && other.getValue() instanceof RawNode raw && raw.under() == node) {
                throw new OptionException("Node '" + name + "' is busy: it is the file of node '" + other.getKey() + "'");
            }
        }
        nodes.remove(name);
        if (!nodes.containsValue(node)) {
            node.close();
        }
    }

    /** Closes every node once (a raw node may be its file node). */
    public void close() {
        new LinkedHashSet<>(nodes.values()).forEach(BlockNode::close);
        nodes.clear();
    }

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
            default -> throw new OptionException("Unknown driver '" + driver + "' (supported: file, host_device, null-co, raw)");
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

    private BlockNode raw(OptionReader r, String name, boolean readOnly) throws OptionException {
        BlockNode file;
        if (r.isObject("file")) {
            OptionReader child = r.child("file");
            String childName = child.has("node-name") ? child.required("node-name") : "#block" + (autoNames++);
            file = add(child, childName);
        } else {
            String ref = r.required("file");
            file = nodes.get(ref);
            if (file == null) {
                throw new OptionException("Cannot find device='' nor node-name='" + ref + "'");
            }
        }
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
}

package dev.vhostappliance.block.qsd;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.vhostappliance.block.export.BlockExport;
import dev.vhostappliance.block.export.nbd.NbdExport;
import dev.vhostappliance.block.export.vhostuser.VhostUserBlkExport;
import dev.vhostappliance.block.graph.OptionException;
import dev.vhostappliance.block.graph.OptionReader;
import dev.vhostappliance.block.node.BlockNode;
import dev.vhostappliance.block.node.FileNode;
import dev.vhostappliance.block.node.NullNode;
import dev.vhostappliance.qmp.QmpCommand;
import dev.vhostappliance.qmp.QmpException;
import dev.vhostappliance.qmp.QmpMonitor;
import java.util.Map;

/**
 * qemu-storage-daemon's block QMP commands on our block graph: blockdev-add/-del, block-export-add/-del,
 * query-block-exports, query-named-block-nodes, block_resize. Arguments are the same JSON trees as the
 * command line's --blockdev and --export, so both go through one parser and give the same errors.
 */
final class BlockQmpCommands {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;
    private final StorageDaemon daemon;
    private final QmpMonitor monitor;

    BlockQmpCommands(StorageDaemon daemon, QmpMonitor monitor) {
        this.daemon = daemon;
        this.monitor = monitor;
    }

    /** An OptionException becomes a GenericError with the same sentence. */
    @FunctionalInterface
    private interface Body {
        JsonNode run(ObjectNode args) throws OptionException, QmpException;
    }

    private void add(String name, Body body) {
        QmpCommand c = args -> {
            try {
                return body.run(args);
            } catch (OptionException e) {
                throw new QmpException(e.getMessage());
            }
        };
        monitor.register(name, c);
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> tree(ObjectNode args) {
        return JSON.convertValue(args, Map.class);
    }

    private static String text(ObjectNode args, String key) throws QmpException {
        JsonNode v = args.get(key);
        if (v == null) {
            throw new QmpException("Parameter '" + key + "' is missing");
        }
        if (!v.isTextual()) {
            throw new QmpException("Invalid parameter type for '" + key + "', expected: string");
        }
        return v.asText();
    }

    /** BlockExportRemoveMode: true for hard. */
    private static boolean mode(ObjectNode args) throws QmpException {
        String mode = args.has("mode") ? text(args, "mode") : "safe";
        if (!mode.equals("safe") && !mode.equals("hard")) {
            throw new QmpException("Parameter 'mode' does not accept value '" + mode + "'");
        }
        return mode.equals("hard");
    }

    void register() {
        add("blockdev-add", args -> {
            daemon.addNode(tree(args));
            return NODES.objectNode();
        });
        add("blockdev-del", args -> {
            daemon.deleteNode(text(args, "node-name"));
            return NODES.objectNode();
        });
        add("block-export-add", args -> {
            daemon.addExport(tree(args));
            return NODES.objectNode();
        });
        add("block-export-del", args -> {
            daemon.deleteExport(text(args, "id"), mode(args));
            return NODES.objectNode();
        });
        add("query-block-exports", args -> {
            ArrayNode list = NODES.arrayNode();
            for (BlockExport e : daemon.exports()) {
                list.addObject().put("type", e.type()).put("id", e.id()).put("node-name", e.nodeName())
                        .put("shutting-down", false);
            }
            return list;
        });
        add("query-named-block-nodes", args -> {
            ArrayNode list = NODES.arrayNode();
            for (Map.Entry<String, BlockNode> n : daemon.nodes().entrySet()) {
                BlockNode node = n.getValue();
                String drv = node instanceof FileNode ? "file" : node instanceof NullNode ? "null-co"
                        : node instanceof dev.vhostappliance.block.rbd.RbdNode ? "rbd"
                        : node instanceof dev.vhostappliance.block.qcow2.Qcow2Node ? "qcow2" : "raw";
                ObjectNode o = list.addObject().put("node-name", n.getKey()).put("drv", drv).put("ro", node.readOnly());
                o.putObject("image").put("virtual-size", node.size());
            }
            return list;
        });
        add("query-vhost-stats", args -> {
            ArrayNode list = NODES.arrayNode();
            for (BlockExport e : daemon.exports()) {
                if (e instanceof VhostUserBlkExport v) {
                    list.add(dev.vhostappliance.qmp.DeviceStatsJson.of(v.id(), "block", v.serving().connected(), v.device(),
                            v.serving().backend()));
                } else if (e instanceof NbdExport n) {
                    var c = n.counters();
                    list.addObject().put("id", n.id()).put("type", "nbd").put("connected", n.inUse())
                            .put("connections", c.connections()).put("reads", c.reads()).put("read-bytes", c.readBytes())
                            .put("writes", c.writes()).put("write-bytes", c.writeBytes()).put("flushes", c.flushes())
                            .put("errors", c.errors());
                }
            }
            return list;
        });
        add("nbd-server-start", args -> {
            daemon.startNbdServer(new OptionReader(NbdServerConfig.flattenLegacy(tree(args))));
            return NODES.objectNode();
        });
        add("nbd-server-add", args -> {
            daemon.addNbdExport(tree(args));
            return NODES.objectNode();
        });
        add("nbd-server-remove", args -> {
            daemon.removeNbdExport(text(args, "name"), mode(args));
            return NODES.objectNode();
        });
        add("nbd-server-stop", args -> {
            daemon.stopNbdServer();
            return NODES.objectNode();
        });
        Body resize = args -> {
            String name = args.has("node-name") ? text(args, "node-name") : text(args, "device");
            JsonNode size = args.get("size");
            if (size == null || !size.canConvertToLong()) {
                throw new QmpException("Parameter 'size' is missing or not an integer");
            }
            daemon.resize(name, size.asLong());
            return NODES.objectNode();
        };
        add("block_resize", resize);
        add("block-resize", resize);
    }
}

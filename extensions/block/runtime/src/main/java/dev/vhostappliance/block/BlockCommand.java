package dev.vhostappliance.block;

import dev.vhostappliance.block.export.vhostuser.VirtioBlkDevice;
import dev.vhostappliance.block.graph.BlockGraph;
import dev.vhostappliance.block.graph.OptionException;
import dev.vhostappliance.block.graph.OptionReader;
import dev.vhostappliance.block.io.IoEngineKind;
import dev.vhostappliance.block.node.BlockNode;
import dev.vhostappliance.block.node.FileNode;
import dev.vhostappliance.block.qsd.StorageDaemon;
import dev.vhostappliance.block.request.VirtioBlk;
import dev.vhostappliance.cli.DeviceCommand;
import dev.vhostappliance.cli.StartupException;
import dev.vhostappliance.device.VhostDeviceProvider;
import dev.vhostappliance.device.VirtioDevice;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code vhost-appliance block} / {@code vhost-user-blk}: QEMU's contrib vhost-user-blk command line. */
@Command(name = "block", description = "Serve a disk image as a vhost-user-blk device.", sortOptions = false)
public final class BlockCommand extends DeviceCommand {

    @Option(names = "--blk-file", paramLabel = "PATH", description = "Image file or block device to export.")
    Path blkFile;

    @Option(names = "--read-only", description = "Export read-only (VIRTIO_BLK_F_RO).")
    boolean readOnly;

    @Option(names = "--num-queues", paramLabel = "N", defaultValue = "1", description = "Number of virtqueues, 1 to 1024 (default ${DEFAULT-VALUE}).")
    int numQueues;

    @Option(names = "--logical-block-size", paramLabel = "BYTES", defaultValue = "512",
            description = "Logical block size, a power of two from 512 to 2097152 (default ${DEFAULT-VALUE}).")
    int logicalBlockSize;

    @Option(names = "--writethrough", description = "Flush before completing every write.")
    boolean writethrough;

    @Option(names = "--serial", paramLabel = "S", description = "Serial number returned by GET_ID (at most 20 bytes).")
    String serial;

    @Option(names = "--aio", paramLabel = "ENGINE", defaultValue = "io_uring",
            description = "I/O engine: io_uring, native (Linux AIO, needs --direct) or threads (default ${DEFAULT-VALUE}).")
    String aio;

    @Option(names = "--direct", description = "Bypass the host page cache (O_DIRECT, qemu-storage-daemon's cache.direct=on).")
    boolean direct;

    @Option(names = "--format", paramLabel = "FORMAT", defaultValue = "raw",
            description = "Image format: raw or qcow2 (with its backing chain) (default ${DEFAULT-VALUE}; never probed).")
    String format;

    @Override
    protected VhostDeviceProvider provider() {
        return new BlockDeviceProvider();
    }

    /** Limits as qemu-storage-daemon applies them to vhost-user-blk exports. */
    static final int MAX_QUEUES = StorageDaemon.MAX_QUEUES;
    static final int MIN_BLOCK_SIZE = 512;
    static final int MAX_BLOCK_SIZE = 2 * 1024 * 1024;

    @Override
    protected VirtioDevice createDevice() throws StartupException {
        if (blkFile == null) {
            throw new StartupException("--blk-file=PATH is required");
        }
        if (numQueues < 1 || numQueues > MAX_QUEUES) {
            throw new StartupException("--num-queues must be between 1 and " + MAX_QUEUES + ", is " + numQueues);
        }
        if (logicalBlockSize < MIN_BLOCK_SIZE || logicalBlockSize > MAX_BLOCK_SIZE
                || Integer.bitCount(logicalBlockSize) != 1) {
            throw new StartupException("--logical-block-size must be a power of two between 512 and 2097152, is "
                    + logicalBlockSize);
        }
        if (serial != null && serial.getBytes(java.nio.charset.StandardCharsets.UTF_8).length > VirtioBlk.ID_BYTES) {
            throw new StartupException("--serial must be at most " + VirtioBlk.ID_BYTES + " bytes");
        }
        IoEngineKind engine = IoEngineKind.fromOption(aio);
        if (engine == null) {
            throw new StartupException("--aio must be io_uring, native or threads, is '" + aio + "'");
        }
        if (engine == IoEngineKind.NATIVE && !direct) {
            throw new StartupException("--aio=native requires --direct");
        }
        BlockNode disk = switch (format) {
            case "raw" -> FileNode.open("blk-file", blkFile, FileNode.Options.defaults(readOnly).withAio(engine).withDirect(direct));
            case "qcow2" -> qcow2(engine);
            default -> throw new StartupException("--format must be raw or qcow2, is '" + format + "'");
        };
        if (disk.size() < logicalBlockSize) {
            close(disk);
            throw new StartupException("image " + blkFile + " is smaller than one logical block");
        }
        node = disk;
        return new VirtioBlkDevice(disk, !disk.readOnly(), numQueues, logicalBlockSize, writethrough, serial);
    }

    /** The qcow2 node (and its backing chain) through the block graph, as qemu-storage-daemon would build it. */
    private BlockNode qcow2(IoEngineKind engine) throws StartupException {
        graph = new BlockGraph();
        Map<String, Object> file = new LinkedHashMap<>();
        file.put("driver", "file");
        file.put("filename", blkFile.toString());
        file.put("aio", engine.option());
        file.put("cache", Map.of("direct", direct));
        Map<String, Object> tree = new LinkedHashMap<>();
        tree.put("node-name", "disk");
        tree.put("driver", "qcow2");
        tree.put("read-only", readOnly);
        tree.put("discard", "unmap");
        tree.put("file", file);
        try {
            return graph.add(new OptionReader(tree));
        } catch (OptionException e) {
            throw new StartupException(e.getMessage());
        }
    }

    private BlockNode node;
    private BlockGraph graph;

    private void close(BlockNode disk) {
        if (graph != null) {
            graph.close();
        } else {
            disk.close();
        }
    }

    @Override
    protected void afterServing() {
        if (node != null) {
            close(node);
        }
    }
}

package dev.vhostappliance.block;

import dev.vhostappliance.cli.DeviceCommand;
import dev.vhostappliance.cli.StartupException;
import dev.vhostappliance.device.VhostDeviceProvider;
import dev.vhostappliance.device.VirtioDevice;
import java.nio.file.Path;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code vhost-appliance block} / {@code vhost-user-blk}: QEMU's contrib vhost-user-blk command line. */
@Command(name = "block", description = "Serve a disk image as a vhost-user-blk device.", sortOptions = false)
public final class BlockCommand extends DeviceCommand {

    @Option(names = "--blk-file", paramLabel = "PATH", description = "Image file or block device to export.")
    Path blkFile;

    @Option(names = "--read-only", description = "Export read-only (VIRTIO_BLK_F_RO).")
    boolean readOnly;

    @Option(names = "--num-queues", paramLabel = "N", defaultValue = "1", description = "Number of virtqueues (default ${DEFAULT-VALUE}).")
    int numQueues;

    @Option(names = "--logical-block-size", paramLabel = "BYTES", defaultValue = "512",
            description = "Logical block size, a power of two from 512 to 2097152 (default ${DEFAULT-VALUE}).")
    int logicalBlockSize;

    @Option(names = "--writethrough", description = "Flush before completing every write.")
    boolean writethrough;

    @Option(names = "--serial", paramLabel = "S", description = "Serial number returned by GET_ID (at most 20 bytes).")
    String serial;

    @Override
    protected VhostDeviceProvider provider() {
        return new BlockDeviceProvider();
    }

    @Override
    protected VirtioDevice createDevice() throws StartupException {
        throw new StartupException("the block device is not implemented yet");
    }
}

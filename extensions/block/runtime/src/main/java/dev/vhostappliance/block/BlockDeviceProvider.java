package dev.vhostappliance.block;

import dev.vhostappliance.device.VhostDeviceProvider;
import java.util.List;

/** The block device as the appliance sees it: type, program name, capabilities, command. */
public final class BlockDeviceProvider implements VhostDeviceProvider {

    public static final String TYPE = "block";

    @Override
    public String type() {
        return TYPE;
    }

    @Override
    public String programName() {
        return "vhost-user-blk";
    }

    @Override
    public String description() {
        return "virtio-blk: export a disk image (vhost-user-blk)";
    }

    @Override
    public List<String> capabilities() {
        return List.of("read-only", "blk-file");
    }

    @Override
    public Object newCommand() {
        return new BlockCommand();
    }

    @Override
    public boolean claimsTopLevel(String firstArg) {
        return dev.vhostappliance.block.qsd.StorageDaemonMode.claims(firstArg);
    }

    @Override
    public int runTopLevel(String program, String[] args, java.io.PrintStream out, java.io.PrintStream err) {
        return dev.vhostappliance.block.qsd.StorageDaemon.run(program, args, err);
    }
}

package dev.vhostappliance.device;

import java.util.List;

/**
 * What a device extension contributes to the appliance: its vhost-user backend type, the program name it
 * answers to (QEMU's convention: {@code vhost-user-blk}, ...), its {@code --print-capabilities} features and
 * the picocli command that starts it. Device deployment modules announce their provider with a
 * {@code VhostDeviceBuildItem}; nothing is discovered at run time.
 */
public interface VhostDeviceProvider {

    /** The {@code VHostUserBackendType} value, also the subcommand name: "block", "input", "gpu". */
    String type();

    /** The program name of QEMU's own backend this one replaces, used for symlink dispatch. */
    String programName();

    /** One line for {@code --help} and the descriptor file. */
    String description();

    /** The features this host can really provide, for {@code --print-capabilities}. */
    List<String> capabilities();

    /** A fresh picocli command object (annotated with {@code @Command}) that runs this device. */
    Object newCommand();

    /**
     * Whether a command line with no device that starts with firstArg is this device's own top-level syntax
     * (the block device takes qemu-storage-daemon's {@code --blockdev ... --export ...}).
     */
    default boolean claimsTopLevel(String firstArg) {
        return false;
    }

    /** Runs such a command line; returns the exit status. Errors are one line each on err. */
    default int runTopLevel(String program, String[] args, java.io.PrintStream out, java.io.PrintStream err) {
        throw new UnsupportedOperationException(type() + " has no top-level syntax");
    }
}

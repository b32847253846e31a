package dev.vhostappliance.block.graph;

/** A qemu-storage-daemon style option that cannot be accepted; the message is one line for stderr. */
public final class OptionException extends Exception {
    public OptionException(String message) {
        super(message);
    }
}

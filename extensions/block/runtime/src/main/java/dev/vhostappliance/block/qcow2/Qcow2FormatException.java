package dev.vhostappliance.block.qcow2;

/** An image that is not qcow2, uses what we do not support, or contradicts itself: one sentence of why. */
public final class Qcow2FormatException extends Exception {
    public Qcow2FormatException(String message) {
        super(message);
    }
}

package dev.vhostappliance.memory;

/** A memory table or region the frontend sent cannot be accepted (overlap, overflow, too many regions). */
public final class InvalidMemoryException extends Exception {
    public InvalidMemoryException(String message) {
        super(message);
    }
}

package dev.vhostappliance.protocol;

/** A message whose payload was larger than any valid one; it was drained, the connection survives. */
public final class OversizedMessageException extends Exception {
    public OversizedMessageException(long size) {
        super("payload of " + size + " bytes exceeds " + Message.MAX_PAYLOAD);
    }
}

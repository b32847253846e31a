package dev.vhostappliance.protocol;

/** The frontend broke the protocol in a way that cannot be answered in band: the connection is dropped. */
public final class ProtocolException extends Exception {
    public ProtocolException(String message) {
        super(message);
    }
}

package dev.vhostappliance.block.rbd;

/** An rbd node cannot be opened or changed: the sentence says why (the cluster, the credentials, the image). */
public final class RbdException extends Exception {
    public RbdException(String message) {
        super(message);
    }
}

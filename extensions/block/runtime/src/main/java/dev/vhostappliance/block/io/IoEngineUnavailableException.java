package dev.vhostappliance.block.io;

/** The kernel refused to set up an engine (io_uring disabled, seccomp, too old): one sentence of why. */
public final class IoEngineUnavailableException extends Exception {
    private static final long serialVersionUID = 1L;

    public IoEngineUnavailableException(String message) {
        super(message);
    }
}

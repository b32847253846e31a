package dev.vhostappliance.libc;

import java.io.IOException;

/** A libc call failed: names the call and the errno it returned. */
public final class NativeCallException extends IOException {
    private final String call;
    private final int errno;

    public NativeCallException(String call, int errno) {
        super(call + ": " + Errno.describe(errno));
        this.call = call;
        this.errno = errno;
    }

    public String call() {
        return call;
    }

    public int errno() {
        return errno;
    }
}

package dev.vhostappliance.block.qcow2;

/**
 * Metadata I/O failed, or the metadata is not what a valid image holds: the request in progress fails with
 * {@link #errno()} (the guest sees an I/O error), the image stays open.
 */
final class Qcow2IoException extends RuntimeException {
    private final int errno;

    Qcow2IoException(int negativeErrno, String message) {
        super(message, null, false, false);
        this.errno = negativeErrno;
    }

    /** -errno for the request. */
    int errno() {
        return errno;
    }
}

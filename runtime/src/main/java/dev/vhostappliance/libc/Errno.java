package dev.vhostappliance.libc;

/** The errno values this code reacts to (Linux x86-64 / aarch64 numbering). */
public final class Errno {
    public static final int EPERM = 1;
    public static final int ENOENT = 2;
    public static final int EINTR = 4;
    public static final int EIO = 5;
    public static final int ENXIO = 6;
    public static final int EBADF = 9;
    public static final int EAGAIN = 11;
    public static final int ENOMEM = 12;
    public static final int EACCES = 13;
    public static final int EFAULT = 14;
    public static final int EBUSY = 16;
    public static final int ENODEV = 19;
    public static final int ENOTTY = 25;
    public static final int EEXIST = 17;
    public static final int ENOTDIR = 20;
    public static final int EINVAL = 22;
    public static final int EFBIG = 27;
    public static final int EROFS = 30;
    public static final int ENOSPC = 28;
    public static final int EOVERFLOW = 75;
    public static final int EDQUOT = 122;
    public static final int EPIPE = 32;
    public static final int ERANGE = 34;
    public static final int ENOSYS = 38;
    public static final int ENOTSOCK = 88;
    public static final int EOPNOTSUPP = 95;
    public static final int EADDRINUSE = 98;
    public static final int ECONNRESET = 104;
    public static final int ENOTCONN = 107;
    public static final int ESHUTDOWN = 108;
    public static final int ETIMEDOUT = 110;
    public static final int ECONNREFUSED = 111;

    private Errno() {
    }

    public static String describe(int errno) {
        String name = switch (errno) {
            case EPERM -> "EPERM (operation not permitted)";
            case ENOENT -> "ENOENT (no such file or directory)";
            case EINTR -> "EINTR (interrupted)";
            case EIO -> "EIO (input/output error)";
            case EBADF -> "EBADF (bad file descriptor)";
            case EAGAIN -> "EAGAIN (try again)";
            case ENOMEM -> "ENOMEM (out of memory)";
            case EACCES -> "EACCES (permission denied)";
            case EFAULT -> "EFAULT (bad address)";
            case EBUSY -> "EBUSY (busy)";
            case EEXIST -> "EEXIST (exists)";
            case ENODEV -> "ENODEV (no such device)";
            case ENOTTY -> "ENOTTY (inappropriate ioctl for device)";
            case ENOTDIR -> "ENOTDIR (not a directory)";
            case EINVAL -> "EINVAL (invalid argument)";
            case ENOSPC -> "ENOSPC (no space left on device)";
            case EPIPE -> "EPIPE (broken pipe)";
            case ENOSYS -> "ENOSYS (not implemented)";
            case ENOTSOCK -> "ENOTSOCK (not a socket)";
            case EOPNOTSUPP -> "EOPNOTSUPP (not supported)";
            case EADDRINUSE -> "EADDRINUSE (address in use)";
            case ECONNRESET -> "ECONNRESET (connection reset)";
            case ENOTCONN -> "ENOTCONN (not connected)";
            case ECONNREFUSED -> "ECONNREFUSED (connection refused)";
            case ETIMEDOUT -> "ETIMEDOUT (timed out)";
            case ESHUTDOWN -> "ESHUTDOWN (blocklisted or shut down)";
            case EROFS -> "EROFS (read-only)";
            default -> null;
        };
        return name != null ? name : "errno " + errno;
    }
}

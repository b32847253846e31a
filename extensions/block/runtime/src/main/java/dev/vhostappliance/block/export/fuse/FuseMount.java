package dev.vhostappliance.block.export.fuse;

import dev.vhostappliance.cli.StartupException;
import dev.vhostappliance.libc.Errno;
import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.NativeCallException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;

/**
 * The mount of a FUSE export over a regular file, done with mount(2) on an open {@code /dev/fuse} (no
 * libfuse, no fusermount): {@code rootmode} says the root is a regular file. A watcher process unmounts the
 * file if this process dies without doing it (SIGKILL): it waits on a pipe only we hold open.
 */
final class FuseMount {
    private final Path mountpoint;
    private final int fd;
    private final Process watcher;
    private final boolean allowOther;
    private boolean unmounted;

    private FuseMount(Path mountpoint, int fd, Process watcher, boolean allowOther) {
        this.mountpoint = mountpoint;
        this.fd = fd;
        this.watcher = watcher;
        this.allowOther = allowOther;
    }

    /** The mount has allow_other (asked for, or auto and the kernel took it): other users may open the file. */
    boolean allowOther() {
        return allowOther;
    }

    int fd() {
        return fd;
    }

    Path mountpoint() {
        return mountpoint;
    }

    /**
     * Mounts over mountpoint (an existing regular file). allowOther: "on", "off" or "auto" (on, and off if
     * the kernel refuses it). A stale FUSE mount left by a run that was killed is reported, not reused.
     */
    static FuseMount mount(Path mountpoint, String allowOther) throws StartupException {
        Path abs = mountpoint.toAbsolutePath();
        try {
            BasicFileAttributes a = Files.readAttributes(abs, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            if (!a.isRegularFile()) {
                throw new StartupException("mountpoint '" + mountpoint + "' must be a regular file");
            }
        } catch (java.nio.file.NoSuchFileException e) {
            throw new StartupException("mountpoint '" + mountpoint + "' does not exist (create the file first)");
        } catch (IOException e) {
            String why = e.getMessage() != null && e.getMessage().contains("not connected")
                    ? "is a stale FUSE mount of a run that ended without unmounting it; unmount it with 'umount -l "
                            + abs + "' (or 'fusermount3 -u " + abs + "')"
                    : "cannot be checked: " + e.getMessage();
            throw new StartupException("mountpoint '" + mountpoint + "' " + why, e);
        }
        int fd;
        try {
            fd = LibC.open("/dev/fuse", LibC.O_RDWR | LibC.O_CLOEXEC, 0);
        } catch (NativeCallException e) {
            throw new StartupException("cannot open /dev/fuse: " + e.getMessage()
                    + (e.errno() == Errno.ENOENT ? " (load the fuse module)" : ""), e);
        }
        // The watcher first: a kill right after the mount appears must find it running. It unmounts when its
        // stdin ends: when we close it, or when the kernel does because we died.
        Process watcher = null;
        try {
            watcher = new ProcessBuilder("/bin/sh", "-c", "cat > /dev/null; exec umount -l \"$0\" 2>/dev/null", abs.toString())
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        } catch (IOException e) {
            // without it a SIGKILL leaves a stale mount, reported by the next run
        }
        String base = "fd=" + fd + ",rootmode=" + Integer.toOctalString(Fuse.S_IFREG) + ",user_id=" + LibC.getuid()
                + ",group_id=" + LibC.getgid() + ",default_permissions";
        long flags = LibC.MS_NOSUID | LibC.MS_NODEV;
        boolean other = !allowOther.equals("off");
        try {
            try {
                LibC.mount("vhost-appliance", abs.toString(), "fuse.vhost-appliance", flags, base + (other ? ",allow_other" : ""));
            } catch (NativeCallException e) {
                if (!allowOther.equals("auto")) {
                    throw e;
                }
                LibC.mount("vhost-appliance", abs.toString(), "fuse.vhost-appliance", flags, base);
                other = false;
            }
        } catch (NativeCallException e) {
            LibC.close(fd);
            if (watcher != null) {
                watcher.destroyForcibly(); // killed, not released: nothing of ours to unmount
            }
            throw new StartupException("cannot mount a FUSE export on '" + mountpoint + "': " + e.getMessage()
                    + (e.errno() == Errno.EPERM ? " (mounting needs CAP_SYS_ADMIN)" : ""), e);
        }
        return new FuseMount(abs, fd, watcher, other);
    }

    /** Unmounts (lazily: open files keep working until closed) and closes /dev/fuse; idempotent. */
    synchronized void unmount() {
        if (unmounted) {
            return;
        }
        unmounted = true;
        LibC.umount2(mountpoint.toString(), LibC.MNT_DETACH);
        if (watcher != null) {
            try {
                watcher.getOutputStream().close();
                watcher.waitFor(2, java.util.concurrent.TimeUnit.SECONDS);
            } catch (IOException | InterruptedException e) {
                watcher.destroy();
            }
        }
    }

    /** Closes /dev/fuse once the session stopped reading it. */
    void closeDevice() {
        LibC.close(fd);
    }
}

package dev.vhostappliance.server;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * A listening socket's file appears only once the socket listens: bind(2) creates the file before listen(2)
 * makes it accept, and a client that connects in between (a management layer polling for the path, our own
 * tests) gets ECONNREFUSED. So sockets are bound under a temporary name in the same directory and renamed to
 * their path after listen (rename is atomic). Names too long for sun_path are bound directly.
 */
public final class SocketPaths {
    private static final int SUN_PATH_MAX = 107;

    private SocketPaths() {
    }

    /** Where to bind before {@link #publish}: a hidden sibling, or path itself if that name would be too long. */
    public static Path bindingPath(Path path) {
        Path tmp = path.resolveSibling("." + path.getFileName() + ".binding-" + ProcessHandle.current().pid());
        return tmp.toString().getBytes(StandardCharsets.UTF_8).length <= SUN_PATH_MAX ? tmp : path;
    }

    /** Renames the listening socket's file from bound to path (nothing to do if they are the same). */
    public static void publish(Path bound, Path path) throws IOException {
        if (!bound.equals(path)) {
            Files.move(bound, path, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        }
    }
}

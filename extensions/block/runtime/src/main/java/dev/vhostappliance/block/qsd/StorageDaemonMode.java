package dev.vhostappliance.block.qsd;

import dev.vhostappliance.block.graph.OptionException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The qemu-storage-daemon command line: {@code --blockdev}, {@code --export}, {@code --object},
 * {@code --pidfile} in any number and order, each as {@code --opt VALUE} or {@code --opt=VALUE}. Parsing
 * only; {@link dev.vhostappliance.block.StorageDaemon} builds and runs what it describes.
 */
public final class StorageDaemonMode {
    /** Options that select this mode when they come first on the command line. */
    public static final Set<String> OPTIONS = Set.of("--blockdev", "--export", "--object", "--pidfile", "--chardev",
            "--monitor", "--nbd-server", "--daemonize", "-T", "--trace");
    private static final Set<String> FLAGS = Set.of("--daemonize");

    /** One option occurrence, in command-line order. */
    public record Opt(String name, String value) {
        public String describe() {
            return value == null ? name : name + " " + value;
        }
    }

    private StorageDaemonMode() {
    }

    public static boolean claims(String firstArg) {
        int eq = firstArg.indexOf('=');
        return OPTIONS.contains(eq < 0 ? firstArg : firstArg.substring(0, eq));
    }

    /** Splits the arguments into options; rejects unknown and unsupported ones with qsd-like messages. */
    public static List<Opt> split(String[] args) throws OptionException {
        List<Opt> opts = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            int eq = a.indexOf('=');
            String name = a.startsWith("--") && eq > 0 ? a.substring(0, eq) : a;
            if (!OPTIONS.contains(name)) {
                throw new OptionException(a.startsWith("-") ? "unrecognized option '" + a + "'"
                        : "unexpected argument '" + a + "'");
            }
            String value = null;
            if (!FLAGS.contains(name)) {
                if (eq > 0 && a.startsWith("--")) {
                    value = a.substring(eq + 1);
                } else if (i + 1 < args.length) {
                    value = args[++i];
                } else {
                    throw new OptionException("option '" + name + "' requires an argument");
                }
            }
            switch (name) {
                case "--daemonize" -> throw new OptionException(
                        "--daemonize is not supported: vhost-appliance never daemonizes (run it under a supervisor)");
                case "-T", "--trace" -> throw new OptionException(name + " is not supported");
                default -> opts.add(new Opt(name, value));
            }
        }
        return opts;
    }
}

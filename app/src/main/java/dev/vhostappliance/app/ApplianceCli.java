package dev.vhostappliance.app;

import dev.vhostappliance.cli.Capabilities;
import dev.vhostappliance.cli.ExitCodes;
import dev.vhostappliance.cli.StartupException;
import dev.vhostappliance.device.DeviceCatalog;
import dev.vhostappliance.device.VhostDeviceProvider;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Optional;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * Builds the command line from the devices of this build ({@link DeviceCatalog}, filled from build items)
 * and runs it. Every error is one line on stderr: usage errors exit 2, start-up failures exit 1.
 */
public final class ApplianceCli {
    public static final String PROGRAM = "vhost-appliance";
    public static final String INVOKED_AS_PROPERTY = "vhost.invoked-as";
    private static final String PRINT_CAPABILITIES = "--print-capabilities";

    private final PrintStream out;
    private final PrintStream err;

    public ApplianceCli(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    @Command(name = PROGRAM, mixinStandardHelpOptions = true, versionProvider = Version.class,
            description = "vhost-user device backends for QEMU: block, input and gpu on one JVM runtime.",
            footer = {"", "Each device also answers to its QEMU program name (vhost-user-blk, vhost-user-input, vhost-user-gpu)",
                    "when the binary is invoked under that name.",
                    "",
                    "qemu-storage-daemon mode (vhost-user-blk exports), when no device is named:",
                    "  vhost-appliance --blockdev driver=file,node-name=disk0,filename=IMG \\",
                    "      --export type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=SOCK,writable=on",
                    "  --blockdev DEF (drivers file, host_device, null-co, raw, qcow2, rbd; keyval or JSON), --export DEF",
                    "  (vhost-user-blk, nbd, fuse), --object iothread|secret|tls-creds-x509|authz-simple, --nbd-server,",
                    "  --chardev/--monitor (QMP), --pidfile PATH; any number of --blockdev/--export.",
                    "",
                    "Exit status: 0 ok or SIGTERM; 1 start-up failure; 2 usage error."})
    static final class TopCommand implements Runnable {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public void run() {
            throw new CommandLine.ParameterException(spec.commandLine(), "a device is required: "
                    + String.join(", ", DeviceCatalog.all().stream().map(VhostDeviceProvider::type).toList()));
        }
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = ApplianceCli.class.getPackage().getImplementationVersion();
            return new String[] {PROGRAM + " " + (v != null ? v : "development build")};
        }
    }

    /** Runs the command line; {@code invokedAs} is the name (or path) the program was started under. */
    public int run(String invokedAs, String... args) {
        String name = invokedAs == null ? PROGRAM : Path.of(invokedAs).getFileName().toString();
        Optional<VhostDeviceProvider> byName = DeviceCatalog.byProgramName(name);

        // --print-capabilities ignores every other option (the backend conventions), even invalid ones.
        if (Arrays.asList(args).contains(PRINT_CAPABILITIES)) {
            Optional<VhostDeviceProvider> device = byName.isPresent() ? byName
                    : (args.length > 0 ? DeviceCatalog.byType(args[0]) : Optional.empty());
            if (device.isPresent()) {
                out.println(Capabilities.json(device.get()));
                out.flush();
                return ExitCodes.OK;
            }
        }

        // A device's own top-level syntax (qemu-storage-daemon options for block), when no device is named.
        if (byName.isEmpty() && args.length > 0) {
            for (VhostDeviceProvider p : DeviceCatalog.all()) {
                if (p.claimsTopLevel(args[0])) {
                    return p.runTopLevel(name, args, out, err);
                }
            }
        }

        CommandLine cli;
        if (byName.isPresent()) {
            cli = new CommandLine(byName.get().newCommand());
            cli.setCommandName(name);
        } else {
            cli = new CommandLine(new TopCommand());
            for (VhostDeviceProvider p : DeviceCatalog.all()) {
                CommandLine sub = new CommandLine(p.newCommand());
                sub.getCommandSpec().usageMessage().description(p.description());
                cli.addSubcommand(p.type(), sub);
            }
            cli.addSubcommand("quickstart", new QuickstartCommand());
            cli.addSubcommand("run", new dev.vhostappliance.app.run.RunCommand());
        }
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        cli.setParameterExceptionHandler((ex, a) -> {
            String cmd = ex.getCommandLine().getCommandName();
            err.println(cmd + ": " + ex.getMessage() + " (try --help)");
            return ExitCodes.USAGE;
        });
        cli.setExecutionExceptionHandler((ex, commandLine, parseResult) -> {
            String cmd = commandLine.getCommandName();
            if (ex instanceof StartupException) {
                err.println(cmd + ": " + ex.getMessage());
            } else {
                err.println(cmd + ": internal error: " + ex);
            }
            return ExitCodes.STARTUP_FAILURE;
        });
        return cli.execute(args);
    }
}

package dev.vhostappliance.app;

import dev.vhostappliance.device.DeviceCatalog;
import dev.vhostappliance.device.VhostDeviceProvider;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The main job on an embedded default: a block device on a sparse scratch image in a local state
 * directory, with the QEMU arguments that attach a guest to it printed first.
 */
@Command(name = "quickstart", description = "Serve a sparse scratch disk as vhost-user-blk and print the QEMU arguments to use it.")
final class QuickstartCommand implements Callable<Integer> {

    @Option(names = "--state-dir", paramLabel = "DIR", defaultValue = ".vhost-appliance",
            description = "Where the scratch image and the socket live (default ${DEFAULT-VALUE}).")
    Path stateDir;

    @Option(names = "--size", paramLabel = "BYTES", defaultValue = "1073741824",
            description = "Size of the scratch image when it is created (default ${DEFAULT-VALUE}).")
    long size;

    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help and exit.")
    boolean help;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws IOException {
        Files.createDirectories(stateDir);
        Path image = stateDir.resolve("scratch.img").toAbsolutePath();
        Path socket = stateDir.resolve("vhost-user-blk.sock").toAbsolutePath();
        if (!Files.exists(image)) {
            try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
                f.setLength(size); // sparse: takes no space until the guest writes
            }
        }
        var out = spec.commandLine().getOut();
        out.println("Serving " + image + " on " + socket + ". Attach a guest with:");
        out.println();
        out.println("  qemu-system-x86_64 -accel tcg -machine q35,memory-backend=mem -m 1G \\");
        out.println("    -object memory-backend-memfd,id=mem,size=1G,share=on \\");
        out.println("    -chardev socket,id=vblk0,path=" + socket + " \\");
        out.println("    -device vhost-user-blk-pci,chardev=vblk0,num-queues=1 \\");
        out.println("    ...   # your kernel/disk/display options");
        out.println();
        out.println("Stop with Ctrl-C (or SIGTERM).");
        out.flush();
        VhostDeviceProvider block = DeviceCatalog.byType("block")
                .orElseThrow(() -> new IllegalStateException("this build has no block device"));
        CommandLine device = new CommandLine(block.newCommand());
        device.setOut(spec.commandLine().getOut());
        device.setErr(spec.commandLine().getErr());
        device.setParameterExceptionHandler(spec.commandLine().getParameterExceptionHandler());
        device.setExecutionExceptionHandler(spec.commandLine().getExecutionExceptionHandler());
        device.setCommandName("quickstart");
        return device.execute("--socket-path=" + socket, "--blk-file=" + image);
    }
}

package dev.vhostappliance.app;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Starts the packaged appliance (the fast-jar Maven just built) as a real process, as a user would. */
final class Appliance {
    static final Path JAR = Path.of(System.getProperty("appliance.jar", "target/quarkus-app/quarkus-run.jar"));
    static final String JAVA = System.getProperty("appliance.java", Path.of(System.getProperty("java.home"), "bin", "java").toString());

    record Result(int exit, String out, String err) {
        List<String> errLines() {
            return err.isBlank() ? List.of() : List.of(err.strip().split("\n"));
        }
    }

    /** A sparse image file of size bytes in dir. */
    static Path image(Path dir, String name, long size) throws IOException {
        Path p = dir.resolve(name);
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(size);
        }
        return p;
    }

    /** src/packaging/jvm.options: the JVM options every launcher uses. */
    static final List<String> JVM_OPTIONS = jvmOptions();

    private static List<String> jvmOptions() {
        try {
            return java.nio.file.Files.readAllLines(PackagingIT.ROOT.resolve("src/packaging/jvm.options")).stream()
                    .map(String::strip).filter(l -> !l.isEmpty() && !l.startsWith("#")).toList();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    static List<String> command(String invokedAs, String... args) {
        List<String> cmd = new ArrayList<>(List.of(JAVA));
        cmd.addAll(JVM_OPTIONS); // as the launchers run it
        if (invokedAs != null) {
            cmd.add("-Dvhost.invoked-as=" + invokedAs);
        }
        cmd.add("-jar");
        cmd.add(JAR.toString());
        cmd.addAll(List.of(args));
        return cmd;
    }

    static Process start(List<String> cmd, Path errFile) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()));
        pb.redirectError(errFile.toFile());
        pb.redirectOutput(ProcessBuilder.Redirect.DISCARD);
        return pb.start();
    }

    static Result run(List<String> cmd) throws Exception {
        return run(java.util.Map.of(), cmd);
    }

    /** Runs cmd with extra environment variables. */
    static Result run(java.util.Map<String, String> env, List<String> cmd) throws Exception {
        Path out = Files.createTempFile("appliance", ".out");
        Path err = Files.createTempFile("appliance", ".err");
        try {
            ProcessBuilder pb = new ProcessBuilder(cmd);
            pb.environment().putAll(env);
            Process p = pb.redirectOutput(out.toFile()).redirectError(err.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile())).start();
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("appliance did not end: " + cmd);
            }
            return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
                    Files.readString(err, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }

    static Result run(String... args) throws Exception {
        return run(command(null, args));
    }

    /** Waits until path exists (the appliance listens), up to timeoutMillis. */
    static boolean awaitFile(Path path, long timeoutMillis) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMillis;
        while (System.currentTimeMillis() < deadline) {
            if (Files.exists(path)) {
                return true;
            }
            Thread.sleep(10);
        }
        return false;
    }
}

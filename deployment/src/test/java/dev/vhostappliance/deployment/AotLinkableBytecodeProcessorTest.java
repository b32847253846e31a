package dev.vhostappliance.deployment;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

class AotLinkableBytecodeProcessorTest {

    /** Loads picocli's classes from its jar through toJava8, each verified by the JVM when it is linked. */
    static final class UpgradingLoader extends ClassLoader {
        final ZipFile jar;
        final ClassLoader types;

        UpgradingLoader(Path jar) throws IOException {
            super(ClassLoader.getPlatformClassLoader());
            this.jar = new ZipFile(jar.toFile());
            this.types = new java.net.URLClassLoader(new java.net.URL[] {jar.toUri().toURL()}, getParent());
        }

        @Override
        protected Class<?> findClass(String name) throws ClassNotFoundException {
            ZipEntry e = jar.getEntry(name.replace('.', '/') + ".class");
            if (e == null) {
                throw new ClassNotFoundException(name);
            }
            try (InputStream in = jar.getInputStream(e)) {
                byte[] upgraded = AotLinkableBytecodeProcessor.toJava8(in.readAllBytes(), types);
                return defineClass(name, upgraded, 0, upgraded.length);
            } catch (IOException ex) {
                throw new UncheckedIOException(ex);
            }
        }
    }

    @Test
    void picocliBecomesVerifiableJava8ClassFiles() throws Exception {
        Path jar = Path.of(CommandLine.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        try (ZipFile zip = new ZipFile(jar.toFile());
                InputStream in = zip.getInputStream(zip.getEntry("picocli/CommandLine.class"))) {
            byte[] original = in.readAllBytes();
            assertEquals(49, major(original), "picocli still ships Java 5 class files (else this step can go)");
            UpgradingLoader loader = new UpgradingLoader(jar);
            byte[] upgraded = AotLinkableBytecodeProcessor.toJava8(original, loader.types);
            assertEquals(52, major(upgraded));
            // Linking verifies with the type-checking verifier: frames missing or wrong are a VerifyError here
            // (as the first version of the build step, without frames, gave). Then picocli parses a command line.
            Class<?> cl = Class.forName("picocli.CommandLine", true, loader);
            Class<?> specs = Class.forName("picocli.CommandLine$Model$CommandSpec", true, loader);
            Class<?> options = Class.forName("picocli.CommandLine$Model$OptionSpec", true, loader);
            Object spec = specs.getMethod("create").invoke(null);
            Object builder = options.getMethod("builder", String.class, String[].class).invoke(null, "--socket-path", new String[0]);
            java.lang.reflect.Method arity = builder.getClass().getMethod("arity", String.class);
            java.lang.reflect.Method build = builder.getClass().getMethod("build");
            arity.setAccessible(true); // declared by a package-private superclass
            build.setAccessible(true);
            arity.invoke(builder, "1");
            specs.getMethod("addOption", options).invoke(spec, build.invoke(builder));
            Object cli = cl.getConstructor(Object.class).newInstance(spec);
            Object parsed = cl.getMethod("parseArgs", String[].class).invoke(cli, (Object) new String[] {"--socket-path=/x.sock"});
            Object value = parsed.getClass().getMethod("matchedOptionValue", String.class, Object.class)
                    .invoke(parsed, "--socket-path", null);
            assertEquals("/x.sock", value);
        }
    }

    private static int major(byte[] classFile) {
        return ((classFile[6] & 0xff) << 8) | (classFile[7] & 0xff);
    }
}

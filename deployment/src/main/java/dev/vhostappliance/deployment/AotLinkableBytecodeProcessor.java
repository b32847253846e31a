package dev.vhostappliance.deployment;

import io.quarkus.bootstrap.model.ApplicationModel;
import io.quarkus.deployment.annotations.BuildProducer;
import io.quarkus.deployment.annotations.BuildStep;
import io.quarkus.deployment.builditem.BytecodeTransformerBuildItem;
import io.quarkus.deployment.pkg.builditem.CurateOutcomeBuildItem;
import io.quarkus.maven.dependency.ResolvedDependency;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Path;
import java.util.zip.ZipFile;
import org.objectweb.asm.ClassReader;
import org.objectweb.asm.ClassVisitor;
import org.objectweb.asm.ClassWriter;
import org.objectweb.asm.Opcodes;

/**
 * picocli ships Java 5 class files (version 49, no stack map frames). The JDK's AOT cache cannot link classes
 * that need the old verifier, so every picocli class, and every class of ours that uses picocli, was left out of
 * the launchers' caches and loaded, verified and interpreted at each start (picocli's part of a device's start-up
 * was ~220 ms; ~90 ms with the classes in the cache, README "Footprint"). This build step rewrites them as
 * Java 8 class files with stack map frames (ASM computes them); the code itself is unchanged.
 */
class AotLinkableBytecodeProcessor {

    @BuildStep
    void upgradeJava5ClassFiles(CurateOutcomeBuildItem curate, BuildProducer<BytecodeTransformerBuildItem> transformers) {
        ApplicationModel model = curate.getApplicationModel();
        for (ResolvedDependency dep : model.getRuntimeDependencies()) {
            if (!"info.picocli".equals(dep.getGroupId()) || !"picocli".equals(dep.getArtifactId())) {
                continue;
            }
            for (Path jar : dep.getResolvedPaths()) {
                // Frames are computed against picocli's own classes (it needs nothing but the JDK).
                ClassLoader types = newLoader(jar);
                try (ZipFile zip = new ZipFile(jar.toFile())) {
                    zip.stream().map(e -> e.getName())
                            .filter(n -> n.endsWith(".class") && !n.startsWith("META-INF/") && !n.endsWith("module-info.class"))
                            .forEach(n -> transformers.produce(new BytecodeTransformerBuildItem.Builder()
                                    .setClassToTransform(n.substring(0, n.length() - 6).replace('/', '.'))
                                    .setCacheable(true)
                                    .setInputTransformer((name, bytes) -> toJava8(bytes, types))
                                    .setVisitorFunction((name, next) -> next).build()));
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }
        }
    }

    private static ClassLoader newLoader(Path jar) {
        try {
            return new URLClassLoader(new URL[] {jar.toUri().toURL()}, ClassLoader.getPlatformClassLoader());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The class file as version 52 with stack map frames (ASM computes them; the code is not touched). */
    static byte[] toJava8(byte[] classFile, ClassLoader types) {
        ClassReader reader = new ClassReader(classFile);
        if (reader.readShort(6) >= Opcodes.V1_8) {
            return classFile;
        }
        ClassWriter writer = new ClassWriter(ClassWriter.COMPUTE_FRAMES) {
            @Override
            protected ClassLoader getClassLoader() {
                return types;
            }
        };
        reader.accept(new ClassVisitor(Opcodes.ASM9, writer) {
            @Override
            public void visit(int version, int access, String name, String signature, String superName, String[] interfaces) {
                super.visit(Opcodes.V1_8, access, name, signature, superName, interfaces);
            }
        }, ClassReader.SKIP_FRAMES);
        return writer.toByteArray();
    }
}

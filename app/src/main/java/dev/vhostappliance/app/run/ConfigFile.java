package dev.vhostappliance.app.run;

import io.smallrye.config.PropertiesConfigSource;
import io.smallrye.config.SmallRyeConfig;
import io.smallrye.config.SmallRyeConfigBuilder;
import io.smallrye.config.source.yaml.YamlConfigSource;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import org.eclipse.microprofile.config.spi.ConfigSource;

/**
 * The configuration of a {@code run}: SmallRye Config built here, after the command line was parsed (Quarkus'
 * own configuration is running by then), from, highest priority first: system properties, environment
 * variables (APPLIANCE_DEVICES_DISK0_BLK_FILE ...), the --config file, ./config/application.yaml|properties,
 * /etc/vhost-appliance/application.yaml|properties. YAML and properties both work.
 * <pre>
 * appliance.devices.disk0.type=block
 * appliance.devices.disk0.socket-path=/run/vhost-appliance/disk0.sock
 * appliance.devices.disk0.blk-file=/var/lib/images/disk0.img
 * appliance.devices.disk0.num-queues=4
 * appliance.devices.kbd.type=input
 * appliance.devices.kbd.event-socket=/run/vhost-appliance/kbd-events.sock
 * appliance.monitor.socket-path=/run/vhost-appliance/qmp.sock
 * appliance.sockets.mode=0660
 * appliance.sockets.group=kvm
 * </pre>
 * Every key of a device but {@code type} is that device's command-line option without its dashes.
 */
public final class ConfigFile {
    static final String DEVICES = "appliance.devices.";
    /** The qemu-storage-daemon shape: appliance.blockdev.NODE.driver=file ..., appliance.export.ID.node-name=NODE ... */
    static final String BLOCKDEV = "appliance.blockdev.";
    static final String EXPORT = "appliance.export.";
    static final String OBJECT = "appliance.object.";
    static final String NBD_SERVER = "appliance.nbd-server.";
    static final List<Path> DEFAULT_LOCATIONS = List.of(Path.of("config/application.yaml"),
            Path.of("config/application.properties"), Path.of("/etc/vhost-appliance/application.yaml"),
            Path.of("/etc/vhost-appliance/application.properties"));

    private final SmallRyeConfig config;
    private final List<String> sources = new ArrayList<>();

    private ConfigFile(SmallRyeConfig config) {
        this.config = config;
    }

    /** Reads file (may be null) and the default locations; IOException with one sentence if a file is unreadable. */
    public static ConfigFile load(Path file) throws IOException {
        SmallRyeConfigBuilder b = new SmallRyeConfigBuilder().addDefaultSources();
        List<String> used = new ArrayList<>();
        int ordinal = 260; // above application.properties (250), below environment variables (300)
        if (file != null) {
            if (!Files.isReadable(file)) {
                throw new IOException("cannot read config file " + file);
            }
            b.withSources(source(file, ordinal));
            used.add(file.toString());
        }
        for (Path p : DEFAULT_LOCATIONS) {
            ordinal -= 2;
            if (Files.isReadable(p) && (file == null || !p.toAbsolutePath().equals(file.toAbsolutePath()))) {
                b.withSources(source(p, ordinal));
                used.add(p.toString());
            }
        }
        ConfigFile c = new ConfigFile(b.build());
        c.sources.addAll(used);
        return c;
    }

    private static ConfigSource source(Path p, int ordinal) throws IOException {
        String name = p.getFileName().toString();
        try {
            if (name.endsWith(".yaml") || name.endsWith(".yml")) {
                return new YamlConfigSource(p.toUri().toURL(), ordinal);
            }
            return new PropertiesConfigSource(p.toUri().toURL(), ordinal);
        } catch (RuntimeException e) {
            throw new IOException("cannot parse config file " + p + ": " + e.getMessage(), e);
        }
    }

    public List<String> sources() {
        return sources;
    }

    public String get(String key) {
        return config.getOptionalValue(key, String.class).orElse(null);
    }

    /** The devices, in id order, with their keys (type apart). */
    public Map<String, Map<String, String>> devices() {
        Map<String, Map<String, String>> out = new TreeMap<>();
        for (String name : propertyNames()) {
            if (!name.startsWith(DEVICES)) {
                continue;
            }
            String rest = name.substring(DEVICES.length());
            int dot = rest.indexOf('.');
            if (dot <= 0) {
                continue;
            }
            String id = rest.substring(0, dot);
            String key = rest.substring(dot + 1);
            String value = get(name);
            if (value != null) {
                out.computeIfAbsent(id, k -> new TreeMap<>()).put(key, value);
            }
        }
        return out;
    }

    /**
     * The trees under prefix (appliance.blockdev., appliance.export.): one per first-level id, its keys split on
     * dots into nested maps (cache.direct=on is {"cache": {"direct": "on"}}), values as text.
     */
    @SuppressWarnings("unchecked")
    public Map<String, Map<String, Object>> trees(String prefix) {
        Map<String, Map<String, Object>> out = new TreeMap<>();
        for (String name : propertyNames()) {
            if (!name.startsWith(prefix)) {
                continue;
            }
            String[] path = name.substring(prefix.length()).split("\\.");
            if (path.length < 2) {
                continue;
            }
            Map<String, Object> node = out.computeIfAbsent(path[0], k -> new java.util.LinkedHashMap<>());
            for (int i = 1; i < path.length - 1; i++) {
                Object child = node.computeIfAbsent(path[i], k -> new java.util.LinkedHashMap<String, Object>());
                if (!(child instanceof Map)) {
                    child = new java.util.LinkedHashMap<String, Object>();
                    node.put(path[i], child);
                }
                node = (Map<String, Object>) child;
            }
            node.put(path[path.length - 1], get(name));
        }
        return out;
    }

    /** The one tree under prefix (appliance.nbd-server.), keys split on dots as in {@link #trees}; empty if none. */
    public Map<String, Object> tree(String prefix) {
        String parent = prefix.substring(0, prefix.lastIndexOf('.', prefix.length() - 2) + 1);
        Map<String, Object> t = trees(parent).get(prefix.substring(parent.length(), prefix.length() - 1));
        return t == null ? Map.of() : t;
    }

    /** Keys under appliance. that are neither devices nor known settings. */
    public List<String> unknownKeys(List<String> known) {
        List<String> out = new ArrayList<>();
        for (String name : propertyNames()) {
            if (name.startsWith("appliance.") && !name.startsWith(DEVICES) && !name.startsWith(BLOCKDEV)
                    && !name.startsWith(EXPORT) && !name.startsWith(OBJECT) && !name.startsWith(NBD_SERVER)
                    && !known.contains(name)) {
                out.add(name);
            }
        }
        return out;
    }

    private java.util.Set<String> propertyNames() {
        java.util.Set<String> names = new TreeSet<>();
        config.getPropertyNames().forEach(names::add);
        return names;
    }
}

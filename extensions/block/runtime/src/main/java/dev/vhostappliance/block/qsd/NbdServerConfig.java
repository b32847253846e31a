package dev.vhostappliance.block.qsd;

import dev.vhostappliance.block.export.nbd.NbdServer;
import dev.vhostappliance.block.graph.OptionException;
import dev.vhostappliance.block.graph.OptionReader;
import dev.vhostappliance.cli.StartupException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * {@code --nbd-server} and QMP {@code nbd-server-start}: where the NBD server listens (QAPI's SocketAddress:
 * inet, unix or fd), its TLS objects, and max-connections. QMP's legacy address ({@code {"type": "inet",
 * "data": {...}}}) is flattened first, so both give the same errors.
 */
record NbdServerConfig(String type, String host, int port, String path, int fd, String tlsCreds, String tlsAuthz,
        int maxConnections) {

    /** QEMU's NBD port. */
    static final int DEFAULT_PORT = 10809;

    static NbdServerConfig parse(OptionReader r) throws OptionException {
        OptionReader addr = r.child("addr");
        if (addr == null) {
            throw new OptionException("Parameter 'addr' is missing");
        }
        String type = addr.required("type");
        String host = null;
        int port = -1;
        String path = null;
        int fd = -1;
        switch (type) {
            case "inet" -> {
                host = addr.required("host");
                String p = addr.string("port", String.valueOf(DEFAULT_PORT));
                try {
                    port = Integer.parseInt(p);
                } catch (NumberFormatException e) {
                    throw new OptionException("addr.port must be a port number, is '" + p + "'");
                }
                if (port < 0 || port > 65535) {
                    throw new OptionException("addr.port must be a port number, is '" + p + "'");
                }
                addr.bool("numeric", false);
                addr.bool("ipv4", false);
                addr.bool("ipv6", false);
            }
            case "unix" -> path = addr.required("path");
            case "fd" -> fd = addr.fileDescriptor("str");
            default -> throw new OptionException("addr.type '" + type + "' is not supported (inet, unix or fd)");
        }
        addr.finish();
        String tlsCreds = r.string("tls-creds", null);
        String tlsAuthz = r.string("tls-authz", null);
        int max = (int) r.integer("max-connections", 0, 0, 0xffffffffL);
        r.finish();
        if (tlsAuthz != null && tlsCreds == null) {
            throw new OptionException("tls-authz is not supported without tls-creds");
        }
        return new NbdServerConfig(type, host, port, path, fd, tlsCreds, tlsAuthz, max);
    }

    /** QMP's SocketAddressLegacy ({"type": T, "data": {...}}) as the flat SocketAddress of the command line. */
    @SuppressWarnings("unchecked")
    static Map<String, Object> flattenLegacy(Map<String, Object> args) {
        Map<String, Object> out = new LinkedHashMap<>(args);
        if (args.get("addr") instanceof Map<?, ?> addr && addr.get("data") instanceof Map<?, ?> data) {
            Map<String, Object> flat = new LinkedHashMap<>((Map<String, Object>) data);
            flat.put("type", addr.get("type"));
            out.put("addr", flat);
        }
        return out;
    }

    NbdServer open() throws StartupException {
        return switch (type) {
            case "inet" -> NbdServer.listenInet(host, port, maxConnections);
            case "unix" -> NbdServer.listenUnix(Path.of(path), maxConnections);
            default -> NbdServer.inherit(fd, maxConnections);
        };
    }
}

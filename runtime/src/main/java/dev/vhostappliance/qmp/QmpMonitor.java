package dev.vhostappliance.qmp;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.vhostappliance.cli.StartupException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import org.jboss.logging.Logger;

/**
 * A QMP monitor (qmp-spec.txt) on a Unix socket, as qemu-storage-daemon's {@code --chardev socket,...
 * --monitor chardev=...}: greeting, capabilities negotiation, then commands and events. Any number of clients
 * at once, each on a virtual thread; commands run one at a time across all clients (they change shared state).
 * Devices register their commands; the monitor itself provides qmp_capabilities, query-version,
 * query-commands and quit.
 */
public final class QmpMonitor implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(QmpMonitor.class);
    static final ObjectMapper JSON = JsonMapper.builder().enable(JsonReadFeature.ALLOW_SINGLE_QUOTES).build();
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;
    public static final String VERSION = "0.1.0";

    private final Map<String, QmpCommand> commands = new TreeMap<>();
    private final Set<Client> clients = ConcurrentHashMap.newKeySet();
    private final Object commandLock = new Object();
    private final Runnable quit;
    private final java.util.concurrent.atomic.AtomicBoolean quitAfterReply = new java.util.concurrent.atomic.AtomicBoolean();
    private ServerSocketChannel server;
    private Path socketPath;
    private volatile boolean closed;

    /** quit: what the {@code quit} command does (end the process, like qsd). */
    public QmpMonitor(Runnable quit) {
        this.quit = quit;
        register("query-version", a -> version());
        register("query-commands", a -> {
            ArrayNode list = NODES.arrayNode();
            for (String name : commandNames()) {
                list.addObject().put("name", name);
            }
            return list;
        });
        register("quit", a -> {
            quitAfterReply.set(true); // answer first (the client must read it before the socket closes), then end
            return NODES.objectNode();
        });
    }

    public static ObjectNode version() {
        String[] v = VERSION.split("\\.");
        ObjectNode o = NODES.objectNode();
        o.putObject("qemu").put("major", Integer.parseInt(v[0])).put("minor", Integer.parseInt(v[1]))
                .put("micro", Integer.parseInt(v[2]));
        o.put("package", "vhost-appliance " + VERSION);
        return o;
    }

    public synchronized void register(String name, QmpCommand command) {
        commands.put(name, command);
    }

    private synchronized java.util.List<String> commandNames() {
        java.util.List<String> names = new java.util.ArrayList<>(commands.keySet());
        names.add("qmp_capabilities");
        java.util.Collections.sort(names);
        return names;
    }

    private synchronized QmpCommand command(String name) {
        return commands.get(name);
    }

    /** Listens on path (a stale socket file is replaced, a live one refused) and accepts clients on a thread. */
    public void listen(Path path) throws StartupException {
        try {
            if (Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
                boolean live;
                try (SocketChannel probe = SocketChannel.open(UnixDomainSocketAddress.of(path))) {
                    live = true;
                } catch (IOException e) {
                    live = false;
                }
                if (live) {
                    throw new StartupException("monitor socket " + path + " is in use by another process");
                }
                Files.deleteIfExists(path);
            }
            server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            Path bound = dev.vhostappliance.server.SocketPaths.bindingPath(path);
            server.bind(UnixDomainSocketAddress.of(bound), 16); // a backlog: clients may connect at once
            dev.vhostappliance.server.SocketPaths.publish(bound, path);
            socketPath = path;
        } catch (IOException e) {
            throw new StartupException("cannot listen on monitor socket " + path + ": " + e.getMessage(), e);
        }
        Thread.ofPlatform().name("qmp-accept").daemon(true).start(() -> {
            while (!closed) {
                try {
                    SocketChannel c = server.accept();
                    Client client = new Client(c);
                    clients.add(client);
                    Thread.ofVirtual().name("qmp-client").start(client::run);
                } catch (IOException e) {
                    if (!closed) {
                        LOG.warnf("monitor %s: %s", path, e.getMessage());
                    }
                    return;
                }
            }
        });
    }

    /** Sends an event to every client in command mode. */
    public void event(String name, ObjectNode data) {
        java.time.Instant now = java.time.Instant.now();
        ObjectNode e = NODES.objectNode();
        e.put("event", name);
        if (data != null) {
            e.set("data", data);
        }
        e.putObject("timestamp").put("seconds", now.getEpochSecond()).put("microseconds", now.getNano() / 1000);
        for (Client c : clients) {
            if (c.commandMode) {
                c.send(e);
            }
        }
    }

    /** Runs one request (parsed JSON text) as a client would; the response object. For tests and the config file. */
    ObjectNode handle(String text, boolean[] commandMode) {
        JsonNode req;
        try {
            req = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            return error(null, QmpException.GENERIC_ERROR, "JSON parse error, " + e.getOriginalMessage());
        }
        if (req == null || !req.isObject()) {
            return error(null, QmpException.GENERIC_ERROR, "QMP input must be a JSON object");
        }
        JsonNode id = req.get("id");
        JsonNode exec = req.get("execute");
        if (exec == null) {
            return error(id, QmpException.GENERIC_ERROR,
                    req.has("exec-oob") ? "Out-of-band is not supported" : "QMP input lacks member 'execute'");
        }
        if (!exec.isTextual()) {
            return error(id, QmpException.GENERIC_ERROR, "QMP input member 'execute' must be a string");
        }
        var names = req.fieldNames();
        while (names.hasNext()) {
            String f = names.next();
            if (!f.equals("execute") && !f.equals("arguments") && !f.equals("id")) {
                return error(id, QmpException.GENERIC_ERROR, "QMP input member '" + f + "' is unexpected");
            }
        }
        JsonNode args = req.get("arguments");
        if (args != null && !args.isObject()) {
            return error(id, QmpException.GENERIC_ERROR, "QMP input member 'arguments' must be an object");
        }
        ObjectNode arguments = args == null ? NODES.objectNode() : (ObjectNode) args;
        String name = exec.asText();
        if (name.equals("qmp_capabilities")) {
            if (commandMode[0]) {
                return error(id, QmpException.COMMAND_NOT_FOUND, "Capabilities negotiation is already complete, command ignored");
            }
            JsonNode enable = arguments.get("enable");
            if (enable != null && enable.isArray() && !enable.isEmpty()) {
                return error(id, QmpException.GENERIC_ERROR, "Capability '" + enable.get(0).asText() + "' not available");
            }
            commandMode[0] = true;
            return result(id, NODES.objectNode());
        }
        if (!commandMode[0]) {
            return error(id, QmpException.COMMAND_NOT_FOUND, "Expecting capabilities negotiation with 'qmp_capabilities'");
        }
        QmpCommand cmd = command(name);
        if (cmd == null) {
            return error(id, QmpException.COMMAND_NOT_FOUND, "The command " + name + " has not been found");
        }
        try {
            JsonNode ret;
            synchronized (commandLock) {
                ret = cmd.run(arguments);
            }
            return result(id, ret == null ? NODES.objectNode() : ret);
        } catch (QmpException e) {
            return error(id, e.errorClass(), e.getMessage());
        } catch (RuntimeException e) {
            LOG.warnf(e, "QMP %s failed", name);
            return error(id, QmpException.GENERIC_ERROR, name + " failed: " + e);
        }
    }

    private static ObjectNode result(JsonNode id, JsonNode ret) {
        ObjectNode o = NODES.objectNode();
        o.set("return", ret);
        if (id != null) {
            o.set("id", id);
        }
        return o;
    }

    private static ObjectNode error(JsonNode id, String cls, String desc) {
        ObjectNode o = NODES.objectNode();
        o.putObject("error").put("class", cls).put("desc", desc);
        if (id != null) {
            o.set("id", id);
        }
        return o;
    }

    /** One connected client. */
    private final class Client {
        private final SocketChannel channel;
        private final OutputStream out;
        volatile boolean commandMode;

        Client(SocketChannel channel) {
            this.channel = channel;
            this.out = Channels.newOutputStream(channel);
        }

        void run() {
            try (channel) {
                ObjectNode greeting = NODES.objectNode();
                ObjectNode qmp = greeting.putObject("QMP");
                qmp.set("version", version());
                qmp.putArray("capabilities");
                send(greeting);
                InputStream in = Channels.newInputStream(channel);
                JsonObjectFramer framer = new JsonObjectFramer(in);
                boolean[] mode = {false};
                for (String text = framer.next(); text != null; text = framer.next()) {
                    ObjectNode resp = handle(text, mode);
                    commandMode = mode[0];
                    send(resp);
                    if (quitAfterReply.compareAndSet(true, false)) {
                        Thread.ofVirtual().start(quit);
                    }
                }
            } catch (IOException e) {
                LOG.debugf("QMP client gone: %s", e.getMessage());
            } finally {
                clients.remove(this);
            }
        }

        void send(ObjectNode o) {
            byte[] b = (o.toString() + "\r\n").getBytes(StandardCharsets.UTF_8);
            synchronized (this) {
                try {
                    out.write(b);
                    out.flush();
                } catch (IOException e) {
                    LOG.debugf("QMP client gone: %s", e.getMessage());
                }
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        try {
            if (server != null) {
                server.close();
            }
        } catch (IOException e) {
            // closing anyway
        }
        for (Client c : clients) {
            try {
                c.channel.close();
            } catch (IOException e) {
                // closing anyway
            }
        }
        if (socketPath != null) {
            try {
                Files.deleteIfExists(socketPath);
            } catch (IOException e) {
                LOG.debugf("monitor socket not removed: %s", e.getMessage());
            }
        }
    }
}

package dev.vhostappliance.app;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.Writer;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/** A minimal QMP client (qmp-spec.txt): greeting, qmp_capabilities, then one command at a time; events skipped. */
final class Qmp implements AutoCloseable {
    private final SocketChannel channel;
    private final BufferedReader in;
    private final Writer out;
    final String greeting;

    private Qmp(SocketChannel channel) throws IOException {
        this.channel = channel;
        this.in = new BufferedReader(new InputStreamReader(Channels.newInputStream(channel), StandardCharsets.UTF_8));
        this.out = Channels.newWriter(channel, StandardCharsets.UTF_8);
        this.greeting = in.readLine();
    }

    /** Connects (retrying while the socket is not there yet) and enters command mode. */
    static Qmp connect(Path socket, long timeoutMillis) throws Exception {
        long deadline = System.currentTimeMillis() + timeoutMillis;
        while (true) {
            try {
                Qmp q = new Qmp(SocketChannel.open(UnixDomainSocketAddress.of(socket)));
                String r = q.execute("{\"execute\":\"qmp_capabilities\"}");
                if (!r.contains("\"return\"")) {
                    throw new IOException("qmp_capabilities: " + r);
                }
                return q;
            } catch (IOException e) {
                if (System.currentTimeMillis() > deadline) {
                    throw e;
                }
                Thread.sleep(100);
            }
        }
    }

    /** Sends one command (a JSON object) and returns its response line. */
    String execute(String json) throws IOException {
        out.write(json + "\n");
        out.flush();
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            if (!line.startsWith("{\"event\"") && !line.contains("\"event\":")) {
                return line;
            }
        }
        throw new IOException("QMP connection closed");
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}

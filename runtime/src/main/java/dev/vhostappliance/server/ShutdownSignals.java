package dev.vhostappliance.server;

import sun.misc.Signal;

/**
 * SIGTERM and SIGINT end the backend cleanly with status 0 (the vhost-user backend conventions): the JVM's
 * default would run shutdown hooks and exit 143. The handler only asks the server to stop; the command then
 * returns normally and the process exits 0 after closing connections and removing its socket file.
 */
public final class ShutdownSignals {
    private ShutdownSignals() {
    }

    public static void onTerminate(Runnable stop) {
        for (String name : new String[] {"TERM", "INT"}) {
            Signal.handle(new Signal(name), s -> stop.run());
        }
    }
}

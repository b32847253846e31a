package dev.vhostappliance.server;

/** Serves one connected frontend until it disconnects or {@code stop} is signalled. */
@FunctionalInterface
public interface ConnectionHandler {
    void serve(int connectionFd, Wakeup stop) throws Exception;
}

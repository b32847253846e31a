package dev.vhostappliance.block.io;

/** Where an engine delivers finished requests (the export's queue). */
@FunctionalInterface
public interface IoCompletionSink {
    void completed(IoRequest request);
}

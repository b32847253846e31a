package dev.vhostappliance.input;

/**
 * Where a virtio-input device's events come from and where the guest's status events (LEDs, sounds) go: a
 * Linux evdev device or a virtual source fed over a socket. Sources run their own thread and hand events to
 * the sink one at a time, in order, batches ending with SYN_REPORT.
 */
public interface InputSource extends AutoCloseable {

    /** Receives the source's events; callable from any one thread. */
    @FunctionalInterface
    interface EventSink {
        void event(int type, int code, int value);
    }

    /** The identity and capabilities the guest sees; fixed for the life of the source. */
    InputIdentity identity();

    /** Starts delivering events to sink. */
    void start(EventSink sink);

    /** An event from the guest (statusq): an LED turned on, a sound, a repeat rate. */
    void statusEvent(int type, int code, int value);

    /** Stops the thread and releases the device or socket. */
    @Override
    void close();
}

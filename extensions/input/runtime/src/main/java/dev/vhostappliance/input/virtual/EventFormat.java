package dev.vhostappliance.input.virtual;

/** How events are written to a virtual source's socket. */
public enum EventFormat {
    /** One JSON object a line (see {@link JsonEventLine}). */
    JSON,
    /** Raw 24-byte Linux struct input_event records (the timestamp is ignored). */
    RAW
}

package dev.vhostappliance.block.export.nbd;

/** The connection ends: the client went away, broke the protocol, timed out, or the server stops it. */
final class ConnectionClosedException extends Exception {
    ConnectionClosedException(String why) {
        super(why, null, false, false); // an ordinary end: no stack trace
    }
}

package dev.vhostappliance.block.export;

import dev.vhostappliance.block.node.BlockNode;
import dev.vhostappliance.cli.StartupException;

/**
 * One export of a block node, whatever carries it (vhost-user-blk, NBD): what the daemon and its QMP
 * commands need to run, list and remove it. Each kind lives in a package of its own below this one.
 */
public interface BlockExport {

    /** The export's id (block-export-add's id). */
    String id();

    /** QAPI's BlockExportType: {@code vhost-user-blk}, {@code nbd}. */
    String type();

    String nodeName();

    BlockNode node();

    /** Starts serving; returns at once. */
    void start();

    /** Asks it to stop serving (from any thread, SIGTERM included); {@link #awaitStop} waits. */
    void requestStop();

    void awaitStop(long millis);

    /** True while a client uses it. */
    boolean inUse();

    /** block-export-del: safe refuses while in use, hard disconnects; it is closed when this returns. */
    void delete(boolean hard) throws StartupException;

    /** The node's size changed (block_resize): tell the clients that can be told. */
    default void sizeChanged() {
    }

    /** Releases what it holds (sockets); the node belongs to the graph. */
    void close();
}

package dev.vhostappliance.block.export.nbd;

import dev.vhostappliance.block.export.ExportedNode;
import dev.vhostappliance.block.node.BlockNode;
import dev.vhostappliance.cli.StartupException;

/**
 * A node the NBD server offers under a name (qemu-storage-daemon's {@code --export type=nbd}):
 * what a client sees in the handshake, and whether it may write.
 */
public final class NbdExport extends ExportedNode {
    private final String name;
    private final String description;
    private final boolean writable;
    private final boolean allocationDepth;
    private final NbdCounters counters = new NbdCounters();
    /** The server it is added to, once added. */
    private volatile NbdServer server;

    /** id: the block export's id; name: what clients ask for (defaults to the node name); description may be null. */
    public NbdExport(String id, String name, String description, String nodeName, BlockNode node, boolean writable,
            boolean allocationDepth) {
        super(id, nodeName, node);
        this.name = name;
        this.description = description;
        this.writable = writable;
        this.allocationDepth = allocationDepth;
    }

    @Override
    public String type() {
        return "nbd";
    }


    public String name() {
        return name;
    }

    public String description() {
        return description;
    }



    public boolean writable() {
        return writable;
    }

    /** qemu:allocation-depth is offered as a metadata context. */
    public boolean allocationDepth() {
        return allocationDepth;
    }

    public NbdCounters counters() {
        return counters;
    }

    /** Offers this export on server (its name must be new there); clients find it from now on. */
    public void addTo(NbdServer server) throws StartupException {
        server.add(this);
        this.server = server;
    }

    @Override
    public void start() {
        // served by the server's threads as soon as it was added
    }

    @Override
    public void requestStop() {
        // the server disconnects its clients when it closes
    }

    @Override
    public void awaitStop(long millis) {
    }

    @Override
    public boolean inUse() {
        NbdServer s = server;
        return s != null && s.connectionsTo(this) > 0;
    }

    @Override
    public void delete(boolean hard) throws StartupException {
        NbdServer s = server;
        if (s != null) {
            s.remove(this, hard);
            server = null;
        }
    }

    @Override
    public void close() {
        try {
            delete(true);
        } catch (StartupException e) {
            // hard removal does not refuse
        }
    }

    /** The transmission flags of this export for a client that did (or did not) negotiate structured replies. */
    int transmissionFlags(boolean structured) {
        int flags = Nbd.FLAG_HAS_FLAGS | Nbd.FLAG_SEND_FLUSH | Nbd.FLAG_SEND_CACHE
                // one node and one page cache behind every connection: a flush on one covers all
                | Nbd.FLAG_CAN_MULTI_CONN;
        if (structured) {
            flags |= Nbd.FLAG_SEND_DF; // a read is always answered in one data chunk
        }
        if (writable) {
            flags |= Nbd.FLAG_SEND_FUA | Nbd.FLAG_SEND_TRIM | Nbd.FLAG_SEND_WRITE_ZEROES | Nbd.FLAG_SEND_FAST_ZERO;
        } else {
            flags |= Nbd.FLAG_READ_ONLY;
        }
        return flags;
    }

    /** The smallest request the node can serve: O_DIRECT files need sector-aligned offsets and lengths. */
    int minimumBlock() {
        return Math.max(Nbd.MIN_BLOCK, node().memoryAlignment());
    }
}

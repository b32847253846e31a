package dev.vhostappliance.block.export.nbd;

/**
 * What a handshake agreed on: the export, how replies are framed, the metadata contexts selected for block
 * status (their ids, -1 where not selected), and the transport to go on with (TLS after STARTTLS).
 */
record NbdSession(NbdExport export, boolean structured, int baseAllocationId, int allocationDepthId, NbdSocket socket) {
    static final int BASE_ALLOCATION_ID = 0;
    static final int ALLOCATION_DEPTH_ID = 1;

    boolean anyContext() {
        return baseAllocationId >= 0 || allocationDepthId >= 0;
    }
}

package dev.vhostappliance.block.export.nbd;

/**
 * What a handshake agreed on: the export, how replies are framed, and the metadata contexts selected for
 * block status (their ids, -1 where not selected).
 */
record NbdSession(NbdExport export, boolean structured, int baseAllocationId, int allocationDepthId) {
    static final int BASE_ALLOCATION_ID = 0;
    static final int ALLOCATION_DEPTH_ID = 1;

    boolean anyContext() {
        return baseAllocationId >= 0 || allocationDepthId >= 0;
    }
}

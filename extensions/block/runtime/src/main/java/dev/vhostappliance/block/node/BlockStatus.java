package dev.vhostappliance.block.node;

/**
 * What a node knows about a run of its bytes, for NBD's block status (and anything else that copies only
 * data): filled by {@link BlockNode#blockStatus}. A node that knows nothing reports plain data at depth 1,
 * which is always true.
 */
public final class BlockStatus {
    /** The bytes are not allocated in the storage (a hole in a sparse file, an unallocated cluster). */
    public boolean hole;
    /** The bytes read as zeroes. */
    public boolean zero;
    /**
     * Where in the chain the bytes come from (QEMU's allocation depth): 1 this node, 2 and more a backing
     * node, 0 nowhere (they read as zeroes because no layer has them).
     */
    public int depth;

    /** Sets all three; returns length, so a node can end with {@code return status.set(...)}. */
    public long set(boolean hole, boolean zero, int depth, long length) {
        this.hole = hole;
        this.zero = zero;
        this.depth = depth;
        return length;
    }
}

package dev.vhostappliance.block.qcow2;

/**
 * The qcow2 driver's options (QEMU's BlockdevOptionsQcow2 that we implement). Cache sizes are bytes, -1 for
 * QEMU's defaults: an L2 cache covering the whole image up to 32 MiB, a refcount cache of four clusters.
 */
public record Qcow2Options(
        boolean readOnly,
        long cacheSize,
        long l2CacheSize,
        long l2CacheEntrySize,
        long refcountCacheSize,
        boolean discardUnmap,
        boolean passDiscardRequest,
        boolean passDiscardOther,
        Boolean lazyRefcounts,
        boolean overlapCheck) {

    public static Qcow2Options defaults(boolean readOnly) {
        return new Qcow2Options(readOnly, -1, -1, -1, -1, false, true, true, null, true);
    }

    public Qcow2Options withDiscard(boolean unmap) {
        return new Qcow2Options(readOnly, cacheSize, l2CacheSize, l2CacheEntrySize, refcountCacheSize, unmap,
                passDiscardRequest, passDiscardOther, lazyRefcounts, overlapCheck);
    }
}

package dev.vhostappliance.block.rbd;

import java.util.List;

/**
 * qemu-storage-daemon's BlockdevOptionsRbd as we take it: where the image is ({@code pool}, {@code namespace},
 * {@code image}, {@code snapshot}), how to reach and join the cluster ({@code conf}, {@code user}, the key of
 * {@code key-secret}, {@code auth-client-required}, {@code server}), and the node's own {@code read-only} and
 * {@code cache.direct} (librbd's cache off, as QEMU does) and {@code discard} (unmap: discards reach the image),
 * and ours, {@code x-exclusive-lock} (on: writers hold the image's exclusive lock, see {@link RbdNode}). key and
 * servers may be null or empty.
 */
public record RbdOptions(String pool, String namespace, String image, String snapshot, String conf, String user,
        String key, List<String> authClientRequired, List<Server> servers, boolean readOnly, boolean direct,
        boolean unmapOnDiscard, boolean exclusiveLock) {

    /** A monitor address of the {@code server} list. */
    public record Server(String host, String port) {
        /** As Ceph's mon_host takes it: IPv6 addresses in brackets. */
        String monHost() {
            return (host.contains(":") && !host.startsWith("[") ? "[" + host + "]" : host) + ":" + port;
        }
    }

    /** "pool[/namespace]/image[@snapshot]", as rbd's command line names an image. */
    public String spec() {
        return pool + "/" + (namespace == null || namespace.isEmpty() ? "" : namespace + "/") + image
                + (snapshot == null ? "" : "@" + snapshot);
    }
}

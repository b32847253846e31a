package dev.vhostappliance.block.export.vhostuser;

import dev.vhostappliance.block.export.ExportedNode;
import dev.vhostappliance.cli.StartupException;
import dev.vhostappliance.server.BackendServer;
import dev.vhostappliance.server.ServedDevice;

/** A vhost-user-blk export: its device, and the socket and thread it is served on. */
public final class VhostUserBlkExport extends ExportedNode {
    private final VirtioBlkDevice device;
    private final ServedDevice serving;
    /** A resize made outside (an RBD image grown on another host) reaches the guest as a config change. */
    private final Runnable resized = this::sizeChanged;

    public VhostUserBlkExport(String id, String nodeName, VirtioBlkDevice device, BackendServer server) {
        super(id, nodeName, device.node());
        this.device = device;
        this.serving = new ServedDevice("export", id, device, server, false);
        device.node().onResize(resized);
    }

    @Override
    public String type() {
        return "vhost-user-blk";
    }



    public VirtioBlkDevice device() {
        return device;
    }

    public ServedDevice serving() {
        return serving;
    }

    @Override
    public void start() {
        serving.start();
    }

    @Override
    public void requestStop() {
        serving.requestStop();
    }

    @Override
    public void awaitStop(long millis) {
        serving.stop(millis);
    }

    @Override
    public boolean inUse() {
        return serving.connected();
    }

    @Override
    public void delete(boolean hard) throws StartupException {
        if (!hard && serving.connected()) {
            throw new StartupException("export '" + id() + "' still in use");
        }
        device.node().removeResizeListener(resized);
        serving.stopAndClose();
    }

    @Override
    public void sizeChanged() {
        device.refreshCapacity();
    }

    @Override
    public void close() {
        device.node().removeResizeListener(resized);
        serving.close();
    }
}

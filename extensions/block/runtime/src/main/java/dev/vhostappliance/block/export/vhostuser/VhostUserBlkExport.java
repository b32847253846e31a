package dev.vhostappliance.block.export.vhostuser;

import dev.vhostappliance.block.export.ExportedNode;
import dev.vhostappliance.cli.StartupException;
import dev.vhostappliance.server.BackendServer;
import dev.vhostappliance.server.ServedDevice;

/** A vhost-user-blk export: its device, and the socket and thread it is served on. */
public final class VhostUserBlkExport extends ExportedNode {
    private final VirtioBlkDevice device;
    private final ServedDevice serving;

    public VhostUserBlkExport(String id, String nodeName, VirtioBlkDevice device, BackendServer server) {
        super(id, nodeName, device.node());
        this.device = device;
        this.serving = new ServedDevice("export", id, device, server, false);
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
        serving.stopAndClose();
    }

    @Override
    public void sizeChanged() {
        device.refreshCapacity();
    }

    @Override
    public void close() {
        serving.close();
    }
}

package dev.vhostappliance.gpu;

import dev.vhostappliance.device.VhostDeviceProvider;
import dev.vhostappliance.gpu.virgl.VirglRenderer;
import java.util.List;

/** The gpu device as the appliance sees it: type, program name, capabilities, command. */
public final class GpuDeviceProvider implements VhostDeviceProvider {

    public static final String TYPE = "gpu";

    @Override
    public String type() {
        return TYPE;
    }

    @Override
    public String programName() {
        return "vhost-user-gpu";
    }

    @Override
    public String description() {
        return "virtio-gpu: 2D display, 3D with virgl, through QEMU (vhost-user-gpu)";
    }

    /**
     * virgl when virglrenderer loads here; render-node only when a render node exists (libvirt 9 refuses to
     * start a backend that advertises render-node on a host without /dev/dri).
     */
    @Override
    public List<String> capabilities() {
        List<String> caps = new java.util.ArrayList<>();
        if (VirglRenderer.libraryAvailable()) {
            caps.add("virgl");
            if (VirglRenderer.firstRenderNode() != null) {
                caps.add("render-node");
            }
        }
        return caps;
    }

    @Override
    public Object newCommand() {
        return new GpuCommand();
    }
}

package dev.vhostappliance.gpu.deployment;

import dev.vhostappliance.gpu.GpuDeviceProvider;
import dev.vhostappliance.deployment.VhostDeviceBuildItem;
import io.quarkus.deployment.annotations.BuildStep;
import io.quarkus.deployment.builditem.FeatureBuildItem;

/** Announces the gpu device to the core extension. */
class GpuDeviceProcessor {

    @BuildStep
    FeatureBuildItem feature() {
        return new FeatureBuildItem("vhost-appliance-gpu");
    }

    @BuildStep
    VhostDeviceBuildItem device() {
        return new VhostDeviceBuildItem(GpuDeviceProvider.TYPE, GpuDeviceProvider.class);
    }
}

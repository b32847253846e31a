package dev.vhostappliance.block.deployment;

import dev.vhostappliance.block.BlockDeviceProvider;
import dev.vhostappliance.deployment.VhostDeviceBuildItem;
import io.quarkus.deployment.annotations.BuildStep;
import io.quarkus.deployment.builditem.FeatureBuildItem;

/** Announces the block device to the core extension. */
class BlockDeviceProcessor {

    @BuildStep
    FeatureBuildItem feature() {
        return new FeatureBuildItem("vhost-appliance-block");
    }

    @BuildStep
    VhostDeviceBuildItem device() {
        return new VhostDeviceBuildItem(BlockDeviceProvider.TYPE, BlockDeviceProvider.class);
    }
}

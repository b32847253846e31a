package dev.vhostappliance.block.deployment;

import dev.vhostappliance.block.BlockDeviceProvider;
import dev.vhostappliance.deployment.VhostDeviceBuildItem;
import io.quarkus.deployment.annotations.BuildStep;
import io.quarkus.deployment.builditem.FeatureBuildItem;
import io.quarkus.deployment.builditem.nativeimage.RuntimeInitializedClassBuildItem;
import java.util.List;

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

    /**
     * Ceph's client libraries are looked up, and librbd's callbacks made into upcall stubs, when these classes
     * initialise: in a native image that must happen at run time, on the machine that has (or lacks) librbd.
     */
    @BuildStep
    List<RuntimeInitializedClassBuildItem> rbdAtRunTime() {
        return List.of(new RuntimeInitializedClassBuildItem("dev.vhostappliance.block.rbd.Librbd"),
                new RuntimeInitializedClassBuildItem("dev.vhostappliance.block.rbd.RbdImage"),
                new RuntimeInitializedClassBuildItem("dev.vhostappliance.block.io.RbdEngine"));
    }
}

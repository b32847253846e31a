package dev.vhostappliance.input.deployment;

import dev.vhostappliance.input.InputDeviceProvider;
import dev.vhostappliance.deployment.VhostDeviceBuildItem;
import io.quarkus.deployment.annotations.BuildStep;
import io.quarkus.deployment.builditem.FeatureBuildItem;

/** Announces the input device to the core extension. */
class InputDeviceProcessor {

    @BuildStep
    FeatureBuildItem feature() {
        return new FeatureBuildItem("vhost-appliance-input");
    }

    @BuildStep
    VhostDeviceBuildItem device() {
        return new VhostDeviceBuildItem(InputDeviceProvider.TYPE, InputDeviceProvider.class);
    }
}

package dev.vhostappliance.deployment;

import dev.vhostappliance.device.VhostDeviceProvider;
import io.quarkus.builder.item.MultiBuildItem;

/**
 * Produced by each device extension's deployment module: "this application contains device TYPE,
 * provided by PROVIDER". The core extension turns the set into the run-time {@code DeviceCatalog}.
 */
public final class VhostDeviceBuildItem extends MultiBuildItem {
    private final String type;
    private final Class<? extends VhostDeviceProvider> provider;

    public VhostDeviceBuildItem(String type, Class<? extends VhostDeviceProvider> provider) {
        this.type = type;
        this.provider = provider;
    }

    public String type() {
        return type;
    }

    public Class<? extends VhostDeviceProvider> provider() {
        return provider;
    }
}

package dev.vhostappliance.runtime;

import dev.vhostappliance.device.DeviceCatalog;
import dev.vhostappliance.device.VhostDeviceProvider;
import io.quarkus.runtime.annotations.Recorder;

/** Replays, at static init, the device registrations decided at build time. */
@Recorder
public class VhostApplianceRecorder {

    public void registerDevice(Class<? extends VhostDeviceProvider> providerClass) {
        try {
            DeviceCatalog.register(providerClass.getDeclaredConstructor().newInstance());
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot instantiate device provider " + providerClass.getName(), e);
        }
    }
}

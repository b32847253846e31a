package dev.vhostappliance.device;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;

/**
 * The devices built into this application, filled at static init by the recorder from the build items the
 * device extensions produced. Ordered by type name so help output and tests are stable.
 */
public final class DeviceCatalog {
    private static final List<VhostDeviceProvider> PROVIDERS = new ArrayList<>();

    private DeviceCatalog() {
    }

    public static synchronized void register(VhostDeviceProvider provider) {
        for (VhostDeviceProvider p : PROVIDERS) {
            if (p.type().equals(provider.type())) {
                throw new IllegalStateException("two device extensions provide type " + provider.type());
            }
        }
        PROVIDERS.add(provider);
        PROVIDERS.sort(Comparator.comparing(VhostDeviceProvider::type));
    }

    public static synchronized List<VhostDeviceProvider> all() {
        return Collections.unmodifiableList(new ArrayList<>(PROVIDERS));
    }

    public static synchronized Optional<VhostDeviceProvider> byType(String type) {
        return PROVIDERS.stream().filter(p -> p.type().equals(type)).findFirst();
    }

    public static synchronized Optional<VhostDeviceProvider> byProgramName(String name) {
        return PROVIDERS.stream().filter(p -> p.programName().equals(name)).findFirst();
    }
}

package dev.vhostappliance.app;

import io.quarkus.runtime.QuarkusApplication;
import io.quarkus.runtime.annotations.QuarkusMain;

/**
 * Entry point. The program name decides the device when the binary is invoked through a device symlink
 * ({@code vhost-user-blk}, ...); otherwise the first argument names it ({@code vhost-appliance block ...}).
 * The launchers pass the name they were invoked under in the system property {@code vhost.invoked-as}.
 */
@QuarkusMain
public class ApplianceMain implements QuarkusApplication {

    @Override
    public int run(String... args) {
        String invokedAs = System.getProperty(ApplianceCli.INVOKED_AS_PROPERTY, ApplianceCli.PROGRAM);
        return new ApplianceCli(System.out, System.err).run(invokedAs, args);
    }
}

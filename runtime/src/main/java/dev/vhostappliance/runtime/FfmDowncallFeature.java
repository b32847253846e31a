package dev.vhostappliance.runtime;

import dev.vhostappliance.libc.Downcall;
import org.graalvm.nativeimage.hosted.Feature;
import org.graalvm.nativeimage.hosted.RuntimeForeignAccess;

/**
 * native-image Feature (added by the core deployment module only for native builds): registers every
 * libc downcall of {@link Downcall} at image build time, with the same descriptor and options the JVM
 * build uses, so the handles in {@code LibC} link in a native executable.
 */
public final class FfmDowncallFeature implements Feature {

    @Override
    public String getDescription() {
        return "vhost-appliance FFM downcalls (libc)";
    }

    @Override
    public void duringSetup(DuringSetupAccess access) {
        for (Downcall d : Downcall.values()) {
            RuntimeForeignAccess.registerForDowncall(d.descriptor(), (Object[]) d.options());
        }
    }
}

package dev.vhostappliance.deployment;

import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.runtime.FfmDowncallFeature;
import dev.vhostappliance.runtime.VhostApplianceRecorder;
import io.quarkus.deployment.annotations.BuildProducer;
import io.quarkus.deployment.annotations.BuildStep;
import io.quarkus.deployment.annotations.ExecutionTime;
import io.quarkus.deployment.annotations.Record;
import io.quarkus.deployment.builditem.FeatureBuildItem;
import io.quarkus.deployment.builditem.NativeImageFeatureBuildItem;
import io.quarkus.deployment.builditem.nativeimage.ReflectiveClassBuildItem;
import io.quarkus.deployment.builditem.nativeimage.RuntimeInitializedClassBuildItem;
import io.quarkus.deployment.pkg.steps.NativeOrNativeSourcesBuild;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/** Build steps of the core extension: device discovery and native-image registration of FFM downcalls. */
class VhostApplianceProcessor {

    static final String FEATURE = "vhost-appliance-core";

    @BuildStep
    FeatureBuildItem feature() {
        return new FeatureBuildItem(FEATURE);
    }

    /** The device set is fixed at build time: each device extension on the class path contributed one item. */
    @BuildStep
    @Record(ExecutionTime.STATIC_INIT)
    void registerDevices(List<VhostDeviceBuildItem> devices, VhostApplianceRecorder recorder,
            BuildProducer<ReflectiveClassBuildItem> reflective) {
        Set<String> seen = new HashSet<>();
        devices.stream().sorted((a, b) -> a.type().compareTo(b.type())).forEach(d -> {
            if (!seen.add(d.type())) {
                throw new IllegalStateException("two device extensions provide type " + d.type());
            }
            reflective.produce(ReflectiveClassBuildItem.builder(d.provider()).constructors().build());
            recorder.registerDevice(d.provider());
        });
    }

    /** Native image: register every libc downcall at image build time; the handles themselves are made at run time. */
    @BuildStep(onlyIf = NativeOrNativeSourcesBuild.class)
    void nativeDowncalls(BuildProducer<NativeImageFeatureBuildItem> features,
            BuildProducer<RuntimeInitializedClassBuildItem> runtimeInit) {
        features.produce(new NativeImageFeatureBuildItem(FfmDowncallFeature.class));
        runtimeInit.produce(new RuntimeInitializedClassBuildItem(LibC.class.getName()));
        for (Class<?> holder : LibC.class.getDeclaredClasses()) { // the lazily linked handles
            runtimeInit.produce(new RuntimeInitializedClassBuildItem(holder.getName()));
        }
    }
}

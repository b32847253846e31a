package dev.vhostappliance.input;

/** One absolute axis: its range, noise filter, dead zone and resolution (struct virtio_input_absinfo). */
public record AbsInfo(int min, int max, int fuzz, int flat, int resolution) {
    public AbsInfo {
        if (min > max) {
            throw new IllegalArgumentException("axis minimum " + min + " is above its maximum " + max);
        }
    }
}

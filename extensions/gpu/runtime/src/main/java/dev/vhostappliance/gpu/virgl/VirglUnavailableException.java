package dev.vhostappliance.gpu.virgl;

/** 3D cannot be had here: the sentence says why (library missing, EGL refused, ...). */
public final class VirglUnavailableException extends Exception {
    public VirglUnavailableException(String message) {
        super(message);
    }
}

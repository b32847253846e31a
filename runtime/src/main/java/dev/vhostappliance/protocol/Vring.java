package dev.vhostappliance.protocol;

import dev.vhostappliance.libc.LibC;
import java.lang.foreign.MemorySegment;

/** The protocol's view of one virtqueue: what the frontend configured, and the worker once started. */
final class Vring {
    final int index;
    int num;
    boolean addrSet;
    long descUser;
    long usedUser;
    /** VHOST_VRING_F_LOG: the used ring's guest address for dirty logging, or -1. */
    long usedLogAddress = -1;
    long availUser;
    MemorySegment desc;
    MemorySegment avail;
    MemorySegment used;
    int base;
    boolean kickSet;
    int kickFd = -1;
    int callFd = -1;
    int errFd = -1;
    boolean enabled;
    /** Written by the protocol thread, read by {@link VhostUserBackend#wakeQueue} from device threads. */
    volatile QueueWorker worker;

    Vring(int index) {
        this.index = index;
    }

    boolean started() {
        return worker != null;
    }

    void closeFds() {
        LibC.close(kickFd);
        LibC.close(callFd);
        LibC.close(errFd);
        kickFd = -1;
        callFd = -1;
        errFd = -1;
        kickSet = false;
    }
}

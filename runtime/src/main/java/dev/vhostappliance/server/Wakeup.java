package dev.vhostappliance.server;

import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.NativeCallException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * An eventfd that threads blocked in poll(2) include in their set, so that {@link #signal()} (callable from
 * any thread, including a signal handler thread) wakes them. Once signalled it stays readable.
 */
public final class Wakeup implements AutoCloseable {
    private final int fd;
    private final MemorySegment one = Arena.global().allocate(ValueLayout.JAVA_LONG);
    private volatile boolean signalled;

    public Wakeup() throws NativeCallException {
        this.fd = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
        one.set(ValueLayout.JAVA_LONG, 0, 1L);
    }

    public int fd() {
        return fd;
    }

    public boolean isSignalled() {
        return signalled;
    }

    /** Latches: every later {@link #isSignalled()} is true and the fd stays readable. */
    public void signal() {
        signalled = true;
        LibC.rawWrite(fd, one, 8);
    }

    /**
     * Wakes the poller once without latching; the poller calls {@link #drain}. A word write without errno
     * capture: pokes come per request (a qcow2 write held for another queue's allocation goes back this way),
     * and a capturing downcall allocates whenever the JIT does not inline it.
     */
    public void poke() {
        LibC.writeWord(fd, one);
    }

    /** Consumes pending pokes (the fd is non-blocking), without errno capture as {@link #poke}. */
    public void drain(MemorySegment scratch8) {
        LibC.readWord(fd, scratch8);
    }

    @Override
    public void close() {
        LibC.close(fd);
    }
}

package dev.vhostappliance.server;

import dev.vhostappliance.libc.Errno;
import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.NativeCallException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** A reusable poll(2) set of up to a few fds (struct pollfd: int fd; short events; short revents). */
public final class Poll {
    private static final int POLLFD_SIZE = 8;
    private final MemorySegment fds;
    private final int capacity;
    private int count;

    public Poll(int capacity) {
        this.capacity = capacity;
        this.fds = Arena.ofAuto().allocate((long) POLLFD_SIZE * capacity, 8);
    }

    public Poll clear() {
        count = 0;
        return this;
    }

    /** Adds fd (for POLLIN); returns its slot. */
    public int add(int fd) {
        return add(fd, LibC.POLLIN);
    }

    /** Adds fd for the given events (POLLIN, POLLOUT); returns its slot. */
    public int add(int fd, short events) {
        if (count == capacity) {
            throw new IllegalStateException("poll set full");
        }
        long off = (long) count * POLLFD_SIZE;
        fds.set(ValueLayout.JAVA_INT, off, fd);
        fds.set(ValueLayout.JAVA_SHORT, off + 4, events);
        fds.set(ValueLayout.JAVA_SHORT, off + 6, (short) 0);
        return count++;
    }

    /** Waits (retrying EINTR) up to timeoutMillis (-1 forever); returns the number of ready fds. */
    public int await(int timeoutMillis) throws NativeCallException {
        while (true) {
            int rc = LibC.pollHot(fds, count, timeoutMillis);
            if (rc >= 0) {
                return rc;
            }
            if (-rc != Errno.EINTR) {
                throw new NativeCallException("poll", -rc);
            }
        }
    }

    public boolean ready(int slot) {
        return fds.get(ValueLayout.JAVA_SHORT, (long) slot * POLLFD_SIZE + 6) != 0;
    }

    public boolean hangup(int slot) {
        short r = fds.get(ValueLayout.JAVA_SHORT, (long) slot * POLLFD_SIZE + 6);
        return (r & (LibC.POLLHUP | LibC.POLLERR | LibC.POLLNVAL)) != 0 && (r & LibC.POLLIN) == 0;
    }
}

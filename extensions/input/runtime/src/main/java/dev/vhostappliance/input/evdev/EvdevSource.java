package dev.vhostappliance.input.evdev;

import dev.vhostappliance.input.InputIdentity;
import dev.vhostappliance.input.InputSource;
import dev.vhostappliance.input.VirtioInput;
import dev.vhostappliance.libc.Errno;
import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.NativeCallException;
import dev.vhostappliance.server.Poll;
import dev.vhostappliance.server.Wakeup;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.BitSet;
import org.jboss.logging.Logger;

/**
 * A Linux evdev device (/dev/input/eventN) as an input source: identity from its ioctls, events read
 * non-blocking on a thread of its own, exclusive grab unless told not to, status events (LEDs) written back.
 * When the device goes away (unplugged: ENODEV) the keys it held are released in the guest, the backend
 * keeps serving, and the device is reopened once it is back at the same path.
 */
public final class EvdevSource implements InputSource {
    private static final Logger LOG = Logger.getLogger(EvdevSource.class);
    private static final int BATCH = 64;
    private static final int REOPEN_MILLIS = 1000;
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final ValueLayout.OfInt S32 = ValueLayout.JAVA_INT_UNALIGNED;

    private final String path;
    private final boolean grab;
    private final InputIdentity identity;
    private final Wakeup stop;
    private final Object fdLock = new Object();
    private int fd; // -1 while unplugged
    private final BitSet keysDown = new BitSet();
    private final MemorySegment readBuf = Arena.ofAuto().allocate((long) EvdevIoctl.EVENT_BYTES * BATCH, 8);
    private final MemorySegment writeBuf = Arena.ofAuto().allocate(EvdevIoctl.EVENT_BYTES, 8);
    private Thread thread;

    /** Opens and (unless grab is false) grabs the device; fails with one sentence. */
    public EvdevSource(String path, boolean grab) throws NativeCallException {
        this.path = path;
        this.grab = grab;
        this.fd = open(path, grab);
        try {
            int f = fd;
            this.identity = EvdevIdentityReader.read((request, arg) -> LibC.rawIoctl(f, request, arg), path);
            this.stop = new Wakeup();
        } catch (RuntimeException | NativeCallException e) {
            LibC.close(fd);
            throw e;
        }
    }

    private static int open(String path, boolean grab) throws NativeCallException {
        int flags = LibC.O_NONBLOCK | LibC.O_CLOEXEC;
        int f;
        try {
            f = LibC.open(path, LibC.O_RDWR | flags, 0); // read-write so the guest's LEDs reach the device
        } catch (NativeCallException e) {
            if (e.errno() != Errno.EACCES && e.errno() != Errno.EPERM) {
                throw e;
            }
            f = LibC.open(path, LibC.O_RDONLY | flags, 0);
        }
        if (grab) {
            int rc = LibC.rawIoctl(f, EvdevIoctl.eviocgrab(), 1);
            if (rc < 0) {
                LibC.close(f);
                throw new NativeCallException("EVIOCGRAB " + path + (-rc == Errno.EBUSY
                        ? " (another program holds it; --no-grab shares it)" : " (not an evdev device?)"), -rc);
            }
        }
        return f;
    }

    @Override
    public InputIdentity identity() {
        return identity;
    }

    @Override
    public void start(EventSink sink) {
        thread = Thread.ofPlatform().name("evdev").daemon(true).start(() -> run(sink));
    }

    private void run(EventSink sink) {
        Poll poll = new Poll(2);
        MemorySegment scratch = Arena.ofAuto().allocate(8, 8);
        try {
            while (!stop.isSignalled()) {
                int f;
                synchronized (fdLock) {
                    f = fd;
                }
                poll.clear();
                int stopSlot = poll.add(stop.fd());
                int devSlot = f >= 0 ? poll.add(f) : -1;
                poll.await(f >= 0 ? -1 : REOPEN_MILLIS);
                if (stop.isSignalled()) {
                    return;
                }
                if (poll.ready(stopSlot)) {
                    stop.drain(scratch);
                }
                if (f < 0) {
                    reopen();
                } else if (poll.ready(devSlot) && !drain(f, sink)) {
                    unplugged(f, sink);
                }
            }
        } catch (Throwable t) {
            LOG.errorf(t, "evdev %s: reader failed", path);
        }
    }

    /** Reads what is there; false when the device is gone. */
    private boolean drain(int f, EventSink sink) {
        while (true) {
            long n = LibC.rawRead(f, readBuf, readBuf.byteSize());
            if (n == -Errno.EAGAIN) {
                return true;
            }
            if (n == -Errno.EINTR) {
                continue;
            }
            if (n <= 0) {
                if (n < 0 && -n != Errno.ENODEV) {
                    LOG.warnf("evdev %s: read failed: %s", path, Errno.describe((int) -n));
                }
                return false;
            }
            for (long off = 0; off + EvdevIoctl.EVENT_BYTES <= n; off += EvdevIoctl.EVENT_BYTES) {
                int type = readBuf.get(U16, off + 16) & 0xffff;
                int code = readBuf.get(U16, off + 18) & 0xffff;
                int value = readBuf.get(S32, off + 20);
                if (type == VirtioInput.EV_KEY) {
                    keysDown.set(code, value != 0);
                }
                sink.event(type, code, value);
            }
        }
    }

    private void unplugged(int f, EventSink sink) {
        LOG.warnf("evdev %s disappeared; still serving the frontend, reopening when it is back", path);
        synchronized (fdLock) {
            LibC.close(f);
            fd = -1;
        }
        if (!keysDown.isEmpty()) {
            // Keys held when the device went away would stay pressed in the guest.
            for (int k = keysDown.nextSetBit(0); k >= 0; k = keysDown.nextSetBit(k + 1)) {
                sink.event(VirtioInput.EV_KEY, k, 0);
            }
            sink.event(VirtioInput.EV_SYN, VirtioInput.SYN_REPORT, 0);
            keysDown.clear();
        }
    }

    private void reopen() {
        try {
            int f = open(path, grab);
            InputIdentity now = EvdevIdentityReader.read((request, arg) -> LibC.rawIoctl(f, request, arg), path);
            if (!now.name().equals(identity.name())) {
                LOG.warnf("evdev %s is back as \"%s\" (was \"%s\"); the guest keeps the first device's capabilities",
                        path, now.name(), identity.name());
            } else {
                LOG.infof("evdev %s is back", path);
            }
            synchronized (fdLock) {
                fd = f;
            }
        } catch (NativeCallException | RuntimeException e) {
            LOG.debugf("evdev %s not back yet: %s", path, e.getMessage());
        }
    }

    /** Written as a struct input_event with a zero timestamp (the kernel stamps it). */
    @Override
    public void statusEvent(int type, int code, int value) {
        synchronized (fdLock) {
            if (fd < 0) {
                return;
            }
            writeBuf.fill((byte) 0);
            writeBuf.set(U16, 16, (short) type);
            writeBuf.set(U16, 18, (short) code);
            writeBuf.set(S32, 20, value);
            long n = LibC.rawWrite(fd, writeBuf, EvdevIoctl.EVENT_BYTES);
            if (n < 0) {
                LOG.debugf("evdev %s: status event not written: %s", path, Errno.describe((int) -n));
            }
        }
    }

    @Override
    public void close() {
        stop.signal();
        if (thread != null) {
            try {
                thread.join(1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        synchronized (fdLock) {
            LibC.close(fd);
            fd = -1;
        }
        stop.close();
    }
}

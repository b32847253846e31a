package dev.vhostappliance.gpu;

import dev.vhostappliance.libc.Errno;
import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.NativeCallException;
import dev.vhostappliance.server.Poll;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.jboss.logging.Logger;

/**
 * The vhost-user-gpu protocol (docs/interop/vhost-user-gpu.rst) on the socket the frontend hands over with
 * VHOST_USER_GPU_SET_SOCKET: the backend asks for the display configuration and EDID, and sends scanout,
 * update and cursor messages. Header and payload are in the machine's byte order. Only messages of the base
 * protocol are sent, plus GET_EDID once the frontend has agreed to the EDID protocol feature: an older QEMU
 * hangs on messages it does not know.
 * <p>
 * Every wait is bounded ({@link #TIMEOUT_MILLIS}): the frontend serves this socket from its main loop, which
 * may itself be waiting for us on the vhost-user socket. A frontend that does not answer in time costs the
 * guest one display update or an error response, never a hung queue.
 */
final class VhostUserGpuChannel implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(VhostUserGpuChannel.class);
    static final int GET_PROTOCOL_FEATURES = 1;
    static final int SET_PROTOCOL_FEATURES = 2;
    static final int GET_DISPLAY_INFO = 3;
    static final int CURSOR_POS = 4;
    static final int CURSOR_POS_HIDE = 5;
    static final int CURSOR_UPDATE = 6;
    static final int SCANOUT = 7;
    static final int UPDATE = 8;
    static final int GET_EDID = 11;
    static final int FLAG_REPLY = 0x4;
    static final long PROTOCOL_F_EDID = 1L << 0;
    static final int HEADER_BYTES = 12;
    static final int TIMEOUT_MILLIS = Integer.getInteger("vhost.gpu-reply-timeout-ms", 3000);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED;
    private static final int MAX_REPLY = VirtioGpu.EDID_RESP_BYTES;

    private final int fd;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment header = arena.allocate(HEADER_BYTES, 8);
    private final MemorySegment reply = arena.allocate(MAX_REPLY, 8);
    private final MemorySegment small = arena.allocate(8, 8); // payload of SET_PROTOCOL_FEATURES, GET_EDID
    private final Poll poll = new Poll(1);
    private boolean negotiated;
    private long protocolFeatures;
    private boolean dead;

    /** Takes ownership of fd. */
    VhostUserGpuChannel(int fd) throws NativeCallException {
        this.fd = fd;
        LibC.fcntl(fd, LibC.F_SETFL, LibC.fcntl(fd, LibC.F_GETFL, 0) | LibC.O_NONBLOCK);
    }

    boolean alive() {
        return !dead;
    }

    /** GET/SET_PROTOCOL_FEATURES, once, before the first message that depends on them. */
    private void negotiate() {
        if (negotiated || dead) {
            return;
        }
        negotiated = true;
        if (request(GET_PROTOCOL_FEATURES, null, 0) != 8) {
            return;
        }
        long offered = reply.get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
        protocolFeatures = offered & PROTOCOL_F_EDID;
        small.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, protocolFeatures);
        send(SET_PROTOCOL_FEATURES, small, 8);
    }

    boolean edidNegotiated() {
        negotiate();
        return (protocolFeatures & PROTOCOL_F_EDID) != 0;
    }

    /** The frontend's display configuration (virtio_gpu_resp_display_info) into dst, or false. */
    boolean displayInfo(MemorySegment dst) {
        negotiate();
        if (request(GET_DISPLAY_INFO, null, 0) != VirtioGpu.DISPLAY_INFO_BYTES) {
            return false;
        }
        MemorySegment.copy(reply, 0, dst, 0, VirtioGpu.DISPLAY_INFO_BYTES);
        return true;
    }

    /** The frontend's EDID for scanout (virtio_gpu_resp_edid) into dst, or false (also without the feature). */
    boolean edid(int scanout, MemorySegment dst) {
        if (!edidNegotiated()) {
            return false;
        }
        small.set(U32, 0, scanout);
        if (request(GET_EDID, small, 4) != VirtioGpu.EDID_RESP_BYTES) {
            return false;
        }
        MemorySegment.copy(reply, 0, dst, 0, VirtioGpu.EDID_RESP_BYTES);
        return true;
    }

    /** Sends a message without reply; false if the frontend is gone or did not take it in time. */
    boolean send(int request, MemorySegment payload, long size) {
        if (dead) {
            return false;
        }
        header.set(U32, 0, request);
        header.set(U32, 4, 0);
        header.set(U32, 8, (int) size);
        long deadline = System.nanoTime() + TIMEOUT_MILLIS * 1_000_000L;
        return writeFully(header, HEADER_BYTES, deadline) && (size == 0 || writeFully(payload, size, deadline));
    }

    /** Sends a request and reads its reply into {@link #reply}; returns the reply's payload size or -1. */
    private int request(int request, MemorySegment payload, long size) {
        if (!send(request, payload, size)) {
            return -1;
        }
        long deadline = System.nanoTime() + TIMEOUT_MILLIS * 1_000_000L;
        if (!readFully(header, HEADER_BYTES, deadline)) {
            return -1;
        }
        int type = header.get(U32, 0);
        int flags = header.get(U32, 4);
        int n = header.get(U32, 8);
        if (type != request || (flags & FLAG_REPLY) == 0 || n < 0 || n > MAX_REPLY) {
            LOG.warnf("vhost-user-gpu: unexpected reply (request %d, flags 0x%x, size %d) to request %d; dropping the display",
                    type, flags, n, request);
            dead = true;
            return -1;
        }
        return readFully(reply, n, deadline) ? n : -1;
    }

    private boolean writeFully(MemorySegment src, long n, long deadline) {
        long done = 0;
        while (done < n) {
            long rc = LibC.rawWrite(fd, src.asSlice(done), n - done);
            if (rc > 0) {
                done += rc;
            } else if (rc == -Errno.EAGAIN || rc == -Errno.EINTR) {
                if (!await(LibC.POLLOUT, deadline)) {
                    return false;
                }
            } else {
                gone(rc);
                return false;
            }
        }
        return true;
    }

    private boolean readFully(MemorySegment dst, long n, long deadline) {
        long done = 0;
        while (done < n) {
            long rc = LibC.rawRead(fd, dst.asSlice(done), n - done);
            if (rc > 0) {
                done += rc;
            } else if (rc == -Errno.EAGAIN || rc == -Errno.EINTR) {
                if (!await(LibC.POLLIN, deadline)) {
                    return false;
                }
            } else {
                gone(rc);
                return false;
            }
        }
        return true;
    }

    /** Waits for the socket until deadline. A timeout mid-message leaves the stream unusable: the channel is dropped. */
    private boolean await(short events, long deadline) {
        long left = (deadline - System.nanoTime()) / 1_000_000L;
        try {
            if (left > 0) {
                poll.clear();
                poll.add(fd, events);
                if (poll.await((int) Math.min(left, Integer.MAX_VALUE)) > 0) {
                    return true;
                }
            }
        } catch (NativeCallException e) {
            LOG.debugf("vhost-user-gpu poll: %s", e.getMessage());
        }
        LOG.warnf("vhost-user-gpu: the frontend did not answer within %d ms; dropping the display channel until the next one",
                TIMEOUT_MILLIS);
        dead = true;
        return false;
    }

    private void gone(long rc) {
        if (!dead) {
            LOG.infof("vhost-user-gpu: display channel closed (%s)", rc == 0 ? "end of file" : Errno.describe((int) -rc));
        }
        dead = true;
    }

    @Override
    public void close() {
        dead = true;
        LibC.close(fd);
        arena.close();
    }
}

package dev.vhostappliance.protocol;

import static dev.vhostappliance.protocol.ProtocolFeature.bit;

import dev.vhostappliance.device.VirtioDevice;
import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.NativeCallException;
import dev.vhostappliance.memory.GuestMemory;
import dev.vhostappliance.memory.InvalidMemoryException;
import dev.vhostappliance.memory.MemoryRegionSpec;
import dev.vhostappliance.server.Poll;
import dev.vhostappliance.server.Wakeup;
import dev.vhostappliance.virtqueue.InflightRegion;
import dev.vhostappliance.virtqueue.SplitVirtqueue;
import dev.vhostappliance.virtqueue.VirtioRing;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import org.jboss.logging.Logger;

/**
 * The backend side of the vhost-user protocol (vhost-user.rst) for one device: one {@link Session} per
 * connected frontend, a handler per message type, every payload size and fd count validated. A request
 * that cannot be honoured gets an error reply where the frontend waits for one (a zero-length payload for
 * GET-type messages, a non-zero u64 for REPLY_ACK), is logged, and the connection goes on. Only a broken
 * stream (a lying size field beyond what can be drained, EOF inside a message) drops the connection.
 */
public final class VhostUserBackend {
    private static final Logger LOG = Logger.getLogger(VhostUserBackend.class);

    /** Protocol features this core implements for every device. CONFIG is added for devices that ask. */
    static final long CORE_PROTOCOL_FEATURES = bit(ProtocolFeature.MQ) | bit(ProtocolFeature.REPLY_ACK)
            | bit(ProtocolFeature.SLAVE_REQ) | bit(ProtocolFeature.CONFIGURE_MEM_SLOTS)
            | bit(ProtocolFeature.INFLIGHT_SHMFD) | bit(ProtocolFeature.RESET_DEVICE) | bit(ProtocolFeature.STATUS)
            | bit(ProtocolFeature.LOG_SHMFD);
    /** Largest device config space a message carries (VHOST_USER_MAX_CONFIG_SIZE). */
    static final int MAX_CONFIG_SIZE = 256;
    static final long VRING_NOFD = 0x100;
    static final long VRING_INDEX_MASK = 0xff;

    /**
     * Transport features a frontend may ack without the backend offering them: QEMU 10 passes
     * VIRTIO_F_RING_RESET (40) through to vhost-user-gpu, whose feature filter does not list it. Accepted and
     * dropped; per-queue reset is not used by the devices' Linux drivers.
     */
    static final long TOLERATED_FEATURES = 1L << 40;

    private final VirtioDevice device;
    private final long offeredFeatures;
    private final long offeredProtocolFeatures;

    public VhostUserBackend(VirtioDevice device) {
        this.device = device;
        // VHOST_F_LOG_ALL: dirty logging (live migration) is the core's, for every device
        this.offeredFeatures = device.features() | bit(ProtocolFeature.F_PROTOCOL_FEATURES) | bit(ProtocolFeature.F_LOG_ALL);
        this.offeredProtocolFeatures = CORE_PROTOCOL_FEATURES | (device.protocolFeatures() & bit(ProtocolFeature.CONFIG));
        device.setQueueWaker(this::wakeQueue);
    }

    /** The connection being served, for {@link #wakeQueue} on device threads. */
    private volatile Session current;

    /** Counters of the running queues of the connected frontend (empty without one). */
    public java.util.List<dev.vhostappliance.virtqueue.QueueStats> queueStats() {
        Session s = current;
        java.util.List<dev.vhostappliance.virtqueue.QueueStats> out = new java.util.ArrayList<>();
        if (s != null) {
            for (Vring v : s.vrings) {
                QueueWorker w = v.worker;
                if (w != null) {
                    out.add(w.queue().stats());
                }
            }
        }
        return out;
    }

    /** {@link dev.vhostappliance.device.QueueWaker}: pokes the queue's worker if the queue is running. */
    private void wakeQueue(int queueIndex) {
        Session s = current;
        if (s != null && queueIndex >= 0 && queueIndex < s.vrings.length) {
            QueueWorker w = s.vrings[queueIndex].worker;
            if (w != null) {
                w.poke();
            }
        }
    }

    public long offeredFeatures() {
        return offeredFeatures;
    }

    public long offeredProtocolFeatures() {
        return offeredProtocolFeatures;
    }

    /** Serves one frontend on fd until it disconnects or stop is signalled; releases everything after. */
    public void serve(int fd, Wakeup stop) throws Exception {
        try (Session session = new Session(fd)) {
            current = session;
            session.run(stop);
        } finally {
            current = null;
        }
    }

    /** The state of one connection. Runs on the protocol thread only. */
    final class Session implements AutoCloseable {
        private final MessageChannel channel;
        private final Vring[] vrings;
        private long ackedFeatures;
        private long ackedProtocolFeatures;
        private GuestMemory memory = GuestMemory.empty();
        private InflightFile inflight;
        private FrontendRequestChannel frontendChannel;
        private int status;

        Session(int fd) {
            this.channel = new MessageChannel(fd);
            this.vrings = new Vring[device.numQueues()];
            for (int i = 0; i < vrings.length; i++) {
                vrings[i] = new Vring(i);
            }
        }

        void run(Wakeup stop) throws NativeCallException, ProtocolException {
            Poll poll = new Poll(2);
            while (!stop.isSignalled()) {
                poll.clear();
                int conn = poll.add(channel.fd());
                poll.add(stop.fd());
                poll.await(-1);
                if (stop.isSignalled()) {
                    return;
                }
                if (!poll.ready(conn)) {
                    continue;
                }
                try {
                    if (!channel.receive()) {
                        LOG.debug("frontend disconnected");
                        return;
                    }
                } catch (OversizedMessageException e) {
                    Message m = channel.message();
                    LOG.warnf("%s: %s", VhostUserRequest.name(m.request()), e.getMessage());
                    m.closeFds();
                    acknowledge(m, false);
                    continue;
                }
                dispatch(channel.message());
            }
        }

        private boolean protocolFeature(int feature) {
            return (ackedProtocolFeatures & bit(feature)) != 0;
        }

        // ------------------------------------------------------------ dispatch and replies

        private void dispatch(Message m) throws NativeCallException {
            int request = m.request();
            Outcome outcome;
            try {
                if (m.fdsTruncated) {
                    outcome = Outcome.fail("more than " + Message.MAX_FDS + " file descriptors");
                } else if ((m.flags() & 0x3) != Message.VERSION) {
                    outcome = Outcome.fail("unsupported protocol version " + (m.flags() & 0x3));
                } else {
                    outcome = handle(m);
                }
            } catch (NativeCallException e) {
                outcome = Outcome.fail(e.getMessage());
            } catch (RuntimeException e) {
                LOG.errorf(e, "%s failed", VhostUserRequest.name(request));
                outcome = Outcome.fail(e.toString());
            } finally {
                m.closeFds();
            }
            if (outcome.error != null) {
                LOG.warnf("%s refused: %s", VhostUserRequest.name(request), outcome.error);
            }
            if (outcome != Outcome.REPLIED) {
                acknowledge(m, outcome.error == null);
            }
        }

        /**
         * The reply a handler did not send itself: for a GET-type request (which only gets here when it
         * failed) a zero-length payload, so the frontend never hangs; otherwise the REPLY_ACK u64 if asked.
         */
        private void acknowledge(Message m, boolean ok) throws NativeCallException {
            if (expectsReply(m.request())) {
                m.beginReply(0);
                channel.send();
            } else if (m.needsReply() && protocolFeature(ProtocolFeature.REPLY_ACK)) {
                m.beginReply(8);
                m.putU64(0, ok ? 0 : 1);
                channel.send();
            }
        }

        private boolean expectsReply(int request) {
            return switch (request) {
                case VhostUserRequest.GET_FEATURES, VhostUserRequest.GET_PROTOCOL_FEATURES,
                        VhostUserRequest.GET_VRING_BASE, VhostUserRequest.GET_QUEUE_NUM, VhostUserRequest.GET_CONFIG,
                        VhostUserRequest.GET_INFLIGHT_FD, VhostUserRequest.GET_MAX_MEM_SLOTS,
                        VhostUserRequest.GET_STATUS -> true;
                default -> false;
            };
        }

        private Outcome replyU64(Message m, long value) throws NativeCallException {
            m.beginReply(8);
            m.putU64(0, value);
            channel.send();
            return Outcome.REPLIED;
        }

        private Outcome handle(Message m) throws NativeCallException {
            return switch (m.request()) {
                case VhostUserRequest.GET_FEATURES -> getFeatures(m);
                case VhostUserRequest.SET_FEATURES -> setFeatures(m);
                case VhostUserRequest.GET_PROTOCOL_FEATURES -> getProtocolFeatures(m);
                case VhostUserRequest.SET_PROTOCOL_FEATURES -> setProtocolFeatures(m);
                case VhostUserRequest.SET_OWNER -> expect(m, 0, 0) ? Outcome.OK : Outcome.badSize(m);
                case VhostUserRequest.RESET_OWNER, VhostUserRequest.RESET_DEVICE -> resetDevice(m);
                case VhostUserRequest.SET_MEM_TABLE -> setMemTable(m);
                case VhostUserRequest.SET_LOG_BASE -> setLogBase(m);
                case VhostUserRequest.SET_LOG_FD -> setLogFd(m);
                case VhostUserRequest.SET_VRING_NUM -> setVringNum(m);
                case VhostUserRequest.SET_VRING_ADDR -> setVringAddr(m);
                case VhostUserRequest.SET_VRING_BASE -> setVringBase(m);
                case VhostUserRequest.GET_VRING_BASE -> getVringBase(m);
                case VhostUserRequest.SET_VRING_KICK, VhostUserRequest.SET_VRING_CALL, VhostUserRequest.SET_VRING_ERR ->
                        setVringFd(m);
                case VhostUserRequest.GET_QUEUE_NUM -> expect(m, 0, 0) ? replyU64(m, vrings.length) : Outcome.badSize(m);
                case VhostUserRequest.SET_VRING_ENABLE -> setVringEnable(m);
                case VhostUserRequest.SET_SLAVE_REQ_FD -> setFrontendRequestFd(m);
                case VhostUserRequest.GET_CONFIG -> getConfig(m);
                case VhostUserRequest.SET_CONFIG -> setConfig(m);
                case VhostUserRequest.GET_INFLIGHT_FD -> getInflightFd(m);
                case VhostUserRequest.SET_INFLIGHT_FD -> setInflightFd(m);
                case VhostUserRequest.GPU_SET_SOCKET -> gpuSetSocket(m);
                case VhostUserRequest.GET_MAX_MEM_SLOTS ->
                        expect(m, 0, 0) ? replyU64(m, GuestMemory.MAX_REGIONS) : Outcome.badSize(m);
                case VhostUserRequest.ADD_MEM_REG -> addMemReg(m);
                case VhostUserRequest.REM_MEM_REG -> remMemReg(m);
                case VhostUserRequest.SET_STATUS -> setStatus(m);
                case VhostUserRequest.GET_STATUS -> expect(m, 0, 0) ? replyU64(m, status) : Outcome.badSize(m);
                default -> Outcome.fail("unknown or unsupported request");
            };
        }

        private boolean expect(Message m, int size, int fds) {
            return m.size() == size && m.fdCount() == fds;
        }

        // ------------------------------------------------------------ features

        private Outcome getFeatures(Message m) throws NativeCallException {
            return expect(m, 0, 0) ? replyU64(m, offeredFeatures) : Outcome.badSize(m);
        }

        private Outcome setFeatures(Message m) {
            if (!expect(m, 8, 0)) {
                return Outcome.badSize(m);
            }
            long features = m.u64(0);
            long unoffered = features & ~offeredFeatures & ~TOLERATED_FEATURES;
            if (unoffered != 0) {
                return Outcome.fail(String.format("features 0x%x were not offered", unoffered));
            }
            features &= offeredFeatures;
            boolean logChange = ((ackedFeatures ^ features) & bit(ProtocolFeature.F_LOG_ALL)) != 0;
            ackedFeatures = features;
            if (logChange) {
                applyDirtyLogging();
            }
            device.featuresAcked(features & ~bit(ProtocolFeature.F_PROTOCOL_FEATURES));
            return Outcome.OK;
        }

        private Outcome getProtocolFeatures(Message m) throws NativeCallException {
            return expect(m, 0, 0) ? replyU64(m, offeredProtocolFeatures) : Outcome.badSize(m);
        }

        private Outcome setProtocolFeatures(Message m) {
            if (!expect(m, 8, 0)) {
                return Outcome.badSize(m);
            }
            long features = m.u64(0);
            if ((features & ~offeredProtocolFeatures) != 0) {
                return Outcome.fail(String.format("protocol features 0x%x were not offered",
                        features & ~offeredProtocolFeatures));
            }
            ackedProtocolFeatures = features;
            return Outcome.OK;
        }

        private boolean featureAcked(int feature) {
            return (ackedFeatures & (1L << feature)) != 0;
        }

        // ------------------------------------------------------------ memory

        private MemoryRegionSpec region(Message m, long offset) {
            return new MemoryRegionSpec(m.u64(offset), m.u64(offset + 8), m.u64(offset + 16), m.u64(offset + 24));
        }

        private Outcome setMemTable(Message m) throws NativeCallException {
            if (m.size() < 8) {
                return Outcome.badSize(m);
            }
            int n = m.u32(0);
            if (n < 1 || n > Message.MAX_FDS) {
                return Outcome.fail("memory table with " + Integer.toUnsignedString(n) + " regions");
            }
            if (m.size() != 8 + 32 * n || m.fdCount() != n) {
                return Outcome.fail("memory table of " + n + " regions with payload " + m.size() + " and "
                        + m.fdCount() + " fds");
            }
            GuestMemory next = GuestMemory.empty();
            try {
                for (int i = 0; i < n; i++) {
                    MemoryRegionSpec spec = region(m, 8 + 32L * i);
                    checkFdCovers(m.fd(i), spec);
                    GuestMemory partial = next;
                    next = next.withRegion(spec, m.fd(i));
                    partial.close(); // the intermediate table: its mappings live on in next
                }
            } catch (InvalidMemoryException | NativeCallException e) {
                next.close();
                return Outcome.fail(e.getMessage());
            }
            GuestMemory old = memory;
            swapMemory(next);
            old.close();
            return Outcome.OK;
        }

        /** A region past the end of its file would fault (SIGBUS) on access: refuse it up front. */
        private void checkFdCovers(int fd, MemoryRegionSpec spec) throws InvalidMemoryException {
            String why = spec.validate();
            if (why != null) {
                throw new InvalidMemoryException(why);
            }
            long fileSize;
            try {
                fileSize = LibC.size(fd);
            } catch (NativeCallException e) {
                throw new InvalidMemoryException("memory fd cannot be sized: " + e.getMessage());
            }
            if (Long.compareUnsigned(spec.mmapOffset() + spec.size(), fileSize) > 0) {
                throw new InvalidMemoryException(String.format(
                        "region needs %d bytes at offset %d but its fd holds %d", spec.size(), spec.mmapOffset(), fileSize));
            }
        }

        private Outcome addMemReg(Message m) throws NativeCallException {
            if (!expect(m, 40, 1)) {
                return Outcome.badSize(m);
            }
            MemoryRegionSpec spec = region(m, 8);
            try {
                checkFdCovers(m.fd(0), spec);
                GuestMemory old = memory;
                swapMemory(memory.withRegion(spec, m.fd(0)));
                old.close();
            } catch (InvalidMemoryException e) {
                return Outcome.fail(e.getMessage());
            }
            return Outcome.OK;
        }

        private Outcome remMemReg(Message m) {
            // QEMU 7.2 sends the region's fd along; newer ones do not. Either is fine (it is closed).
            if (m.size() != 40 || m.fdCount() > 1) {
                return Outcome.badSize(m);
            }
            GuestMemory next = memory.withoutRegion(region(m, 8));
            if (next == null) {
                return Outcome.fail("no such memory region");
            }
            GuestMemory old = memory;
            swapMemory(next);
            old.close(); // unmapped once no request still in flight uses the removed region
            return Outcome.OK;
        }

        /**
         * Installs a new memory table while rings may be running (normal: QEMU sends one whenever guest
         * memory changes): pause the workers, re-translate every ring, resume. No request is lost: a paused
         * worker only stops between requests and looks at its queue again when resumed.
         */
        private void swapMemory(GuestMemory next) {
            List<Vring> paused = new ArrayList<>();
            for (Vring v : vrings) {
                if (v.started()) {
                    v.worker.pause();
                    paused.add(v);
                }
            }
            try {
                memory = next;
                for (Vring v : vrings) {
                    if (!v.addrSet) {
                        continue;
                    }
                    String error = translate(v);
                    if (v.started()) {
                        if (error != null) {
                            v.worker.queue().markBroken("ring no longer in guest memory: " + error);
                        } else {
                            v.worker.queue().remap(memory, v.desc, v.avail, v.used);
                        }
                    }
                }
            } finally {
                for (Vring v : paused) {
                    v.worker.resume();
                }
            }
        }

        /** Translates the ring addresses of v into the current memory; null if fine, else why not. */
        private String translate(Vring v) {
            MemorySegment d = memory.sliceUser(v.descUser, VirtioRing.descTableBytes(v.num));
            MemorySegment a = memory.sliceUser(v.availUser, VirtioRing.availBytes(v.num));
            MemorySegment u = memory.sliceUser(v.usedUser, VirtioRing.usedBytes(v.num));
            if (d == null || a == null || u == null) {
                v.desc = v.avail = v.used = null;
                return String.format("ring %d addresses desc 0x%x avail 0x%x used 0x%x not within one memory region",
                        v.index, v.descUser, v.availUser, v.usedUser);
            }
            v.desc = d;
            v.avail = a;
            v.used = u;
            return null;
        }

        // ------------------------------------------------------------ vrings

        private Vring vring(Message m) {
            long index = Integer.toUnsignedLong(m.u32(0));
            return index < vrings.length ? vrings[(int) index] : null;
        }

        private Outcome noSuchVring(long index) {
            return Outcome.fail("vring index " + index + " >= " + vrings.length);
        }

        private Outcome setVringNum(Message m) {
            if (!expect(m, 8, 0)) {
                return Outcome.badSize(m);
            }
            Vring v = vring(m);
            if (v == null) {
                return noSuchVring(Integer.toUnsignedLong(m.u32(0)));
            }
            int num = m.u32(4);
            int max = Math.min(VirtioRing.MAX_QUEUE_SIZE, device.maxQueueSize());
            if (num < 1 || num > max || Integer.bitCount(num) != 1) {
                return Outcome.fail("queue size " + Integer.toUnsignedString(num) + " is not a power of two in 1.." + max);
            }
            if (v.started()) {
                return Outcome.fail("vring " + v.index + " is running");
            }
            v.num = num;
            if (v.addrSet && translate(v) != null) {
                v.addrSet = false;
            }
            return Outcome.OK;
        }

        // ------------------------------------------------------------ dirty logging (live migration)

        private dev.vhostappliance.virtqueue.DirtyLog dirtyLog;

        /** SET_LOG_BASE (LOG_SHMFD): {u64 size, u64 offset} and the log's fd; answered with u64 0 once mapped. */
        private Outcome setLogBase(Message m) throws NativeCallException {
            if (m.size() != 16 || m.fdCount() != 1) {
                return Outcome.badSize(m);
            }
            int fd = m.takeFd(0);
            dev.vhostappliance.virtqueue.DirtyLog log;
            try {
                log = dev.vhostappliance.virtqueue.DirtyLog.map(fd, m.u64(0), m.u64(8));
            } catch (NativeCallException | IllegalArgumentException e) {
                return Outcome.fail("cannot map the dirty log: " + e.getMessage());
            } finally {
                LibC.close(fd);
            }
            dev.vhostappliance.virtqueue.DirtyLog old = dirtyLog;
            dirtyLog = log;
            applyDirtyLogging();
            if (old != null) {
                old.close();
            }
            return replyU64(m, 0);
        }

        /** SET_LOG_FD: an eventfd to tell the frontend the log changed; optional, QEMU does not need it. */
        private Outcome setLogFd(Message m) {
            if (m.size() != 0 && m.size() != 8 || m.fdCount() != 1) {
                return Outcome.badSize(m);
            }
            LibC.close(m.takeFd(0));
            return Outcome.OK;
        }

        private boolean loggingOn;

        /** Logging is on when VHOST_F_LOG_ALL is acked and a log is mapped: tells every running queue (paused). */
        private void applyDirtyLogging() {
            boolean on = loggingLog() != null;
            if (on != loggingOn) {
                loggingOn = on;
                LOG.infof("dirty page logging %s (live migration)", on ? "on" : "off");
            }
            for (Vring v : vrings) {
                if (v.started()) {
                    v.worker.pause();
                    try {
                        v.worker.queue().setDirtyLogging(loggingLog(), v.usedLogAddress);
                    } finally {
                        v.worker.resume();
                    }
                }
            }
        }

        private dev.vhostappliance.virtqueue.DirtyLog loggingLog() {
            return (ackedFeatures & bit(ProtocolFeature.F_LOG_ALL)) != 0 ? dirtyLog : null;
        }

        private Outcome setVringAddr(Message m) {
            if (!expect(m, 40, 0)) {
                return Outcome.badSize(m);
            }
            Vring v = vring(m);
            if (v == null) {
                return noSuchVring(Integer.toUnsignedLong(m.u32(0)));
            }
            if (v.num == 0) {
                return Outcome.fail("vring " + v.index + " addresses before its size");
            }
            long desc = m.u64(8);
            long used = m.u64(16);
            long avail = m.u64(24);
            if ((desc & 15) != 0 || (avail & 1) != 0 || (used & 3) != 0) {
                return Outcome.fail(String.format("misaligned ring: desc 0x%x avail 0x%x used 0x%x", desc, avail, used));
            }
            boolean running = v.started();
            if (running) {
                v.worker.pause();
            }
            try {
                long[] previous = {v.descUser, v.availUser, v.usedUser};
                v.descUser = desc;
                v.availUser = avail;
                v.usedUser = used;
                String error = translate(v);
                if (error != null) {
                    v.descUser = previous[0];
                    v.availUser = previous[1];
                    v.usedUser = previous[2];
                    if (v.addrSet) {
                        translate(v);
                    }
                    return Outcome.fail(error);
                }
                v.addrSet = true;
                v.usedLogAddress = (m.u32(4) & 1) != 0 ? m.u64(32) : -1; // VHOST_VRING_F_LOG, log_guest_addr
                if (running) {
                    v.worker.queue().remap(memory, v.desc, v.avail, v.used);
                    v.worker.queue().setDirtyLogging(loggingLog(), v.usedLogAddress);
                }
            } finally {
                if (running) {
                    v.worker.resume();
                }
            }
            return running ? Outcome.OK : maybeStart(v);
        }

        private Outcome setVringBase(Message m) {
            if (!expect(m, 8, 0)) {
                return Outcome.badSize(m);
            }
            Vring v = vring(m);
            if (v == null) {
                return noSuchVring(Integer.toUnsignedLong(m.u32(0)));
            }
            if (v.started()) {
                return Outcome.fail("vring " + v.index + " is running");
            }
            v.base = m.u32(4) & 0xffff;
            return Outcome.OK;
        }

        private Outcome getVringBase(Message m) throws NativeCallException {
            if (!expect(m, 8, 0)) {
                return Outcome.badSize(m);
            }
            Vring v = vring(m);
            if (v == null) {
                return noSuchVring(Integer.toUnsignedLong(m.u32(0)));
            }
            stopRing(v, true);
            m.beginReply(8);
            m.putU32(0, v.index);
            m.putU32(4, v.base);
            channel.send();
            return Outcome.REPLIED;
        }

        /** Stops the ring's worker (if any), records where it stopped, and drops its kick and call fds. */
        private void stopRing(Vring v, boolean drain) {
            if (v.worker != null) {
                stopWorker(v, drain);
                device.queueStopped(v.index);
            }
            LibC.close(v.kickFd);
            LibC.close(v.callFd);
            v.kickFd = -1;
            v.callFd = -1;
            v.kickSet = false;
        }

        private Outcome setVringFd(Message m) throws NativeCallException {
            if (m.size() != 8) {
                return Outcome.badSize(m);
            }
            long value = m.u64(0);
            long index = value & VRING_INDEX_MASK;
            boolean nofd = (value & VRING_NOFD) != 0;
            if ((value & ~(VRING_INDEX_MASK | VRING_NOFD)) != 0) {
                return Outcome.fail(String.format("reserved bits set in 0x%x", value));
            }
            if (m.fdCount() != (nofd ? 0 : 1)) {
                return Outcome.fail((nofd ? "no fd expected" : "one fd expected") + ", got " + m.fdCount());
            }
            if (index >= vrings.length) {
                return noSuchVring(index);
            }
            Vring v = vrings[(int) index];
            int fd = nofd ? -1 : m.takeFd(0);
            if (fd >= 0) {
                // Our reads and writes on it must never block a worker (QEMU's eventfds are non-blocking anyway).
                LibC.fcntl(fd, LibC.F_SETFL, LibC.fcntl(fd, LibC.F_GETFL, 0) | LibC.O_NONBLOCK);
            }
            switch (m.request()) {
                case VhostUserRequest.SET_VRING_KICK -> {
                    if (v.started()) {
                        stopWorker(v, true);
                    }
                    LibC.close(v.kickFd);
                    v.kickFd = fd;
                    v.kickSet = true;
                    return maybeStart(v);
                }
                case VhostUserRequest.SET_VRING_CALL -> {
                    int old = v.callFd;
                    v.callFd = fd;
                    if (v.started()) {
                        v.worker.pause();
                        v.worker.queue().setCallFd(fd);
                        v.worker.resume();
                    }
                    LibC.close(old);
                    return Outcome.OK;
                }
                default -> {
                    int old = v.errFd;
                    v.errFd = fd;
                    if (v.started()) {
                        v.worker.pause();
                        v.worker.queue().setErrFd(fd);
                        v.worker.resume();
                    }
                    LibC.close(old);
                    return Outcome.OK;
                }
            }
        }

        /** Stops the worker and records where the ring stopped; the ring's fds stay. */
        private void stopWorker(Vring v, boolean drain) {
            v.worker.stop(drain);
            v.base = v.worker.queue().lastAvailIndex();
            v.worker = null;
        }

        /** Starts the ring once it has a size, addresses, memory and a kick (the spec's "start on kick"). */
        private Outcome maybeStart(Vring v) {
            if (v.started() || !v.kickSet) {
                return Outcome.OK;
            }
            if (v.num == 0 || !v.addrSet || v.desc == null) {
                return Outcome.fail("vring " + v.index + " kicked before its size and addresses were set");
            }
            boolean enabled = (ackedFeatures & bit(ProtocolFeature.F_PROTOCOL_FEATURES)) == 0 || v.enabled;
            InflightRegion log = inflight != null ? inflight.region(v.index, v.num) : null;
            SplitVirtqueue q = new SplitVirtqueue(v.index, v.num, v.desc, v.avail, v.used, memory, v.base,
                    featureAcked(VirtioRing.F_RING_EVENT_IDX), featureAcked(VirtioRing.F_RING_INDIRECT_DESC),
                    featureAcked(VirtioRing.F_NOTIFY_ON_EMPTY), v.callFd, v.errFd, log);
            q.setDirtyLogging(loggingLog(), v.usedLogAddress);
            try {
                v.worker = new QueueWorker(device, v.index, q, v.kickFd, enabled);
            } catch (NativeCallException e) {
                return Outcome.fail("cannot start vring " + v.index + ": " + e.getMessage());
            }
            v.worker.start();
            return Outcome.OK;
        }

        private Outcome setVringEnable(Message m) {
            if (!expect(m, 8, 0)) {
                return Outcome.badSize(m);
            }
            Vring v = vring(m);
            if (v == null) {
                return noSuchVring(Integer.toUnsignedLong(m.u32(0)));
            }
            if ((ackedFeatures & bit(ProtocolFeature.F_PROTOCOL_FEATURES)) == 0) {
                return Outcome.fail("SET_VRING_ENABLE without VHOST_USER_F_PROTOCOL_FEATURES");
            }
            int on = m.u32(4);
            if (on != 0 && on != 1) {
                return Outcome.fail("enable value " + on);
            }
            v.enabled = on == 1;
            if (v.started()) {
                v.worker.setEnabled(v.enabled);
            }
            return Outcome.OK;
        }

        // ------------------------------------------------------------ config, channel, inflight, status

        private Outcome getConfig(Message m) throws NativeCallException {
            if (m.size() < 12 || m.fdCount() != 0) {
                return Outcome.badSize(m);
            }
            int offset = m.u32(0);
            int size = m.u32(4);
            if (size < 0 || size > MAX_CONFIG_SIZE || m.size() != 12 + size) {
                return Outcome.fail("config size " + Integer.toUnsignedString(size) + " in a payload of " + m.size());
            }
            if (!protocolFeature(ProtocolFeature.CONFIG)) {
                return Outcome.fail("VHOST_USER_PROTOCOL_F_CONFIG not negotiated");
            }
            byte[] data = offset < 0 ? null : device.readConfig(offset, size);
            if (data == null || data.length != size) {
                return Outcome.fail("config range " + Integer.toUnsignedString(offset) + "+" + size + " not readable");
            }
            m.beginReply(12 + size);
            MemorySegment.copy(data, 0, m.buffer, java.lang.foreign.ValueLayout.JAVA_BYTE, Message.HEADER_SIZE + 12, size);
            channel.send();
            return Outcome.REPLIED;
        }

        private Outcome setConfig(Message m) {
            if (m.size() < 12 || m.fdCount() != 0) {
                return Outcome.badSize(m);
            }
            int offset = m.u32(0);
            int size = m.u32(4);
            if (size < 0 || size > MAX_CONFIG_SIZE || m.size() != 12 + size) {
                return Outcome.fail("config size " + Integer.toUnsignedString(size) + " in a payload of " + m.size());
            }
            if (!protocolFeature(ProtocolFeature.CONFIG)) {
                return Outcome.fail("VHOST_USER_PROTOCOL_F_CONFIG not negotiated");
            }
            byte[] data = new byte[size];
            MemorySegment.copy(m.buffer, java.lang.foreign.ValueLayout.JAVA_BYTE, Message.HEADER_SIZE + 12, data, 0, size);
            if (offset < 0 || !device.writeConfig(offset, data)) {
                return Outcome.fail("config write at " + Integer.toUnsignedString(offset) + "+" + size + " refused");
            }
            return Outcome.OK;
        }

        private Outcome setFrontendRequestFd(Message m) {
            if (!expect(m, 0, 1)) {
                return Outcome.badSize(m);
            }
            if (!protocolFeature(ProtocolFeature.SLAVE_REQ)) {
                return Outcome.fail("VHOST_USER_PROTOCOL_F_SLAVE_REQ not negotiated");
            }
            if (frontendChannel != null) {
                device.setFrontendChannel(null);
                frontendChannel.close();
            }
            frontendChannel = new FrontendRequestChannel(m.takeFd(0), protocolFeature(ProtocolFeature.REPLY_ACK));
            device.setFrontendChannel(frontendChannel);
            return Outcome.OK;
        }

        /** VhostUserInflight: {u64 mmap_size; u64 mmap_offset; u16 num_queues; u16 queue_size} padded to 24. */
        private static final int INFLIGHT_PAYLOAD = 24;

        private Outcome getInflightFd(Message m) throws NativeCallException {
            if (!expect(m, INFLIGHT_PAYLOAD, 0)) {
                return Outcome.badSize(m);
            }
            int numQueues = m.u32(16) & 0xffff;
            int queueSize = (m.u32(16) >>> 16) & 0xffff;
            String why = checkInflightShape(numQueues, queueSize);
            if (why != null) {
                return Outcome.fail(why);
            }
            InflightFile created = InflightFile.create(numQueues, queueSize);
            replaceInflight(created);
            m.beginReply(INFLIGHT_PAYLOAD);
            m.putU64(0, created.size);
            m.putU64(8, 0);
            m.putU32(16, numQueues | (queueSize << 16));
            m.putU32(20, 0);
            channel.send(created.fd);
            return Outcome.REPLIED;
        }

        private Outcome setInflightFd(Message m) throws NativeCallException {
            if (!expect(m, INFLIGHT_PAYLOAD, 1)) {
                return Outcome.badSize(m);
            }
            long mmapSize = m.u64(0);
            long mmapOffset = m.u64(8);
            int numQueues = m.u32(16) & 0xffff;
            int queueSize = (m.u32(16) >>> 16) & 0xffff;
            String why = checkInflightShape(numQueues, queueSize);
            if (why != null) {
                return Outcome.fail(why);
            }
            if (mmapSize != InflightFile.bytesFor(numQueues, queueSize) || mmapOffset < 0
                    || mmapOffset > (1L << 40)) {
                return Outcome.fail("inflight buffer of " + mmapSize + " bytes at " + mmapOffset + " does not fit "
                        + numQueues + " queues of " + queueSize);
            }
            int fd = m.fd(0);
            if (Long.compareUnsigned(mmapOffset + mmapSize, LibC.size(fd)) > 0) {
                return Outcome.fail("inflight fd is smaller than offset + size");
            }
            replaceInflight(InflightFile.map(m.takeFd(0), numQueues, queueSize, mmapSize, mmapOffset));
            return Outcome.OK;
        }

        private String checkInflightShape(int numQueues, int queueSize) {
            if (numQueues < 1 || numQueues > vrings.length) {
                return "inflight for " + numQueues + " queues, device has " + vrings.length;
            }
            if (queueSize < 1 || queueSize > VirtioRing.MAX_QUEUE_SIZE || Integer.bitCount(queueSize) != 1) {
                return "inflight queue size " + queueSize;
            }
            return null;
        }

        private void replaceInflight(InflightFile next) {
            for (Vring v : vrings) {
                if (v.started()) {
                    // A running ring keeps logging into the old buffer until it restarts; only swap when stopped.
                    LOG.warnf("inflight buffer replaced while vring %d runs", v.index);
                }
            }
            if (inflight != null && noneStarted()) {
                inflight.close();
            }
            inflight = next;
        }

        private boolean noneStarted() {
            for (Vring v : vrings) {
                if (v.started()) {
                    return false;
                }
            }
            return true;
        }

        private Outcome gpuSetSocket(Message m) {
            if (!expect(m, 0, 1)) {
                return Outcome.badSize(m);
            }
            int fd = m.takeFd(0);
            if (!device.setGpuSocket(fd)) {
                LibC.close(fd);
                return Outcome.fail("this device has no use for a gpu socket");
            }
            return Outcome.OK;
        }

        private Outcome setStatus(Message m) {
            if (!expect(m, 8, 0)) {
                return Outcome.badSize(m);
            }
            long value = m.u64(0);
            if (value < 0 || value > 0xff) {
                return Outcome.fail("status " + value);
            }
            status = (int) value;
            if (status == 0) {
                resetRings();
            }
            return Outcome.OK;
        }

        private Outcome resetDevice(Message m) {
            if (!expect(m, 0, 0)) {
                return Outcome.badSize(m);
            }
            resetRings();
            return Outcome.OK;
        }

        /** RESET_OWNER / RESET_DEVICE / status 0: every ring stopped and forgotten, the device reset. */
        private void resetRings() {
            for (Vring v : vrings) {
                stopRing(v, true);
                v.closeFds();
                v.num = 0;
                v.addrSet = false;
                v.desc = v.avail = v.used = null;
                v.base = 0;
                v.enabled = false;
            }
            device.reset();
        }

        @Override
        public void close() {
            for (Vring v : vrings) {
                stopRing(v, false);
                v.closeFds();
            }
            device.setFrontendChannel(null);
            device.reset();
            if (frontendChannel != null) {
                frontendChannel.close();
            }
            if (inflight != null) {
                inflight.close();
            }
            if (dirtyLog != null) {
                dirtyLog.close();
            }
            memory.close();
            channel.close();
        }
    }

    /** What a handler did: nothing more to send (REPLIED), success, or failure with a reason. */
    record Outcome(String error) {
        static final Outcome OK = new Outcome(null);
        static final Outcome REPLIED = new Outcome(null);

        static Outcome fail(String why) {
            return new Outcome(why);
        }

        static Outcome badSize(Message m) {
            return fail("payload of " + m.size() + " bytes with " + m.fdCount() + " fds is not valid for this request");
        }
    }
}

package dev.vhostappliance.testing;

import dev.vhostappliance.device.VirtioDevice;
import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.UnixSockets;
import dev.vhostappliance.protocol.Message;
import dev.vhostappliance.protocol.MessageChannel;
import dev.vhostappliance.protocol.ProtocolFeature;
import dev.vhostappliance.protocol.VhostUserBackend;
import dev.vhostappliance.protocol.VhostUserRequest;
import dev.vhostappliance.server.Poll;
import dev.vhostappliance.server.Wakeup;
import java.util.function.Consumer;

/**
 * QEMU's role, in-process: connects to a backend over a socketpair, negotiates, shares {@link GuestRam},
 * sets up {@link DriverQueue}s and sends any message a test wants, well-formed or not. Every device's
 * tests use it (it is published in the core's test-jar).
 */
public final class TestFrontend implements AutoCloseable {
    public static final int REPLY_TIMEOUT_MILLIS = 5000;

    private final MessageChannel channel;
    private final int fd;
    private final Wakeup stop;
    private final Thread backendThread;
    private volatile Throwable backendFailure;
    public long protocolFeatures;
    public long features;

    private TestFrontend(int fd, Wakeup stop, Thread backendThread) {
        this.fd = fd;
        this.channel = new MessageChannel(fd);
        this.stop = stop;
        this.backendThread = backendThread;
    }

    /** Starts a backend for device on a fresh socketpair and connects to it. */
    public static TestFrontend connect(VirtioDevice device) throws Exception {
        int[] pair = UnixSockets.pair();
        Wakeup stop = new Wakeup();
        VhostUserBackend backend = new VhostUserBackend(device);
        TestFrontend[] self = new TestFrontend[1];
        Thread t = Thread.ofPlatform().name("backend").daemon(true).unstarted(() -> {
            try {
                backend.serve(pair[1], stop);
            } catch (Throwable e) {
                if (self[0] != null) {
                    self[0].backendFailure = e;
                }
            } finally {
                LibC.close(pair[1]);
            }
        });
        self[0] = new TestFrontend(pair[0], stop, t);
        t.start();
        return self[0];
    }

    /** A frontend on an already connected fd whose backend runs elsewhere (client mode tests). */
    public static TestFrontend attach(int fd) throws Exception {
        return new TestFrontend(fd, new Wakeup(), null);
    }

    public Message message() {
        return channel.message();
    }

    /** Sends request with a payload written by fill (may be null), the given flags and fds. */
    public void send(int request, int flags, int size, Consumer<Message> fill, int... fds) throws Exception {
        Message m = channel.message();
        m.setHeader(request, flags, size);
        if (fill != null) {
            fill.accept(m);
        }
        channel.send(fds);
    }

    /** Writes raw bytes on the socket (for messages the framing would never produce); returns bytes written. */
    public long sendRaw(java.lang.foreign.MemorySegment bytes) {
        return LibC.rawWrite(fd, bytes, bytes.byteSize());
    }

    /** Waits for a reply; null if none came within the timeout. */
    public Message receive(int timeoutMillis) throws Exception {
        Poll poll = new Poll(1);
        poll.add(fd);
        if (poll.await(timeoutMillis) == 0) {
            return null;
        }
        return channel.receive() ? channel.message() : null;
    }

    public Message receive() throws Exception {
        Message m = receive(REPLY_TIMEOUT_MILLIS);
        if (m == null) {
            throw new AssertionError("backend did not reply");
        }
        return m;
    }

    public long getU64(int request) throws Exception {
        send(request, Message.VERSION, 0, null);
        Message r = receive();
        if (r.request() != request || r.size() != 8) {
            throw new AssertionError(VhostUserRequest.name(request) + " reply of size " + r.size());
        }
        return r.u64(0);
    }

    /** Sends a u64-payload request with NEED_REPLY and returns the ack value (0 = success). */
    public long setU64Acked(int request, long value, int... fds) throws Exception {
        send(request, Message.VERSION | Message.FLAG_NEED_REPLY, 8, m -> m.setU64(0, value), fds);
        return ack(request);
    }

    /** Reads a REPLY_ACK reply for request. */
    public long ack(int request) throws Exception {
        Message r = receive();
        if (r.request() != request || r.size() != 8) {
            throw new AssertionError(VhostUserRequest.name(request) + " ack of size " + r.size());
        }
        return r.u64(0);
    }

    /** A vring-state request {u32 index; u32 num} with NEED_REPLY; returns the ack. */
    public long vringState(int request, int index, int num) throws Exception {
        send(request, Message.VERSION | Message.FLAG_NEED_REPLY, 8, m -> {
            m.setU32(0, index);
            m.setU32(4, num);
        });
        return ack(request);
    }

    /** GET_FEATURES, GET/SET_PROTOCOL_FEATURES, SET_OWNER, SET_FEATURES(features & offered). */
    public void negotiate(long wantedFeatures) throws Exception {
        long offered = getU64(VhostUserRequest.GET_FEATURES);
        long offeredProtocol = getU64(VhostUserRequest.GET_PROTOCOL_FEATURES);
        protocolFeatures = offeredProtocol;
        send(VhostUserRequest.SET_PROTOCOL_FEATURES, Message.VERSION, 8, m -> m.setU64(0, offeredProtocol));
        expectAck(VhostUserRequest.SET_OWNER, 0, null);
        features = offered & (wantedFeatures | ProtocolFeature.bit(ProtocolFeature.F_PROTOCOL_FEATURES));
        if (setU64Acked(VhostUserRequest.SET_FEATURES, features) != 0) {
            throw new AssertionError("SET_FEATURES refused");
        }
    }

    private void expectAck(int request, int size, Consumer<Message> fill, int... fds) throws Exception {
        send(request, Message.VERSION | Message.FLAG_NEED_REPLY, size, fill, fds);
        long a = ack(request);
        if (a != 0) {
            throw new AssertionError(VhostUserRequest.name(request) + " failed: " + a);
        }
    }

    /** SET_MEM_TABLE with every region of ram; returns the ack. */
    public long setMemTable(GuestRam ram) throws Exception {
        var regions = ram.regions();
        int[] fds = new int[regions.size()];
        for (int i = 0; i < fds.length; i++) {
            fds[i] = regions.get(i).fd();
        }
        send(VhostUserRequest.SET_MEM_TABLE, Message.VERSION | Message.FLAG_NEED_REPLY, 8 + 32 * regions.size(), m -> {
            m.setU32(0, regions.size());
            m.setU32(4, 0);
            for (int i = 0; i < regions.size(); i++) {
                GuestRam.Region r = regions.get(i);
                m.setU64(8 + 32L * i, r.gpa());
                m.setU64(16 + 32L * i, r.size());
                m.setU64(24 + 32L * i, r.uva());
                m.setU64(32 + 32L * i, r.mmapOffset());
            }
        }, fds);
        return ack(VhostUserRequest.SET_MEM_TABLE);
    }

    /** ADD_MEM_REG or REM_MEM_REG for one region; returns the ack. */
    public long memReg(int request, GuestRam.Region r, int... fds) throws Exception {
        send(request, Message.VERSION | Message.FLAG_NEED_REPLY, 40, m -> {
            m.setU64(0, 0);
            m.setU64(8, r.gpa());
            m.setU64(16, r.size());
            m.setU64(24, r.uva());
            m.setU64(32, r.mmapOffset());
        }, fds);
        return ack(request);
    }

    /** SET_VRING_ADDR for q at index; returns the ack. */
    public long setVringAddr(int index, DriverQueue q, GuestRam ram) throws Exception {
        send(VhostUserRequest.SET_VRING_ADDR, Message.VERSION | Message.FLAG_NEED_REPLY, 40, m -> {
            m.setU32(0, index);
            m.setU32(4, 0);
            m.setU64(8, ram.uvaOf(q.descGpa));
            m.setU64(16, ram.uvaOf(q.usedGpa));
            m.setU64(24, ram.uvaOf(q.availGpa));
            m.setU64(32, 0);
        });
        return ack(VhostUserRequest.SET_VRING_ADDR);
    }

    /** The QEMU start sequence for one queue: NUM, BASE, ADDR, CALL, KICK, ENABLE. */
    public DriverQueue startQueue(GuestRam ram, int index, int size) throws Exception {
        return startQueue(ram, index, new DriverQueue(ram, size), 0);
    }

    /** The start sequence for an existing driver queue (a reconnect), with the given SET_VRING_BASE. */
    public DriverQueue startQueue(GuestRam ram, int index, DriverQueue q, int base) throws Exception {
        int size = q.size;
        check(vringState(VhostUserRequest.SET_VRING_NUM, index, size), "SET_VRING_NUM");
        check(vringState(VhostUserRequest.SET_VRING_BASE, index, base), "SET_VRING_BASE");
        check(setVringAddr(index, q, ram), "SET_VRING_ADDR");
        check(setU64Acked(VhostUserRequest.SET_VRING_CALL, index, q.callFd), "SET_VRING_CALL");
        check(setU64Acked(VhostUserRequest.SET_VRING_KICK, index, q.kickFd), "SET_VRING_KICK");
        check(vringState(VhostUserRequest.SET_VRING_ENABLE, index, 1), "SET_VRING_ENABLE");
        return q;
    }

    /** Negotiates features, shares ram and starts queues 0..queues-1 of the given size. */
    public DriverQueue[] ready(GuestRam ram, long wantedFeatures, int queues, int size) throws Exception {
        negotiate(wantedFeatures);
        check(setMemTable(ram), "SET_MEM_TABLE");
        DriverQueue[] q = new DriverQueue[queues];
        for (int i = 0; i < queues; i++) {
            q[i] = startQueue(ram, i, size);
        }
        return q;
    }

    /** GET_CONFIG: the config space bytes [offset, offset+size), or null if the backend refused. */
    public byte[] getConfig(int offset, int size) throws Exception {
        send(VhostUserRequest.GET_CONFIG, Message.VERSION, 12 + size, m -> {
            m.setU32(0, offset);
            m.setU32(4, size);
        });
        Message r = receive();
        if (r.request() != VhostUserRequest.GET_CONFIG) {
            throw new AssertionError("GET_CONFIG answered with " + VhostUserRequest.name(r.request()));
        }
        return r.size() == 12 + size ? r.bytes(12, size) : null;
    }

    /** SET_CONFIG (type frontend) with NEED_REPLY; returns the ack (0 = accepted). */
    public long setConfig(int offset, byte[] data) throws Exception {
        send(VhostUserRequest.SET_CONFIG, Message.VERSION | Message.FLAG_NEED_REPLY, 12 + data.length, m -> {
            m.setU32(0, offset);
            m.setU32(4, data.length);
            m.setU32(8, 0);
            m.setBytes(12, data);
        });
        return ack(VhostUserRequest.SET_CONFIG);
    }

    /** Number of open fds of this process (/proc/self/fd), for leak checks. */
    public static int openFds() {
        String[] fds = new java.io.File("/proc/self/fd").list();
        return fds == null ? -1 : fds.length;
    }

    private static void check(long ack, String what) {
        if (ack != 0) {
            throw new AssertionError(what + " refused");
        }
    }

    /** GET_INFLIGHT_FD for numQueues queues of queueSize; returns the memfd (the frontend keeps it). */
    public int getInflightFd(int numQueues, int queueSize) throws Exception {
        send(VhostUserRequest.GET_INFLIGHT_FD, Message.VERSION, 24, m -> m.setU32(16, numQueues | (queueSize << 16)));
        Message r = receive();
        if (r.size() != 24 || r.fdCount() != 1) {
            throw new AssertionError("GET_INFLIGHT_FD reply of size " + r.size() + " with " + r.fdCount() + " fds");
        }
        inflightSize = r.u64(0);
        return r.takeFd(0);
    }

    public long inflightSize;

    /** SET_INFLIGHT_FD with a buffer from an earlier GET_INFLIGHT_FD; returns the ack. */
    public long setInflightFd(int fd, long size, int numQueues, int queueSize) throws Exception {
        send(VhostUserRequest.SET_INFLIGHT_FD, Message.VERSION | Message.FLAG_NEED_REPLY, 24, m -> {
            m.setU64(0, size);
            m.setU64(8, 0);
            m.setU32(16, numQueues | (queueSize << 16));
            m.setU32(20, 0);
        }, fd);
        return ack(VhostUserRequest.SET_INFLIGHT_FD);
    }

    /** GET_VRING_BASE: stops the ring and returns its last avail index. */
    public int getVringBase(int index) throws Exception {
        send(VhostUserRequest.GET_VRING_BASE, Message.VERSION, 8, m -> {
            m.setU32(0, index);
            m.setU32(4, 0);
        });
        Message r = receive();
        if (r.size() != 8) {
            throw new AssertionError("GET_VRING_BASE reply of size " + r.size());
        }
        return r.u32(4);
    }

    /** True if the backend still answers GET_FEATURES correctly. */
    public boolean alive() {
        try {
            send(VhostUserRequest.GET_FEATURES, Message.VERSION, 0, null);
            Message r = receive(REPLY_TIMEOUT_MILLIS);
            return r != null && r.request() == VhostUserRequest.GET_FEATURES && r.size() == 8;
        } catch (Exception e) {
            return false;
        }
    }

    public Throwable backendFailure() {
        return backendFailure;
    }

    /** Disconnects like a frontend going away and waits for the backend to release everything. */
    @Override
    public void close() throws InterruptedException {
        LibC.shutdownQuietly(fd);
        channel.close();
        LibC.close(fd);
        if (backendThread == null) {
            stop.close();
            return;
        }
        backendThread.join(10_000);
        if (backendThread.isAlive()) {
            stop.signal();
            backendThread.join(5_000);
            throw new AssertionError("backend did not end after the frontend disconnected");
        }
        stop.close();
    }
}

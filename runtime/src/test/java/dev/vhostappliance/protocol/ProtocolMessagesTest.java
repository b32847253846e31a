package dev.vhostappliance.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostappliance.device.FrontendChannel;
import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.libc.UnixSockets;
import dev.vhostappliance.testing.DriverQueue;
import dev.vhostappliance.testing.DriverQueue.Buf;
import dev.vhostappliance.testing.EchoDevice;
import dev.vhostappliance.testing.GuestRam;
import dev.vhostappliance.testing.TestFrontend;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Messages beyond the data path: the backend request channel, status, reset, ordering corner cases. */
class ProtocolMessagesTest {
    private static final long MIB = 1 << 20;

    /** A device that keeps the frontend channel it is given. */
    static final class ChannelDevice extends EchoDevice {
        volatile FrontendChannel channel;

        ChannelDevice() {
            super(1);
        }

        @Override
        public void setFrontendChannel(FrontendChannel c) {
            channel = c;
        }
    }

    @Test
    void configChangeNotificationTravelsOverTheBackendRequestChannel() throws Exception {
        ChannelDevice dev = new ChannelDevice();
        try (TestFrontend fe = TestFrontend.connect(dev)) {
            fe.negotiate(EchoDevice.FEATURES);
            int[] pair = UnixSockets.pair();
            fe.send(VhostUserRequest.SET_SLAVE_REQ_FD, Message.VERSION | Message.FLAG_NEED_REPLY, 0, null, pair[1]);
            assertEquals(0, fe.ack(VhostUserRequest.SET_SLAVE_REQ_FD));
            LibC.close(pair[1]);
            assertNotNull(dev.channel, "the device got the channel");
            CompletableFuture<Boolean> sent = CompletableFuture.supplyAsync(() -> dev.channel.notifyConfigChange());
            // Play QEMU on the other end: read CONFIG_CHANGE_MSG (need_reply, REPLY_ACK negotiated), acknowledge.
            MessageChannel frontendSide = new MessageChannel(pair[0]);
            assertTrue(frontendSide.receive());
            Message m = frontendSide.message();
            assertEquals(VhostUserRequest.SLAVE_CONFIG_CHANGE_MSG, m.request());
            assertTrue(m.needsReply());
            m.setHeader(VhostUserRequest.SLAVE_CONFIG_CHANGE_MSG, Message.VERSION | Message.FLAG_REPLY, 8);
            m.setU64(0, 0);
            frontendSide.send();
            assertTrue(sent.get(5, TimeUnit.SECONDS), "acknowledged");
            frontendSide.close();
            LibC.close(pair[0]);
        }
        assertNull(dev.channel, "the channel is withdrawn at disconnect");
    }

    @Test
    void statusIsStoredAndZeroResetsTheRings() throws Exception {
        EchoDevice dev = new EchoDevice(1);
        try (GuestRam ram = GuestRam.single(2 * MIB); TestFrontend fe = TestFrontend.connect(dev)) {
            DriverQueue q = fe.ready(ram, EchoDevice.FEATURES, 1, 8)[0];
            assertEquals(0, fe.setU64Acked(VhostUserRequest.SET_STATUS, 0x0f));
            assertEquals(0x0f, fe.getU64(VhostUserRequest.GET_STATUS));
            assertNotEquals(0, fe.setU64Acked(VhostUserRequest.SET_STATUS, 0x1ff), "status is one byte");
            long resetsBefore = dev.resets.get();
            assertEquals(0, fe.setU64Acked(VhostUserRequest.SET_STATUS, 0));
            assertEquals(resetsBefore + 1, dev.resets.get(), "status 0 resets the device");
            long b = ram.alloc(64, 8);
            q.addDirect(new Buf(b, 8, false), new Buf(b + 32, 8, true));
            q.kick();
            assertNull(q.awaitUsed(300), "rings were stopped by the reset");
        }
    }

    @Test
    void resetDeviceStopsRingsAndTheyCanBeStartedAgain() throws Exception {
        EchoDevice dev = new EchoDevice(1);
        try (GuestRam ram = GuestRam.single(2 * MIB); TestFrontend fe = TestFrontend.connect(dev)) {
            fe.ready(ram, EchoDevice.FEATURES, 1, 8);
            fe.send(VhostUserRequest.RESET_DEVICE, Message.VERSION | Message.FLAG_NEED_REPLY, 0, null);
            assertEquals(0, fe.ack(VhostUserRequest.RESET_DEVICE));
            assertEquals(1, dev.resets.get());
            DriverQueue q = fe.startQueue(ram, 0, 8); // a fresh ring after the reset
            long b = ram.alloc(64, 8);
            q.addDirect(new Buf(b, 8, false), new Buf(b + 32, 8, true));
            q.kick();
            assertNotNull(q.awaitUsed(5000));
        }
    }

    @Test
    void kickBeforeAddressesIsRefusedAndTheRingStartsOnceTheyArrive() throws Exception {
        EchoDevice dev = new EchoDevice(1);
        try (GuestRam ram = GuestRam.single(2 * MIB); TestFrontend fe = TestFrontend.connect(dev)) {
            fe.negotiate(EchoDevice.FEATURES);
            assertEquals(0, fe.setMemTable(ram));
            DriverQueue q = new DriverQueue(ram, 8);
            assertNotEquals(0, fe.setU64Acked(VhostUserRequest.SET_VRING_KICK, 0, q.kickFd), "kick before size/addresses");
            assertTrue(fe.alive());
            assertEquals(0, fe.vringState(VhostUserRequest.SET_VRING_NUM, 0, 8));
            assertEquals(0, fe.setU64Acked(VhostUserRequest.SET_VRING_CALL, 0, q.callFd));
            assertEquals(0, fe.vringState(VhostUserRequest.SET_VRING_ENABLE, 0, 1));
            long b = ram.alloc(64, 8);
            q.addDirect(new Buf(b, 8, false), new Buf(b + 32, 8, true));
            assertEquals(0, fe.setVringAddr(0, q, ram), "addresses complete the ring: it starts on the earlier kick");
            assertNotNull(q.awaitUsed(5000), "the request published before the start is served");
        }
    }

    @Test
    void truncatedHeaderEndsTheConnectionCleanly() throws Exception {
        EchoDevice dev = new EchoDevice(1);
        int fdsBefore = TestFrontend.openFds();
        TestFrontend fe = TestFrontend.connect(dev);
        MemorySegment half = Arena.ofAuto().allocate(6);
        half.set(ValueLayout.JAVA_INT, 0, VhostUserRequest.GET_FEATURES);
        assertEquals(6, fe.sendRaw(half));
        fe.close(); // EOF inside the header: the backend drops the connection and releases everything
        // The session ends with a ProtocolException (BackendServer logs it and serves the next frontend).
        assertTrue(fe.backendFailure() instanceof ProtocolException, String.valueOf(fe.backendFailure()));
        assertEquals(fdsBefore, TestFrontend.openFds(), "everything released");
    }
}

package dev.vhostappliance.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.testing.DriverQueue;
import dev.vhostappliance.testing.DriverQueue.Buf;
import dev.vhostappliance.testing.EchoDevice;
import dev.vhostappliance.testing.GuestRam;
import dev.vhostappliance.testing.TestFrontend;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/**
 * Dirty page logging for live migration, as QEMU drives it: VHOST_F_LOG_ALL acked, SET_LOG_BASE with a shared
 * log (LOG_SHMFD, answered once mapped), SET_VRING_ADDR with VHOST_VRING_F_LOG. The pages the device writes
 * (its writable buffers) and the used ring's are marked when the request completes; pages it only reads are
 * not; with LOG_ALL cleared nothing is marked any more.
 */
class DirtyLoggingTest {
    static final long MIB = 1 << 20;

    static boolean dirty(MemorySegment log, long gpa) {
        long page = gpa / 4096;
        return (log.get(ValueLayout.JAVA_BYTE, page / 8) & (1 << (page % 8))) != 0;
    }

    @Test
    void writtenPagesAndTheUsedRingAreMarkedOnlyWhileLogging() throws Exception {
        EchoDevice dev = new EchoDevice(1);
        long ramSize = 8 * MIB;
        long logSize = ramSize / 4096 / 8;
        int logFd = LibC.memfdCreate("dirty-log", LibC.MFD_CLOEXEC);
        LibC.ftruncate(logFd, logSize);
        MemorySegment log = LibC.mmap(logSize, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, logFd, 0).reinterpret(logSize);
        try (GuestRam ram = GuestRam.single(ramSize); TestFrontend fe = TestFrontend.connect(dev)) {
            long logAll = ProtocolFeature.bit(ProtocolFeature.F_LOG_ALL);
            DriverQueue q = fe.ready(ram, EchoDevice.FEATURES | logAll, 1, 64)[0];
            assertTrue((fe.features & logAll) != 0, "VHOST_F_LOG_ALL offered and acked");
            assertTrue((fe.protocolFeatures & ProtocolFeature.bit(ProtocolFeature.LOG_SHMFD)) != 0, "LOG_SHMFD offered");
            // SET_LOG_BASE is answered (u64 0) once the log is mapped
            fe.send(VhostUserRequest.SET_LOG_BASE, Message.VERSION, 16, m -> {
                m.setU64(0, logSize);
                m.setU64(8, 0);
            }, logFd);
            Message r = fe.receive();
            assertEquals(VhostUserRequest.SET_LOG_BASE, r.request());
            assertEquals(0, r.u64(0));
            // the used ring is logged at its guest address (VHOST_VRING_F_LOG)
            fe.send(VhostUserRequest.SET_VRING_ADDR, Message.VERSION | Message.FLAG_NEED_REPLY, 40, m -> {
                m.setU32(0, 0);
                m.setU32(4, 1);
                m.setU64(8, ram.uvaOf(q.descGpa));
                m.setU64(16, ram.uvaOf(q.usedGpa));
                m.setU64(24, ram.uvaOf(q.availGpa));
                m.setU64(32, q.usedGpa);
            });
            assertEquals(0, fe.ack(VhostUserRequest.SET_VRING_ADDR));
            long in = 2 * MIB;
            long out = 5 * MIB + 8192; // two pages: 5M+8K .. 5M+8K+5000
            ram.write(in, new byte[] {1, 2, 3});
            q.addDirect(new Buf(in, 3, false), new Buf(out, 5000, true));
            q.kick();
            assertNotNull(q.awaitUsed(5000));
            assertTrue(dirty(log, out) && dirty(log, out + 4999), "the written buffer's pages");
            assertFalse(dirty(log, out + 8192), "the page after it");
            assertFalse(dirty(log, in), "a page the device only read");
            assertTrue(dirty(log, q.usedGpa), "the used ring");
            // logging off: SET_FEATURES without LOG_ALL. The worker marks the used index's page just after
            // publishing it, so the first request's last mark can land after awaitUsed returned: clear the log
            // only once the worker has been idle a while (a CI run caught the race).
            assertEquals(0, fe.setU64Acked(VhostUserRequest.SET_FEATURES, fe.features & ~logAll));
            Thread.sleep(200);
            log.fill((byte) 0);
            q.addDirect(new Buf(in, 3, false), new Buf(out, 5000, true));
            q.kick();
            assertNotNull(q.awaitUsed(5000));
            for (long off = 0; off < logSize; off++) {
                assertEquals(0, log.get(ValueLayout.JAVA_BYTE, off), "nothing marked with logging off");
            }
        } finally {
            LibC.munmap(log.address(), logSize);
            LibC.close(logFd);
        }
    }
}

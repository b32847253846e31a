package dev.vhostappliance.input;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostappliance.testing.DriverQueue;
import dev.vhostappliance.testing.DriverQueue.Buf;
import dev.vhostappliance.testing.GuestRam;
import dev.vhostappliance.testing.TestFrontend;
import dev.vhostappliance.virtqueue.VirtioRing;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** virtio-input through the core's test frontend: config selectors, eventq batching, statusq, bad buffers. */
class VirtioInputDeviceTest {
    static final long FEATURES = VirtioRing.bit(VirtioRing.F_VERSION_1);
    static final int KEY_A = 30;
    static final int MSC_SCAN = 4;
    static final int LED_CAPSL = 1;
    static final int ABS_X = 0;
    static final int ABS_Y = 1;
    static final int REL_WHEEL = 8;

    static InputIdentity identity() {
        return InputIdentity.builder("Test Tablet Keyboard").serial("SN-42").ids(0x06, 0x1af4, 0x1234, 7)
                .property(1) // INPUT_PROP_DIRECT
                .code(VirtioInput.EV_KEY, KEY_A).code(VirtioInput.EV_KEY, 0x110) // BTN_LEFT
                .code(VirtioInput.EV_REL, REL_WHEEL).code(VirtioInput.EV_MSC, MSC_SCAN)
                .code(VirtioInput.EV_LED, LED_CAPSL).type(VirtioInput.EV_REP)
                .axis(ABS_X, new AbsInfo(0, 32767, 4, 8, 12)).axis(ABS_Y, new AbsInfo(-100, 100, 0, 0, 0)).build();
    }

    FakeSource source = new FakeSource(identity());
    VirtioInputDevice device = new VirtioInputDevice(source);
    GuestRam ram;
    TestFrontend fe;

    @AfterEach
    void tearDown() throws Exception {
        if (fe != null) {
            assertTrue(fe.alive(), "backend still serving");
            fe.close();
        }
        if (ram != null) {
            ram.close();
        }
    }

    private DriverQueue[] start(int size) throws Exception {
        ram = GuestRam.single(1 << 20);
        fe = TestFrontend.connect(device);
        DriverQueue[] q = fe.ready(ram, FEATURES, 2, size);
        awaitDriver();
        return q;
    }

    /** Selects (select, subsel) the way QEMU does (the whole structure written back) and reads the config. */
    private byte[] select(int select, int subsel) throws Exception {
        byte[] all = new byte[VirtioInput.CONFIG_BYTES];
        all[0] = (byte) select;
        all[1] = (byte) subsel;
        assertEquals(0, fe.setConfig(0, all));
        byte[] cfg = fe.getConfig(0, VirtioInput.CONFIG_BYTES);
        assertNotNull(cfg);
        assertEquals(select, cfg[0] & 0xff);
        assertEquals(subsel, cfg[1] & 0xff);
        return cfg;
    }

    private static int size(byte[] cfg) {
        return cfg[2] & 0xff;
    }

    private static byte[] payload(byte[] cfg) {
        return Arrays.copyOfRange(cfg, 8, 8 + size(cfg));
    }

    @Test
    void everyConfigSelectorAnswersFromTheIdentity() throws Exception {
        start(8);
        assertEquals("Test Tablet Keyboard", new String(payload(select(VirtioInput.CFG_ID_NAME, 0)), StandardCharsets.UTF_8));
        assertEquals("SN-42", new String(payload(select(VirtioInput.CFG_ID_SERIAL, 0)), StandardCharsets.UTF_8));
        ByteBuffer ids = ByteBuffer.wrap(payload(select(VirtioInput.CFG_ID_DEVIDS, 0))).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(8, ids.limit());
        assertEquals(0x06, ids.getShort(0));
        assertEquals(0x1af4, ids.getShort(2) & 0xffff);
        assertEquals(0x1234, ids.getShort(4));
        assertEquals(7, ids.getShort(6));
        assertArrayEquals(new byte[] {0x02}, payload(select(VirtioInput.CFG_PROP_BITS, 0)));
        // EV_KEY: KEY_A (30) and BTN_LEFT (0x110): 0x110 / 8 = 34 bytes, bit 0 of byte 34
        byte[] keys = payload(select(VirtioInput.CFG_EV_BITS, VirtioInput.EV_KEY));
        assertEquals(35, keys.length);
        assertEquals(1 << (KEY_A % 8), keys[KEY_A / 8]);
        assertEquals(1, keys[34]);
        assertArrayEquals(new byte[] {0x00, 0x01}, payload(select(VirtioInput.CFG_EV_BITS, VirtioInput.EV_REL)));
        assertArrayEquals(new byte[] {0x03}, payload(select(VirtioInput.CFG_EV_BITS, VirtioInput.EV_ABS)));
        assertArrayEquals(new byte[] {0x10}, payload(select(VirtioInput.CFG_EV_BITS, VirtioInput.EV_MSC)));
        assertArrayEquals(new byte[] {0x02}, payload(select(VirtioInput.CFG_EV_BITS, VirtioInput.EV_LED)));
        assertEquals(1, size(select(VirtioInput.CFG_EV_BITS, VirtioInput.EV_REP)), "EV_REP present without codes");
        assertEquals(0, size(select(VirtioInput.CFG_EV_BITS, VirtioInput.EV_SW)), "no switches");
        assertEquals(0, size(select(VirtioInput.CFG_EV_BITS, 0xff)), "type beyond EV_MAX");
        ByteBuffer x = ByteBuffer.wrap(payload(select(VirtioInput.CFG_ABS_INFO, ABS_X))).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(20, x.limit());
        assertEquals(List.of(0, 32767, 4, 8, 12), List.of(x.getInt(0), x.getInt(4), x.getInt(8), x.getInt(12), x.getInt(16)));
        ByteBuffer y = ByteBuffer.wrap(payload(select(VirtioInput.CFG_ABS_INFO, ABS_Y))).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(-100, y.getInt(0));
        assertEquals(100, y.getInt(4));
        assertEquals(0, size(select(VirtioInput.CFG_ABS_INFO, 5)), "an axis the device does not have");
        assertEquals(0, size(select(VirtioInput.CFG_UNSET, 0)));
        assertEquals(0, size(select(0x7f, 0)), "unknown selector");
        assertEquals(0, size(select(VirtioInput.CFG_ID_NAME, 1)), "subsel must be 0 for ID_NAME");
    }

    @Test
    void selectAndSubselWrittenAsSingleBytesAndReadOnlyFieldsRefused() throws Exception {
        start(8);
        assertEquals(0, fe.setConfig(0, new byte[] {VirtioInput.CFG_ABS_INFO}));
        assertEquals(0, fe.setConfig(1, new byte[] {ABS_Y}));
        byte[] cfg = fe.getConfig(0, VirtioInput.CONFIG_BYTES);
        assertEquals(20, size(cfg));
        assertEquals(-100, ByteBuffer.wrap(cfg, 8, 4).order(ByteOrder.LITTLE_ENDIAN).getInt());
        assertNotEquals(0, fe.setConfig(2, new byte[] {5}), "size is read-only");
        assertNotEquals(0, fe.setConfig(8, new byte[] {1, 2, 3}), "the union is read-only");
        assertNotEquals(0, fe.setConfig(130, new byte[10]), "beyond the config space");
        assertNull(fe.getConfig(100, 100), "read beyond the config space refused");
        byte[] part = fe.getConfig(2, 1);
        assertArrayEquals(new byte[] {20}, part, "partial reads work");
    }

    /** Takes n used eventq entries (waiting up to 5 s each) and decodes the events in order. */
    private List<String> takeEvents(DriverQueue q, java.util.Map<Integer, Long> bufOfHead, int n) throws Exception {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            DriverQueue.Used u = q.awaitUsed(5000);
            assertNotNull(u, "event " + i + " of " + n + " delivered");
            assertEquals(8, u.len());
            ByteBuffer b = ByteBuffer.wrap(ram.read(bufOfHead.get(u.head()), 8)).order(ByteOrder.LITTLE_ENDIAN);
            out.add(b.getShort(0) + ":" + b.getShort(2) + ":" + b.getInt(4));
        }
        return out;
    }

    private java.util.Map<Integer, Long> heads = new java.util.HashMap<>();

    private void post(DriverQueue q, int n) {
        for (int i = 0; i < n; i++) {
            long gpa = ram.alloc(8, 8);
            int head = q.addDirect(new Buf(gpa, 8, true));
            heads.put(head, gpa);
        }
        q.kick();
    }

    /** The eventq worker looks at the queue once when it starts; from then on events are kept for the driver. */
    private void awaitDriver() throws Exception {
        long deadline = System.currentTimeMillis() + 5000;
        while (!device.driverActive() && System.currentTimeMillis() < deadline) {
            Thread.sleep(1);
        }
        assertTrue(device.driverActive());
    }

    private void pressA() {
        source.emit(VirtioInput.EV_MSC, MSC_SCAN, 0x1e);
        source.emit(VirtioInput.EV_KEY, KEY_A, 1);
        source.syn();
    }

    @Test
    void aBatchWaitsUntilTheDriverHasPostedEnoughBuffers() throws Exception {
        DriverQueue[] q = start(8);
        post(q[0], 1);
        pressA(); // 3 events, 1 buffer: nothing may be delivered
        Thread.sleep(200);
        assertNull(q[0].pollUsed(), "no partial batch");
        assertEquals(3, device.stats().backlog());
        post(q[0], 2);
        assertEquals(List.of("4:4:30", "1:30:1", "0:0:0"), takeEvents(q[0], heads, 3));
        assertEquals(0, device.stats().backlog());
        assertEquals(3, device.stats().eventsDelivered());
    }

    @Test
    void batchesArriveInOrderAndWholeWhenBuffersAreThere() throws Exception {
        DriverQueue[] q = start(64);
        post(q[0], 60);
        for (int i = 0; i < 10; i++) {
            source.emit(VirtioInput.EV_ABS, ABS_X, i * 100);
            source.emit(VirtioInput.EV_ABS, ABS_Y, -i);
            source.syn();
        }
        List<String> got = takeEvents(q[0], heads, 30);
        for (int i = 0; i < 10; i++) {
            assertEquals(List.of("3:0:" + i * 100, "3:1:" + -i, "0:0:0"), got.subList(i * 3, i * 3 + 3));
        }
    }

    @Test
    void aBatchLargerThanTheQueueFillsItAndContinuesAsBuffersReturn() throws Exception {
        DriverQueue[] q = start(4); // QEMU's vhost-user-input gives the eventq 4 entries
        post(q[0], 4);
        for (int i = 1; i <= 5; i++) {
            source.emit(VirtioInput.EV_KEY, KEY_A, i);
        }
        source.syn();
        List<String> got = new ArrayList<>(takeEvents(q[0], heads, 4));
        post(q[0], 2);
        got.addAll(takeEvents(q[0], heads, 2));
        assertEquals(List.of("1:30:1", "1:30:2", "1:30:3", "1:30:4", "1:30:5", "0:0:0"), got);
    }

    @Test
    void overflowDropsTheOldestWholeBatchesAndCountsThem() throws Exception {
        DriverQueue[] q = start(64);
        int batches = 500; // 1500 events into a backlog of 1024
        for (int i = 0; i < batches; i++) {
            source.emit(VirtioInput.EV_REL, REL_WHEEL, i);
            source.emit(VirtioInput.EV_KEY, KEY_A, i & 1);
            source.syn();
        }
        InputStats s = device.stats();
        assertEquals(batches * 3, s.backlog() + s.eventsDropped(), "every event is delivered later or counted");
        assertEquals(s.eventsDropped(), s.batchesDropped() * 3, "only whole batches dropped");
        assertTrue(s.backlog() <= VirtioInputDevice.BACKLOG_EVENTS);
        int firstKept = (int) s.batchesDropped();
        post(q[0], 6);
        assertEquals(List.of("2:8:" + firstKept, "1:30:" + (firstKept & 1), "0:0:0", "2:8:" + (firstKept + 1),
                "1:30:" + ((firstKept + 1) & 1), "0:0:0"), takeEvents(q[0], heads, 6), "the newest batches kept, in order");
    }

    @Test
    void eventsWithNoDriverAreDroppedNotQueued() throws Exception {
        pressA();
        assertEquals(3, device.stats().eventsWithoutDriver());
        DriverQueue[] q = start(8);
        post(q[0], 4);
        Thread.sleep(200);
        assertNull(q[0].pollUsed(), "stale events are not replayed into a new driver");
    }

    @Test
    void statusEventsReachTheSource() throws Exception {
        DriverQueue[] q = start(8);
        long gpa = ram.alloc(8, 8);
        ram.write(gpa, ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putShort((short) VirtioInput.EV_LED)
                .putShort((short) LED_CAPSL).putInt(1).array());
        q[1].addDirect(new Buf(gpa, 8, false));
        q[1].kick();
        DriverQueue.Used u = q[1].awaitUsed(5000);
        assertNotNull(u);
        assertEquals(0, u.len());
        assertEquals(1, source.status.size());
        assertArrayEquals(new int[] {VirtioInput.EV_LED, LED_CAPSL, 1}, source.status.get(0));
    }

    @Test
    void malformedBuffersAreReturnedAndCountedWithoutLosingEvents() throws Exception {
        DriverQueue[] q = start(8);
        // statusq: 4 bytes only, and a split 8-byte event (legal: 3 + 5 bytes)
        long shortBuf = ram.alloc(4, 4);
        q[1].addDirect(new Buf(shortBuf, 4, false));
        long a = ram.alloc(3, 1);
        long b = ram.alloc(5, 1);
        byte[] ev = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putShort((short) VirtioInput.EV_LED)
                .putShort((short) LED_CAPSL).putInt(0).array();
        ram.write(a, Arrays.copyOfRange(ev, 0, 3));
        ram.write(b, Arrays.copyOfRange(ev, 3, 8));
        q[1].addDirect(new Buf(a, 3, false), new Buf(b, 5, false));
        q[1].kick();
        assertNotNull(q[1].awaitUsed(5000));
        assertNotNull(q[1].awaitUsed(5000));
        assertEquals(1, source.status.size(), "the short one is dropped, the split one arrives");
        assertArrayEquals(new int[] {VirtioInput.EV_LED, LED_CAPSL, 0}, source.status.get(0));
        // eventq: a read-only buffer and a 4-byte one come back unused; the batch waits for real buffers
        long ro = ram.alloc(8, 8);
        q[0].addDirect(new Buf(ro, 8, false));
        long tiny = ram.alloc(4, 4);
        q[0].addDirect(new Buf(tiny, 4, true));
        q[0].kick();
        source.emit(VirtioInput.EV_KEY, KEY_A, 1);
        source.syn();
        DriverQueue.Used u1 = q[0].awaitUsed(5000);
        DriverQueue.Used u2 = q[0].awaitUsed(5000);
        assertNotNull(u1);
        assertNotNull(u2);
        assertEquals(0, u1.len());
        assertEquals(0, u2.len());
        assertEquals(2, device.stats().backlog(), "the batch is still waiting");
        post(q[0], 2);
        assertEquals(List.of("1:30:1", "0:0:0"), takeEvents(q[0], heads, 2));
        assertEquals(3, device.stats().malformedBuffers());
    }
}

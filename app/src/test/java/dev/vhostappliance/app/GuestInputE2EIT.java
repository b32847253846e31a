package dev.vhostappliance.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * End to end under real QEMU (TCG, QEMU 8 or later: 7.2 refuses vhost-user-input without KVM): the guest sees
 * the appliance's virtual input device (run from a config file) with its configured name, ids and axis ranges,
 * reads from its evdev node exactly the events the host typed through QMP input-send-event and over the event
 * socket, and an LED the guest sets arrives back at the host.
 */
class GuestInputE2EIT {
    static final String NAME = "vhost-appliance e2e input";

    @TempDir
    Path dir;

    @BeforeAll
    static void prerequisites() {
        Guest.requirePrerequisites(8, Guest.QEMU, "/bin/busybox", "/usr/bin/cpio", "/usr/bin/gcc");
    }

    /** What the host sends (JSON lines) and the events the guest must read, as "EV type code value". */
    /** KEY_H is typed through QMP input-send-event (QEMU's shape), the rest over the event socket. */
    static final List<String> QMP_SENT = List.of(
            "{\"execute\":\"input-send-event\",\"arguments\":{\"device\":\"kbd\",\"events\":[{\"type\":\"key\","
                    + "\"data\":{\"down\":true,\"key\":{\"type\":\"qcode\",\"data\":\"h\"}}}]}}",
            "{\"execute\":\"input-send-event\",\"arguments\":{\"events\":[{\"type\":\"key\","
                    + "\"data\":{\"down\":false,\"key\":{\"type\":\"qcode\",\"data\":\"h\"}}}]}}");
    static final List<String> SENT = List.of(
            "{\"key\":\"KEY_I\"}",
            "{\"code\":\"REL_X\",\"value\":5}", "{\"code\":\"REL_Y\",\"value\":-3}", "{\"code\":\"SYN_REPORT\"}",
            "{\"code\":\"ABS_X\",\"value\":16384}", "{\"code\":\"ABS_Y\",\"value\":8192}",
            "{\"code\":\"ABS_PRESSURE\",\"value\":700}", "{\"code\":\"SYN_REPORT\"}",
            "{\"type\":\"EV_KEY\",\"code\":\"BTN_LEFT\",\"value\":1}", "{\"code\":\"SYN_REPORT\"}",
            "{\"type\":\"EV_KEY\",\"code\":\"BTN_LEFT\",\"value\":0}", "{\"code\":\"SYN_REPORT\"}");
    static final List<String> EXPECTED = List.of(
            "EV 1 35 1", "EV 0 0 0", "EV 1 35 0", "EV 0 0 0", // KEY_H tap
            "EV 1 23 1", "EV 0 0 0", "EV 1 23 0", "EV 0 0 0", // KEY_I tap
            "EV 2 0 5", "EV 2 1 -3", "EV 0 0 0", // relative move
            "EV 3 0 16384", "EV 3 1 8192", "EV 3 24 700", "EV 0 0 0", // tablet position and pressure
            "EV 1 272 1", "EV 0 0 0", "EV 1 272 0", "EV 0 0 0"); // left click

    @Test
    void theGuestReadsExactlyWhatTheHostTypedAndItsLedComesBack() throws Exception {
        Path sock = dir.resolve("input.sock");
        Path events = dir.resolve("events.sock");
        Path log = dir.resolve("appliance.log");
        Path qmpSock = dir.resolve("qmp.sock");
        Path cfg = dir.resolve("input.properties");
        java.nio.file.Files.writeString(cfg, String.join("\n",
                "appliance.monitor.socket-path=" + qmpSock,
                "appliance.devices.kbd.type=input",
                "appliance.devices.kbd.socket-path=" + sock,
                "appliance.devices.kbd.event-socket=" + events,
                "appliance.devices.kbd.preset=keyboard,mouse,tablet",
                "appliance.devices.kbd.name=" + NAME,
                "appliance.devices.kbd.ids=6:1af4:4321:2",
                "appliance.devices.kbd.abs=ABS_PRESSURE:0:1023:2:3:4", ""));
        // run from a config file, with a QMP monitor: one process as an operator would run it
        Process appliance = Appliance.start(Appliance.command(null, "run", "--config", cfg.toString()), log);
        try {
            assertTrue(Appliance.awaitFile(sock, 30_000), "appliance listening: " + Files.readString(log));
            String script = String.join("\n",
                    "dev=$(evtool find '" + NAME + "') || exit 1",
                    "evtool info $dev",
                    "evtool read $dev " + EXPECTED.size(),
                    "evtool write $dev 17 1 1", // EV_LED LED_CAPSL on
                    "sleep 1", "");
            Path results = dir.resolve("results.log");
            Process guest = Guest.start(dir, script, 1, results, 240, List.of("-chardev", "socket,id=vin,path=" + sock,
                    "-device", "vhost-user-input-pci,chardev=vin"));
            assertTrue(Guest.awaitLine(results, "READY", 200_000), "guest reading its input device:\n"
                    + Files.readString(results) + Files.readString(log));
            CompletableFuture<String> led;
            try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(events))) {
                BufferedReader fromAppliance = new BufferedReader(new InputStreamReader(Channels.newInputStream(c),
                        StandardCharsets.UTF_8));
                led = CompletableFuture.supplyAsync(() -> {
                    try {
                        for (String line = fromAppliance.readLine(); line != null; line = fromAppliance.readLine()) {
                            if (line.contains("LED_CAPSL")) {
                                return line;
                            }
                        }
                        return "(socket closed)";
                    } catch (java.io.IOException e) {
                        return e.toString();
                    }
                });
                try (Qmp qmp = Qmp.connect(qmpSock, 10_000)) {
                    for (String cmd : QMP_SENT) {
                        assertEquals("{\"return\":{}}", qmp.execute(cmd));
                    }
                }
                c.write(ByteBuffer.wrap((String.join("\n", SENT) + "\n").getBytes(StandardCharsets.UTF_8)));
                String out = Guest.finish(guest, dir, 260);
                assertEquals("{\"type\":\"EV_LED\",\"code\":\"LED_CAPSL\",\"value\":1}", led.get(10, TimeUnit.SECONDS),
                        "the guest's LED reached the source");
                List<String> seen = out.lines().filter(l -> l.startsWith("EV ")).toList();
                printSideBySide(seen);
                assertEquals(EXPECTED, seen, "the guest read exactly the events sent, in order");
                assertTrue(out.contains("NAME=" + NAME + "\n"), out);
                assertTrue(out.contains("ID=6:1af4:4321:2\n"), out);
                assertTrue(out.contains("ABS 0 0 32767 0 0 0\n"), "ABS_X range: " + out);
                assertTrue(out.contains("ABS 1 0 32767 0 0 0\n"), "ABS_Y range: " + out);
                assertTrue(out.contains("ABS 24 0 1023 2 3 4\n"), "ABS_PRESSURE min/max/fuzz/flat/resolution: " + out);
                assertTrue(out.contains("===E2E-END rc=0==="), out);
            }
            appliance.destroy();
            assertTrue(appliance.waitFor(5, TimeUnit.SECONDS));
            assertEquals(0, appliance.exitValue(), "appliance exit on SIGTERM");
        } finally {
            appliance.destroyForcibly();
        }
    }

    private static void printSideBySide(List<String> seen) {
        List<String> rows = new ArrayList<>();
        rows.add(String.format("%-16s | %s", "expected", "guest read"));
        for (int i = 0; i < Math.max(seen.size(), EXPECTED.size()); i++) {
            rows.add(String.format("%-16s | %s", i < EXPECTED.size() ? EXPECTED.get(i) : "", i < seen.size() ? seen.get(i) : ""));
        }
        System.out.println(String.join("\n", rows));
    }
}

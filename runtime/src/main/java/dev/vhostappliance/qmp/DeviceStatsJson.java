package dev.vhostappliance.qmp;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.vhostappliance.device.VirtioDevice;
import dev.vhostappliance.protocol.VhostUserBackend;
import dev.vhostappliance.virtqueue.QueueStats;
import java.util.Map;

/**
 * One device's entry of {@code query-vhost-stats}: its counters and those of each running queue.
 * <pre>
 * {"id": "disk0", "type": "block", "connected": true,
 *  "device": {"reads": 10, "read-bytes": 40960, ...},
 *  "queues": [{"index": 0, "requests": 12, "in-flight": 0, "notifications": 9, "suppressed": 3,
 *              "bytes-to-guest": 40972, "broken": false}]}
 * </pre>
 */
public final class DeviceStatsJson {
    private DeviceStatsJson() {
    }

    public static ObjectNode of(String id, String type, boolean connected, VirtioDevice device, VhostUserBackend backend) {
        ObjectNode o = JsonNodeFactory.instance.objectNode();
        o.put("id", id).put("type", type).put("connected", connected);
        ObjectNode d = o.putObject("device");
        for (Map.Entry<String, Long> c : device.counters().entrySet()) {
            d.put(c.getKey(), c.getValue());
        }
        ArrayNode queues = o.putArray("queues");
        if (backend != null) {
            for (QueueStats q : backend.queueStats()) {
                queues.addObject().put("index", q.index()).put("requests", q.requests()).put("in-flight", q.inFlight())
                        .put("notifications", q.notifications()).put("suppressed", q.suppressed())
                        .put("bytes-to-guest", q.bytesToGuest()).put("broken", q.broken());
            }
        }
        return o;
    }
}

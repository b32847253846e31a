package dev.vhostappliance.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.vhostappliance.device.VhostDeviceProvider;

/** {@code --print-capabilities}: a {@code VHostUserBackendCapabilities} object as QEMU's backends print it. */
public final class Capabilities {
    private Capabilities() {
    }

    public static String json(VhostDeviceProvider provider) {
        ObjectMapper mapper = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode root = mapper.createObjectNode();
        root.put("type", provider.type());
        ArrayNode features = root.putArray("features");
        provider.capabilities().forEach(features::add);
        try {
            return mapper.writeValueAsString(root);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}

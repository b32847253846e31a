package dev.vhostappliance.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/** One QMP command: its arguments (never null; empty when none were given) to its return value. */
@FunctionalInterface
public interface QmpCommand {
    JsonNode run(ObjectNode arguments) throws QmpException;
}

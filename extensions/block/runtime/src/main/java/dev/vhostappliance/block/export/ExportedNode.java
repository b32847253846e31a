package dev.vhostappliance.block.export;

import dev.vhostappliance.block.node.BlockNode;

/** What every export is: an id and the node it serves, by name. The kinds add how they serve it. */
public abstract class ExportedNode implements BlockExport {
    private final String id;
    private final String nodeName;
    private final BlockNode node;

    protected ExportedNode(String id, String nodeName, BlockNode node) {
        this.id = id;
        this.nodeName = nodeName;
        this.node = node;
    }

    @Override
    public final String id() {
        return id;
    }

    @Override
    public final String nodeName() {
        return nodeName;
    }

    @Override
    public final BlockNode node() {
        return node;
    }
}

package dev.vhostappliance.virtqueue;

import dev.vhostappliance.memory.GuestMemory;

/**
 * What a device sees of a virtqueue: take requests, return them. Called on the queue's worker thread.
 * {@link #pop} never throws on guest input: a malformed ring makes it return {@link #BROKEN}, after which
 * the queue stays broken (the frontend is told through the vring error fd) until it is reset.
 */
public interface Virtqueue {
    int POPPED = 1;
    int EMPTY = 0;
    int BROKEN = -1;

    /** Fills {@code chain} with the next available request; {@link #POPPED}, {@link #EMPTY} or {@link #BROKEN}. */
    int pop(DescriptorChain chain);

    /** Returns request {@code head} to the driver with {@code writtenBytes} written into its writable buffers. */
    void push(int head, int writtenBytes);

    /** Interrupts the driver if it asked for it (EVENT_IDX / NO_INTERRUPT rules); call after a batch of pushes. */
    void notifyDriver();

    /** Requests available and not popped yet (at most the queue size); 0 when broken. */
    int availableCount();

    /**
     * The guest memory table, for devices whose requests carry guest addresses of their own (virtio-gpu
     * backing pages). Valid during {@link dev.vhostappliance.device.VirtioDevice#handleQueue}: the core pauses the
     * worker while the table changes. Addresses must be checked with {@link GuestMemory#findGuestRange}.
     */
    GuestMemory memory();

    /** Queue size (number of descriptors). */
    int size();

    /** chain if it fits this queue's worst case, else a new one that does (devices keep one per queue). */
    default DescriptorChain reuse(DescriptorChain chain) {
        return chain != null && chain.capacity() >= newChainCapacity() ? chain : newChain();
    }

    /** A chain sized for this queue's worst case, for the device to reuse. */
    default DescriptorChain newChain() {
        return new DescriptorChain(newChainCapacity());
    }

    /** The buffer capacity a chain needs for this queue's worst case. */
    int newChainCapacity();
}

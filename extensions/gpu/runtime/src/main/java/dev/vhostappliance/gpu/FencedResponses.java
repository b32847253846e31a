package dev.vhostappliance.gpu;

/**
 * 3D: the control queue's fenced commands whose fence has not retired, oldest first. Their responses are in
 * the guest's buffers already; the used entries wait (a guest that waits on a fence sees it when the
 * response arrives, as from QEMU's virtio-gpu-gl). At most one entry per descriptor head, so the queue's
 * size bounds it. The control queue's worker thread only.
 */
final class FencedResponses {
    private final int[] heads;
    private final int[] lengths;
    private final int[] fences;
    private int first;
    private int count;

    FencedResponses(int capacity) {
        heads = new int[capacity];
        lengths = new int[capacity];
        fences = new int[capacity];
    }

    boolean isEmpty() {
        return count == 0;
    }

    /** False if full (the caller answers at once then: there cannot be more heads in flight than this). */
    boolean add(int head, int length, int fence) {
        if (count == heads.length) {
            return false;
        }
        int i = (first + count) % heads.length;
        heads[i] = head;
        lengths[i] = length;
        fences[i] = fence;
        count++;
        return true;
    }

    /** True if the oldest entry's fence is at or before retired (ids wrap: compared by difference). */
    boolean oldestRetired(int retired) {
        return count > 0 && retired - fences[first] >= 0;
    }

    int oldestHead() {
        return heads[first];
    }

    int oldestLength() {
        return lengths[first];
    }

    void removeOldest() {
        first = (first + 1) % heads.length;
        count--;
    }

    void clear() {
        first = 0;
        count = 0;
    }
}

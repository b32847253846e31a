package dev.vhostappliance.block.io;

/** A FIFO of finished requests, linked through the requests themselves (no allocation). */
final class ReadyList {
    private IoRequest head;
    private IoRequest tail;

    void add(IoRequest r, int result) {
        r.result = result;
        r.next = null;
        if (tail == null) {
            head = r;
        } else {
            tail.next = r;
        }
        tail = r;
    }

    boolean isEmpty() {
        return head == null;
    }

    /** Takes the oldest request, or null. */
    IoRequest poll() {
        IoRequest r = head;
        if (r != null) {
            head = r.next;
            if (head == null) {
                tail = null;
            }
            r.next = null;
        }
        return r;
    }
}

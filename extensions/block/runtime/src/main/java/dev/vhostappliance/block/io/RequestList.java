package dev.vhostappliance.block.io;

/** A FIFO of requests linked through the requests themselves (their {@code next} field): no allocation. */
final class RequestList {
    private IoRequest head;
    private IoRequest tail;

    void add(IoRequest r) {
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

    IoRequest first() {
        return head;
    }

    IoRequest last() {
        return tail;
    }

    void clear() {
        head = null;
        tail = null;
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

package dev.vhostappliance.input;

/**
 * Input events waiting for eventq buffers, kept as whole batches: a batch is the events up to and including a
 * SYN_REPORT, and only closed batches are offered for delivery. Bounded: when full, the oldest closed batches
 * are dropped (whole, and counted); a single batch that alone overflows the backlog is dropped too. Fixed
 * arrays, nothing allocated per event. Not thread-safe: the device guards it.
 */
final class EventBacklog {
    private final long[] events; // type << 48 | code << 32 | value
    private final long[] batchEnds; // absolute event positions, one per closed batch
    private final int mask;
    private long head; // next event to deliver
    private long tail; // after the last event appended
    private long closedEnd; // after the last closed batch
    private long batchHead; // next batch end to reach
    private long batchTail;
    private boolean discarding; // an oversized batch is being dropped until its SYN_REPORT
    private long droppedBatches;
    private long droppedEvents;

    /** capacity: a power of two, the number of events held at most. */
    EventBacklog(int capacity) {
        if (Integer.bitCount(capacity) != 1) {
            throw new IllegalArgumentException("capacity must be a power of two");
        }
        events = new long[capacity];
        batchEnds = new long[capacity];
        mask = capacity - 1;
    }

    static long pack(int type, int code, int value) {
        return ((long) (type & 0xffff) << 48) | ((long) (code & 0xffff) << 32) | (value & 0xffffffffL);
    }

    static int type(long e) {
        return (int) (e >>> 48);
    }

    static int code(long e) {
        return (int) (e >>> 32) & 0xffff;
    }

    static int value(long e) {
        return (int) e;
    }

    /** Appends one event; a SYN_REPORT closes the batch. */
    void append(int type, int code, int value) {
        boolean report = type == VirtioInput.EV_SYN && code == VirtioInput.SYN_REPORT;
        if (discarding) {
            droppedEvents++;
            if (report) {
                discarding = false;
            }
            return;
        }
        if (tail - head == events.length) {
            if (closedEnd > head) {
                dropOldestBatch();
            } else {
                // The open batch alone fills the backlog: it can never be delivered whole.
                droppedEvents += tail - head + 1;
                droppedBatches++;
                tail = head;
                discarding = !report;
                return;
            }
        }
        events[(int) (tail & mask)] = pack(type, code, value);
        tail++;
        if (report) {
            closedEnd = tail;
            batchEnds[(int) (batchTail & mask)] = tail;
            batchTail++;
        }
    }

    private void dropOldestBatch() {
        long end = batchEnds[(int) (batchHead & mask)];
        droppedEvents += end - head;
        droppedBatches++;
        head = end;
        batchHead++;
    }

    /** Events left in the oldest closed batch; 0 when no batch is closed. */
    int headBatchRemaining() {
        return batchHead == batchTail ? 0 : (int) (batchEnds[(int) (batchHead & mask)] - head);
    }

    /** The next event to deliver (call only when {@link #headBatchRemaining()} is positive). */
    long peek() {
        return events[(int) (head & mask)];
    }

    /** The next event was delivered. */
    void consume() {
        head++;
        if (batchHead != batchTail && head == batchEnds[(int) (batchHead & mask)]) {
            batchHead++;
        }
    }

    /** Everything pending goes (the driver reset, or events arrived with no driver to take them). */
    void clear() {
        long pending = tail - head;
        if (pending > 0) {
            droppedEvents += pending;
            droppedBatches += batchTail - batchHead + (tail > closedEnd ? 1 : 0);
        }
        head = tail = closedEnd = 0;
        batchHead = batchTail = 0;
        discarding = false;
    }

    /** Events held, closed batches and the open one. */
    int size() {
        return (int) (tail - head);
    }

    long droppedBatches() {
        return droppedBatches;
    }

    long droppedEvents() {
        return droppedEvents;
    }
}

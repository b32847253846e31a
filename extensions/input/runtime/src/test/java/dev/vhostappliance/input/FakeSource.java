package dev.vhostappliance.input;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/** An input source driven by the test: events go in through {@link #emit}, status events are recorded. */
final class FakeSource implements InputSource {
    private final InputIdentity identity;
    volatile EventSink sink;
    final List<int[]> status = new CopyOnWriteArrayList<>();
    volatile boolean closed;

    FakeSource(InputIdentity identity) {
        this.identity = identity;
    }

    @Override
    public InputIdentity identity() {
        return identity;
    }

    @Override
    public void start(EventSink s) {
        this.sink = s;
    }

    void emit(int type, int code, int value) {
        sink.event(type, code, value);
    }

    void syn() {
        emit(VirtioInput.EV_SYN, VirtioInput.SYN_REPORT, 0);
    }

    @Override
    public void statusEvent(int type, int code, int value) {
        status.add(new int[] {type, code, value});
    }

    @Override
    public void close() {
        closed = true;
    }
}

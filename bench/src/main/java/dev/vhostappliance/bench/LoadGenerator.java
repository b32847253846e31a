package dev.vhostappliance.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * A fixed-queue-depth load over libblkio: per virtqueue a thread keeps qd requests in flight, measures
 * each request's latency and counts completions after a warm-up. Like fio's libblkio engine, minus fio.
 */
final class LoadGenerator {

    record Workload(String name, boolean write, boolean random, int blockSize, int queueDepth) {
    }

    record Result(double iops, double mbPerSecond, double p50Micros, double p99Micros, long errors) {
    }

    private LoadGenerator() {
    }

    static Result run(Libblkio lib, String socket, int queues, Workload w, double warmupSeconds, double seconds)
            throws Throwable {
        long perQueue = (long) w.blockSize() * w.queueDepth();
        try (Libblkio.Device dev = lib.new Device(socket, queues, perQueue * queues)) {
            Worker[] workers = new Worker[queues];
            Thread[] threads = new Thread[queues];
            long t0 = System.nanoTime();
            long measureFrom = t0 + (long) (warmupSeconds * 1e9);
            long until = measureFrom + (long) (seconds * 1e9);
            for (int q = 0; q < queues; q++) {
                workers[q] = new Worker(lib, dev.queue(q), dev.buffers.asSlice(q * perQueue, perQueue), dev.capacity,
                        w, q, queues, measureFrom, until);
                Worker worker = workers[q];
                threads[q] = Thread.ofPlatform().start(worker);
            }
            long done = 0;
            long errors = 0;
            int samples = 0;
            for (int q = 0; q < queues; q++) {
                threads[q].join();
                if (workers[q].failure != null) {
                    throw workers[q].failure;
                }
                done += workers[q].completed;
                errors += workers[q].errors;
                samples += workers[q].samples;
            }
            long[] all = new long[samples];
            int k = 0;
            for (Worker wk : workers) {
                System.arraycopy(wk.latencies, 0, all, k, wk.samples);
                k += wk.samples;
            }
            Arrays.sort(all);
            double p50 = all.length == 0 ? 0 : all[all.length / 2] / 1e3;
            double p99 = all.length == 0 ? 0 : all[(int) Math.min(all.length - 1, (long) (all.length * 0.99))] / 1e3;
            double iops = done / seconds;
            return new Result(iops, iops * w.blockSize() / 1e6, p50, p99, errors);
        }
    }

    private static final class Worker implements Runnable {
        private static final int MAX_SAMPLES = 4_000_000;
        private final Libblkio lib;
        private final MemorySegment queue;
        private final MemorySegment buffers;
        private final long capacity;
        private final Workload w;
        private final long measureFrom;
        private final long until;
        private final long[] started;
        private final long[] nextOffset;
        private final SplittableRandom random;
        final long[] latencies = new long[MAX_SAMPLES];
        int samples;
        long completed;
        long errors;
        Throwable failure;

        Worker(Libblkio lib, MemorySegment queue, MemorySegment buffers, long capacity, Workload w, int index, int queues,
                long measureFrom, long until) {
            this.lib = lib;
            this.queue = queue;
            this.buffers = buffers;
            this.capacity = capacity;
            this.w = w;
            this.measureFrom = measureFrom;
            this.until = until;
            this.started = new long[w.queueDepth()];
            this.nextOffset = new long[w.queueDepth()];
            this.random = new SplittableRandom(42 + index);
            long region = capacity / queues / w.queueDepth() / w.blockSize() * w.blockSize();
            for (int s = 0; s < w.queueDepth(); s++) {
                nextOffset[s] = (long) index * (capacity / queues) + s * region;
            }
        }

        private long offset(int slot) {
            if (w.random()) {
                return random.nextLong(capacity / w.blockSize()) * w.blockSize();
            }
            long o = nextOffset[slot];
            nextOffset[slot] = o + w.blockSize() >= capacity ? 0 : o + w.blockSize();
            return o;
        }

        private void submit(int slot) throws Throwable {
            MemorySegment buf = buffers.asSlice((long) slot * w.blockSize(), w.blockSize());
            started[slot] = System.nanoTime();
            if (w.write()) {
                lib.submitWrite(queue, offset(slot), buf, w.blockSize(), slot);
            } else {
                lib.submitRead(queue, offset(slot), buf, w.blockSize(), slot);
            }
        }

        @Override
        public void run() {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment completions = arena.allocate(Libblkio.COMPLETION_SIZE * w.queueDepth(), 8);
                for (int s = 0; s < w.queueDepth(); s++) {
                    submit(s);
                }
                int inFlight = w.queueDepth();
                while (inFlight > 0) {
                    int n = lib.doIo(queue, completions, 1, w.queueDepth());
                    long now = System.nanoTime();
                    for (int i = 0; i < n; i++) {
                        int slot = (int) Libblkio.completionUserData(completions, i);
                        if (Libblkio.completionRet(completions, i) != 0) {
                            errors++;
                        }
                        if (now >= measureFrom && now < until) {
                            completed++;
                            if (samples < MAX_SAMPLES) {
                                latencies[samples++] = now - started[slot];
                            }
                        }
                        if (now < until) {
                            submit(slot);
                        } else {
                            inFlight--;
                        }
                    }
                }
            } catch (Throwable t) {
                failure = t;
            }
        }
    }
}

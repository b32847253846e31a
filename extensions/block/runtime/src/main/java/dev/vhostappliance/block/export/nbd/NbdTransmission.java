package dev.vhostappliance.block.export.nbd;

import static dev.vhostappliance.block.export.nbd.NbdHandshake.U16;
import static dev.vhostappliance.block.export.nbd.NbdHandshake.U32;
import static dev.vhostappliance.block.export.nbd.NbdHandshake.U64;

import dev.vhostappliance.block.io.IoCompletionSink;
import dev.vhostappliance.block.io.IoEngine;
import dev.vhostappliance.block.io.IoRequest;
import dev.vhostappliance.block.node.BlockNode;
import dev.vhostappliance.block.node.BlockStatus;
import dev.vhostappliance.libc.NativeCallException;
import dev.vhostappliance.server.Poll;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The transmission phase of one connection: requests are read as they arrive, parsed into
 * {@link NbdRequest}s, started on the connection's {@link IoEngine} (the same engines the vhost-user export
 * runs), and answered in whatever order they finish; the answers of one round leave in one sendmsg. Requests
 * are checked before any I/O: a bad one gets an NBD error, a broken frame (bad magic, a write longer than the
 * announced maximum) ends this connection only. Memory is bounded: at most {@link #MAX_IN_FLIGHT} requests
 * and {@link #BUFFER_BUDGET} bytes of buffers; beyond that the connection stops reading until answers leave.
 */
final class NbdTransmission implements IoCompletionSink {
    static final int MAX_IN_FLIGHT = 64;
    static final long BUFFER_BUDGET = 2L * Nbd.MAX_PAYLOAD;
    private static final int STAGING = 64 * 1024;
    private static final int MSGHDR = 56;
    /** How long a closing connection waits for I/O the kernel still has before it gives up its buffers. */
    private static final long DRAIN_NANOS = 30_000_000_000L;

    private final NbdSocket socket;
    private final NbdSession session;
    private final BlockNode node;
    private final boolean writable;
    private final IoEngine engine;
    private final NbdCounters counters;
    /** Confined to the connection's thread, which makes and ends the transmission (see NbdRequest#resizeBuffer). */
    private final Arena arena = Arena.ofConfined();
    private final MemorySegment in = arena.allocate(STAGING, 8);
    private long inStart;
    private long inEnd;
    /** The write whose payload is arriving, and how much of it has. */
    private NbdRequest filling;
    private long filled;
    private final NbdRequest[] all = new NbdRequest[MAX_IN_FLIGHT];
    private final NbdRequest[] free = new NbdRequest[MAX_IN_FLIGHT];
    private int freeTop;
    private int created;
    private long bufferBytes;
    /** Requests answered in the pending batch, released once it is sent. */
    private final NbdRequest[] answered = new NbdRequest[MAX_IN_FLIGHT];
    private int answeredCount;
    private final MemorySegment msghdr = arena.allocate(MSGHDR, 8);
    private final MemorySegment replyIov = arena.allocate(16L * 2 * MAX_IN_FLIGHT, 8);
    private int replyIovCount;
    private long replyBytes;
    private final BlockStatus status = new BlockStatus();
    private final Poll poll = new Poll(3);
    private boolean eof;
    private boolean disconnect;
    private boolean stalled;
    private boolean queuedWhileReaping;

    NbdTransmission(NbdSocket socket, NbdSession session, IoEngine engine, NbdCounters counters) {
        this.socket = socket;
        this.session = session;
        this.node = session.export().node();
        this.writable = session.export().writable();
        this.engine = engine;
        this.counters = counters;
    }

    /** Serves requests until the client disconnects or the connection is stopped. */
    void run() throws ConnectionClosedException {
        try {
            while (true) {
                checkKilled();
                boolean reading = !eof && !disconnect && !stalled;
                // Requests already in the staging buffer are not news to poll: parse them first.
                boolean staged = reading && (filling == null && inEnd - inStart >= Nbd.REQUEST_BYTES || socket.buffered());
                if (!engine.hasCompletions() && !staged) {
                    if (!reading && inFlight() == 0) {
                        break;
                    }
                    await(reading);
                    checkKilled(); // a request that arrives with the kill is not served
                }
                if (reading) {
                    receive();
                }
                engine.submit();
                reap();
                sendReplies();
                if ((eof || disconnect) && inFlight() == 0) {
                    break;
                }
            }
        } finally {
            drain();
        }
    }

    /** Removed hard, or the server stops: the connection ends now (what is in flight is drained, unanswered). */
    private void checkKilled() throws ConnectionClosedException {
        if (socket.kill().isSignalled()) {
            throw new ConnectionClosedException("the server stops this connection");
        }
    }

    private int inFlight() {
        return created - freeTop;
    }

    private void await(boolean reading) throws ConnectionClosedException {
        poll.clear();
        if (reading) {
            poll.add(socket.fd());
        }
        poll.add(socket.kill().fd());
        if (engine.completionFd() >= 0) {
            poll.add(engine.completionFd());
        }
        try {
            poll.await(-1);
        } catch (NativeCallException e) {
            throw new ConnectionClosedException(e.getMessage());
        }
    }

    private void reap() {
        do {
            queuedWhileReaping = false;
            engine.reap(this);
            if (queuedWhileReaping) {
                engine.submit(); // the flush after a FUA write
            }
        } while (queuedWhileReaping && engine.hasCompletions());
    }

    // ------------------------------------------------------------------ reading and parsing

    /** Reads what has arrived and starts every whole request in it, until the socket is empty or we stall. */
    private void receive() throws ConnectionClosedException {
        while (!disconnect && !stalled) {
            if (filling != null) {
                long n = socket.readSome(filling.bufferAddress() + filled, filling.count - filled);
                if (n < 0) { // the client left mid-payload: that write is dropped, unacknowledged
                    release(filling);
                    filling = null;
                }
                if (n <= 0) {
                    eof = n < 0; // what is in flight still finishes (acknowledged or not, the writes are made)
                    return;
                }
                filled += n;
                if (filled == filling.count) {
                    NbdRequest r = filling;
                    filling = null;
                    start(r);
                }
                continue;
            }
            while (inEnd - inStart >= Nbd.REQUEST_BYTES && filling == null && !stalled && !disconnect) {
                parseOne();
            }
            if (filling != null || stalled || disconnect) {
                continue;
            }
            if (inStart > 0) { // keep a partial header at the front of the staging buffer
                MemorySegment.copy(in, inStart, in, 0, inEnd - inStart);
                inEnd -= inStart;
                inStart = 0;
            }
            long n = socket.readSome(in.address() + inEnd, STAGING - inEnd);
            if (n <= 0) {
                eof = n < 0;
                return;
            }
            inEnd += n;
        }
    }

    /** Parses the header at inStart and starts its request, or stalls if no slot and buffer are free. */
    private void parseOne() throws ConnectionClosedException {
        if (in.get(U32, inStart) != Nbd.REQUEST_MAGIC) {
            throw new ConnectionClosedException("bad request magic 0x" + Integer.toHexString(in.get(U32, inStart)));
        }
        int type = Short.toUnsignedInt(in.get(U16, inStart + 6));
        long count = Integer.toUnsignedLong(in.get(U32, inStart + 24));
        if (type == Nbd.CMD_WRITE && count > Nbd.MAX_PAYLOAD) {
            throw new ConnectionClosedException("a write of " + count + " bytes, more than the " + Nbd.MAX_PAYLOAD + " announced");
        }
        long need = type == Nbd.CMD_WRITE || (type == Nbd.CMD_READ && count <= Nbd.MAX_PAYLOAD) ? count : 0;
        NbdRequest r = take(need);
        if (r == null) {
            stalled = true;
            return;
        }
        r.parse(in, inStart);
        inStart += Nbd.REQUEST_BYTES;
        if (r.type == Nbd.CMD_DISC) {
            disconnect = true; // what is in flight is answered, then the connection closes
            release(r);
            return;
        }
        if (r.type != Nbd.CMD_WRITE) {
            start(r);
            return;
        }
        long have = Math.min(inEnd - inStart, r.count);
        MemorySegment.copy(in, inStart, r.buffer(), 0, have);
        inStart += have;
        if (have == r.count) {
            start(r);
        } else {
            filling = r;
            filled = have;
        }
    }

    // ------------------------------------------------------------------ requests

    private void start(NbdRequest r) {
        long size = node.size();
        switch (r.type) {
            case Nbd.CMD_READ -> {
                if (!flagsIn(r, Nbd.CMD_FLAG_FUA | Nbd.CMD_FLAG_DF) || r.count > Nbd.MAX_PAYLOAD || !r.within(size)
                        || !aligned(r)) {
                    answer(r, Nbd.EINVAL);
                } else if (r.count == 0) {
                    answer(r, 0);
                } else {
                    counters.reads.increment();
                    counters.readBytes.add(r.count);
                    node.read(engine, r, r.iovFor(r.count), 1, r.from, r.count);
                }
            }
            case Nbd.CMD_WRITE -> {
                if (!writable) {
                    answer(r, Nbd.EPERM);
                } else if (!flagsIn(r, Nbd.CMD_FLAG_FUA) || !aligned(r)) {
                    answer(r, Nbd.EINVAL);
                } else if (!r.within(size)) {
                    answer(r, Nbd.ENOSPC);
                } else if (r.count == 0) {
                    answer(r, 0);
                } else {
                    counters.writes.increment();
                    counters.writeBytes.add(r.count);
                    node.write(engine, r, r.iovFor(r.count), 1, r.from, r.count);
                }
            }
            case Nbd.CMD_FLUSH -> {
                if (!flagsIn(r, Nbd.CMD_FLAG_FUA)) {
                    answer(r, Nbd.EINVAL);
                } else if (!writable) {
                    answer(r, 0);
                } else {
                    counters.flushes.increment();
                    r.stage = NbdRequest.STAGE_FLUSH;
                    node.flush(engine, r);
                }
            }
            case Nbd.CMD_TRIM -> {
                if (!writable) {
                    answer(r, Nbd.EPERM);
                } else if (!flagsIn(r, Nbd.CMD_FLAG_FUA) || !r.within(size) || !aligned(r)) {
                    answer(r, Nbd.EINVAL);
                } else if (r.count == 0) {
                    answer(r, 0);
                } else {
                    counters.trims.increment();
                    node.discard(engine, r, r.from, r.count);
                }
            }
            case Nbd.CMD_WRITE_ZEROES -> {
                boolean unmap = (r.flags & Nbd.CMD_FLAG_NO_HOLE) == 0;
                if (!writable) {
                    answer(r, Nbd.EPERM);
                } else if (!flagsIn(r, Nbd.CMD_FLAG_FUA | Nbd.CMD_FLAG_NO_HOLE | Nbd.CMD_FLAG_FAST_ZERO) || !aligned(r)) {
                    answer(r, Nbd.EINVAL);
                } else if (!r.within(size)) {
                    answer(r, Nbd.ENOSPC);
                } else if ((r.flags & Nbd.CMD_FLAG_FAST_ZERO) != 0 && !node.zeroesFast(unmap)) {
                    answer(r, Nbd.ENOTSUP);
                } else if (r.count == 0) {
                    answer(r, 0);
                } else {
                    counters.zeroes.increment();
                    node.writeZeroes(engine, r, r.from, r.count, unmap);
                }
            }
            // Advisory: the data comes from the page cache or the node on the next read anyway.
            case Nbd.CMD_CACHE -> answer(r, flagsIn(r, 0) && r.within(size) ? 0 : Nbd.EINVAL);
            case Nbd.CMD_BLOCK_STATUS -> blockStatus(r, size);
            default -> answer(r, Nbd.EINVAL);
        }
    }

    private static boolean flagsIn(NbdRequest r, int allowed) {
        return (r.flags & ~allowed) == 0;
    }

    /** Offset and length are multiples of the minimum block we announced (O_DIRECT files). */
    private boolean aligned(NbdRequest r) {
        int block = session.export().minimumBlock();
        return block == 1 || (r.from % block == 0 && r.count % block == 0);
    }

    @Override
    public void completed(IoRequest request) {
        NbdRequest r = (NbdRequest) request;
        int error = Nbd.error(r.result());
        if (error == 0 && r.stage == NbdRequest.STAGE_IO && (r.flags & Nbd.CMD_FLAG_FUA) != 0 && writable
                && r.type != Nbd.CMD_READ) {
            r.stage = NbdRequest.STAGE_FLUSH; // FUA: answered once the data is durable
            node.flush(engine, r);
            queuedWhileReaping = true;
            return;
        }
        if (error != 0) {
            counters.errors.increment();
        }
        answer(r, error);
    }

    // ------------------------------------------------------------------ replies

    /** Answers r (error 0: success; a read then carries its data) in the pending batch. */
    private void answer(NbdRequest r, int error) {
        if (r.type == Nbd.CMD_READ && session.structured()) {
            if (error != 0) {
                errorChunk(r, error);
            } else if (r.count == 0) {
                chunk(r, Nbd.REPLY_FLAG_DONE, Nbd.REPLY_TYPE_NONE, 0);
                addIov(r.header.address(), Nbd.CHUNK_HEADER_BYTES);
            } else {
                chunk(r, Nbd.REPLY_FLAG_DONE, Nbd.REPLY_TYPE_OFFSET_DATA, 8 + r.count);
                r.header.set(U64, Nbd.CHUNK_HEADER_BYTES, r.from);
                addIov(r.header.address(), Nbd.CHUNK_HEADER_BYTES + 8);
                addIov(r.bufferAddress(), r.count);
            }
        } else if (r.type == Nbd.CMD_BLOCK_STATUS && session.structured() && error != 0) {
            errorChunk(r, error);
        } else {
            r.header.set(U32, 0, Nbd.SIMPLE_REPLY_MAGIC);
            r.header.set(U32, 4, error);
            r.header.set(U64, 8, r.handle);
            addIov(r.header.address(), Nbd.SIMPLE_REPLY_BYTES);
            if (error == 0 && r.type == Nbd.CMD_READ && r.count > 0) {
                addIov(r.bufferAddress(), r.count);
            }
        }
        answered[answeredCount++] = r;
    }

    private void chunk(NbdRequest r, int flags, int type, long length) {
        writeChunkHeader(r.header, 0, r.handle, flags, type, length);
    }

    private static void writeChunkHeader(MemorySegment to, long at, long handle, int flags, int type, long length) {
        to.set(U32, at, Nbd.STRUCTURED_REPLY_MAGIC);
        to.set(U16, at + 4, (short) flags);
        to.set(U16, at + 6, (short) type);
        to.set(U64, at + 8, handle);
        to.set(U32, at + 16, (int) length);
    }

    private void errorChunk(NbdRequest r, int error) {
        chunk(r, Nbd.REPLY_FLAG_DONE, Nbd.REPLY_TYPE_ERROR, 6);
        r.header.set(U32, Nbd.CHUNK_HEADER_BYTES, error);
        r.header.set(U16, Nbd.CHUNK_HEADER_BYTES + 4, (short) 0);
        addIov(r.header.address(), Nbd.CHUNK_HEADER_BYTES + 6);
    }

    /**
     * BLOCK_STATUS: one chunk per selected context, each a run of extents from the node's status (merged
     * where they agree), at most MAX_EXTENTS of them, one with REQ_ONE, never past the request.
     */
    private void blockStatus(NbdRequest r, long size) {
        if (!session.structured() || !session.anyContext() || !flagsIn(r, Nbd.CMD_FLAG_REQ_ONE) || r.count == 0
                || !r.within(size)) {
            answer(r, Nbd.EINVAL);
            return;
        }
        counters.blockStatus.increment();
        boolean one = (r.flags & Nbd.CMD_FLAG_REQ_ONE) != 0;
        MemorySegment out = r.status();
        long at = 0;
        int chunks = (session.baseAllocationId() >= 0 ? 1 : 0) + (session.allocationDepthId() >= 0 ? 1 : 0);
        if (session.baseAllocationId() >= 0) {
            at = extents(r, out, at, session.baseAllocationId(), false, one, --chunks == 0);
        }
        if (session.allocationDepthId() >= 0) {
            at = extents(r, out, at, session.allocationDepthId(), true, one, --chunks == 0);
        }
        addIov(out.address(), at);
        answered[answeredCount++] = r;
    }

    private long extents(NbdRequest r, MemorySegment out, long at, int contextId, boolean depth, boolean one, boolean last) {
        long chunkStart = at;
        long d = at + Nbd.CHUNK_HEADER_BYTES + 4;
        long pos = r.from;
        long end = r.from + r.count;
        int n = 0;
        int previous = -1;
        while (pos < end) {
            long run = node.blockStatus(pos, end - pos, status);
            run = Math.max(1, Math.min(run, end - pos));
            int flags = depth ? status.depth
                    : (status.hole ? Nbd.STATE_HOLE : 0) | (status.zero ? Nbd.STATE_ZERO : 0);
            if (flags == previous) { // merged runs stay within the request, whose length is a u32
                out.set(U32, d - 8, (int) (Integer.toUnsignedLong(out.get(U32, d - 8)) + run));
            } else {
                if (n == (one ? 1 : NbdRequest.MAX_EXTENTS)) {
                    break;
                }
                out.set(U32, d, (int) run);
                out.set(U32, d + 4, flags);
                d += 8;
                n++;
                previous = flags;
            }
            pos += run;
        }
        writeChunkHeader(out, chunkStart, r.handle, last ? Nbd.REPLY_FLAG_DONE : 0, Nbd.REPLY_TYPE_BLOCK_STATUS,
                d - chunkStart - Nbd.CHUNK_HEADER_BYTES);
        out.set(U32, chunkStart + Nbd.CHUNK_HEADER_BYTES, contextId);
        return d;
    }

    private void addIov(long address, long length) {
        long at = 16L * replyIovCount++;
        replyIov.set(ValueLayout.JAVA_LONG, at, address);
        replyIov.set(ValueLayout.JAVA_LONG, at + 8, length);
        replyBytes += length;
    }

    /** Sends the batch of answers, then gives their slots back. */
    private void sendReplies() throws ConnectionClosedException {
        if (answeredCount == 0) {
            return;
        }
        try {
            if (!eof) {
                socket.sendAll(msghdr, replyIov, replyIovCount, replyBytes);
            }
        } finally {
            for (int i = 0; i < answeredCount; i++) {
                release(answered[i]);
                answered[i] = null;
            }
            answeredCount = 0;
            replyIovCount = 0;
            replyBytes = 0;
        }
    }

    // ------------------------------------------------------------------ slots and buffers

    /** A free slot with a buffer of at least need bytes, or null if none can be had now. */
    private NbdRequest take(long need) {
        for (int i = freeTop - 1; i >= 0; i--) {
            if (free[i].capacity() >= need) {
                NbdRequest r = free[i];
                free[i] = free[--freeTop];
                free[freeTop] = null;
                return r;
            }
        }
        NbdRequest r;
        if (freeTop > 0) {
            r = free[--freeTop];
            free[freeTop] = null;
        } else if (created < MAX_IN_FLIGHT) {
            r = new NbdRequest(); // a slot's first use; reused from then on
            all[created++] = r;
        } else {
            return null;
        }
        if (r.capacity() >= need) {
            return r;
        }
        long bytes = Math.max(4096, Long.highestOneBit(need - 1) << 1);
        if (bufferBytes - r.capacity() + bytes > BUFFER_BUDGET) {
            for (int i = 0; i < freeTop; i++) {
                bufferBytes += free[i].resizeBuffer(0); // idle buffers go first
            }
            if (bufferBytes - r.capacity() + bytes > BUFFER_BUDGET) {
                free[freeTop++] = r;
                return null;
            }
        }
        bufferBytes += r.resizeBuffer(bytes);
        return r;
    }

    private void release(NbdRequest r) {
        free[freeTop++] = r;
        stalled = false;
    }

    /** Waits for I/O still in the kernel (its buffers are ours), then frees everything. */
    private void drain() {
        try {
            engine.awaitIdle(r -> { }, poll, System.nanoTime() + DRAIN_NANOS);
        } catch (NativeCallException e) {
            // what is still in flight stays so: checked below
        }
        if (engine.inFlight() > 0) {
            return; // the kernel may still write into the buffers: leave them allocated
        }
        for (int i = 0; i < created; i++) {
            all[i].resizeBuffer(0);
        }
        arena.close();
    }
}

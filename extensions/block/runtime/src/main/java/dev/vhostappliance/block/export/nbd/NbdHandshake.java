package dev.vhostappliance.block.export.nbd;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.function.Function;

/**
 * The fixed newstyle handshake, server side: the greeting, then the client's options one at a time until it
 * chooses an export (GO or EXPORT_NAME) or leaves. Every length the client sends is checked against what it
 * sent; a malformed option gets NBD_REP_ERR_INVALID and the haggling goes on, a broken frame (bad magic,
 * unknown client flags) ends the connection. The whole handshake has a deadline, so a client that connects
 * and says nothing does not hold a connection slot (QEMU's handshake-max-seconds, 10 s).
 */
final class NbdHandshake {
    static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    /** Option data we read; longer options are skipped and answered NBD_REP_ERR_TOO_BIG. */
    static final int MAX_OPTION = 64 * 1024;
    private static final int OUT_BYTES = 16 + 4 + Nbd.MAX_STRING + 64;

    private NbdSocket socket;
    /** The server's TLS credentials (FORCEDTLS: nothing but STARTTLS before TLS), or null. */
    private final TlsCredentials tls;
    private boolean tlsDone;
    private final Function<String, NbdExport> exports;
    private final java.util.function.Supplier<List<NbdExport>> allExports;
    private final long deadline;
    private final MemorySegment in;
    private final MemorySegment out;
    private boolean structured;
    private boolean noZeroes;
    /** The export the last SET_META_CONTEXT was for, and what it selected. */
    private String contextExport;
    private int baseAllocationId = -1;
    private int allocationDepthId = -1;

    NbdHandshake(NbdSocket socket, TlsCredentials tls, Function<String, NbdExport> exports,
            java.util.function.Supplier<List<NbdExport>> allExports, long deadline, Arena arena) {
        this.socket = socket;
        this.tls = tls;
        this.exports = exports;
        this.allExports = allExports;
        this.deadline = deadline;
        this.in = arena.allocate(MAX_OPTION, 8);
        this.out = arena.allocate(OUT_BYTES, 8);
    }

    /** Runs the handshake; returns the session, or throws when the client leaves or breaks the protocol. */
    NbdSession run() throws ConnectionClosedException {
        out.set(U64, 0, Nbd.NBDMAGIC);
        out.set(U64, 8, Nbd.IHAVEOPT);
        out.set(U16, 16, (short) (Nbd.FLAG_FIXED_NEWSTYLE | Nbd.FLAG_NO_ZEROES));
        socket.writeFully(out, 18);
        socket.readFully(in, 0, 4, deadline);
        int clientFlags = in.get(U32, 0);
        if ((clientFlags & ~(Nbd.FLAG_C_FIXED_NEWSTYLE | Nbd.FLAG_C_NO_ZEROES)) != 0) {
            throw new ConnectionClosedException("unknown client flags 0x" + Integer.toHexString(clientFlags));
        }
        noZeroes = (clientFlags & Nbd.FLAG_C_NO_ZEROES) != 0;
        while (true) {
            socket.readFully(in, 0, 16, deadline);
            if (in.get(U64, 0) != Nbd.IHAVEOPT) {
                throw new ConnectionClosedException("bad option magic 0x" + Long.toHexString(in.get(U64, 0)));
            }
            int option = in.get(U32, 8);
            long length = Integer.toUnsignedLong(in.get(U32, 12));
            if (length > MAX_OPTION) {
                if (option == Nbd.OPT_EXPORT_NAME) {
                    throw new ConnectionClosedException("export name of " + length + " bytes");
                }
                skip(length);
                error(option, Nbd.REP_ERR_TOO_BIG, "option data too long");
                continue;
            }
            socket.readFully(in, 0, length, deadline);
            NbdSession chosen = option(option, (int) length);
            if (chosen != null) {
                return chosen;
            }
        }
    }

    /** One option; returns the session when it ends the handshake. */
    private NbdSession option(int option, int length) throws ConnectionClosedException {
        if (tls != null && !tlsDone && option != Nbd.OPT_STARTTLS && option != Nbd.OPT_ABORT) {
            if (option == Nbd.OPT_EXPORT_NAME) {
                throw new ConnectionClosedException("EXPORT_NAME without TLS on a TLS server");
            }
            error(option, Nbd.REP_ERR_TLS_REQD, "TLS is required on this server: negotiate it with NBD_OPT_STARTTLS");
            return null;
        }
        switch (option) {
            case Nbd.OPT_EXPORT_NAME -> {
                NbdExport e = length <= Nbd.MAX_STRING ? exports.apply(string(0, length)) : null;
                if (e == null) {
                    throw new ConnectionClosedException("no export named as the client asked (EXPORT_NAME)");
                }
                out.set(U64, 0, e.node().size());
                out.set(U16, 8, (short) e.transmissionFlags(structured));
                long n = 10;
                if (!noZeroes) {
                    out.asSlice(10, 124).fill((byte) 0);
                    n += 124;
                }
                socket.writeFully(out, n);
                return session(e, string(0, length));
            }
            case Nbd.OPT_ABORT -> {
                reply(option, Nbd.REP_ACK, 0);
                throw new ConnectionClosedException("the client aborted the handshake");
            }
            case Nbd.OPT_LIST -> {
                if (length != 0) {
                    error(option, Nbd.REP_ERR_INVALID, "NBD_OPT_LIST has no data");
                    return null;
                }
                for (NbdExport e : allExports.get()) {
                    byte[] name = e.name().getBytes(StandardCharsets.UTF_8);
                    out.set(U32, 20, name.length);
                    MemorySegment.copy(name, 0, out, ValueLayout.JAVA_BYTE, 24, name.length);
                    reply(option, Nbd.REP_SERVER, 4 + name.length);
                }
                reply(option, Nbd.REP_ACK, 0);
            }
            case Nbd.OPT_STARTTLS -> startTls(length);
            case Nbd.OPT_INFO, Nbd.OPT_GO -> {
                return infoOrGo(option, length);
            }
            case Nbd.OPT_STRUCTURED_REPLY -> {
                if (length != 0) {
                    error(option, Nbd.REP_ERR_INVALID, "NBD_OPT_STRUCTURED_REPLY has no data");
                } else if (structured) {
                    error(option, Nbd.REP_ERR_INVALID, "structured replies already negotiated");
                } else {
                    structured = true;
                    reply(option, Nbd.REP_ACK, 0);
                }
            }
            case Nbd.OPT_LIST_META_CONTEXT, Nbd.OPT_SET_META_CONTEXT -> metaContext(option, length);
            default -> error(option, Nbd.REP_ERR_UNSUP, "option " + option + " is not supported");
        }
        return null;
    }

    /** STARTTLS: ACK, then the TLS handshake; what was negotiated before is forgotten, as the spec requires. */
    private void startTls(int length) throws ConnectionClosedException {
        if (tls == null) {
            error(Nbd.OPT_STARTTLS, Nbd.REP_ERR_POLICY, "TLS is not configured on this server");
        } else if (tlsDone) {
            error(Nbd.OPT_STARTTLS, Nbd.REP_ERR_INVALID, "TLS already negotiated");
        } else if (length != 0) {
            error(Nbd.OPT_STARTTLS, Nbd.REP_ERR_INVALID, "NBD_OPT_STARTTLS has no data");
        } else {
            reply(Nbd.OPT_STARTTLS, Nbd.REP_ACK, 0);
            TlsNbdSocket t = new TlsNbdSocket(socket, tls.newEngine());
            socket = t; // closed (its buffers freed) by the connection, whatever happens next
            t.handshake(deadline);
            if (!tls.authorized(t.engine())) {
                throw new ConnectionClosedException("the client's certificate is not the one tls-authz allows");
            }
            tlsDone = true;
            structured = false;
            contextExport = null;
            baseAllocationId = -1;
            allocationDepthId = -1;
        }
    }

    /** The transport the handshake ends on (TLS after STARTTLS). */
    NbdSocket socket() {
        return socket;
    }

    /** INFO and GO: u32 name length, name, u16 count, count u16 info requests; the data must add up. */
    private NbdSession infoOrGo(int option, int length) throws ConnectionClosedException {
        if (length < 6) {
            error(option, Nbd.REP_ERR_INVALID, "option data too short");
            return null;
        }
        long nameLength = Integer.toUnsignedLong(in.get(U32, 0));
        if (nameLength > length - 6 || nameLength > Nbd.MAX_STRING) {
            error(option, Nbd.REP_ERR_INVALID, "name length does not fit the option");
            return null;
        }
        int requests = Short.toUnsignedInt(in.get(U16, 4 + nameLength));
        if (length != 4 + nameLength + 2 + 2L * requests) {
            error(option, Nbd.REP_ERR_INVALID, "information requests do not fit the option");
            return null;
        }
        String name = string(4, (int) nameLength);
        NbdExport e = exports.apply(name);
        if (e == null) {
            error(option, Nbd.REP_ERR_UNKNOWN, "export '" + limit(name) + "' not present");
            return null;
        }
        boolean wantName = false;
        boolean wantDescription = false;
        for (int i = 0; i < requests; i++) {
            int type = Short.toUnsignedInt(in.get(U16, 4 + nameLength + 2 + 2L * i));
            wantName |= type == Nbd.INFO_NAME;
            wantDescription |= type == Nbd.INFO_DESCRIPTION;
        }
        out.set(U16, 20, (short) Nbd.INFO_EXPORT);
        out.set(U64, 22, e.node().size());
        out.set(U16, 30, (short) e.transmissionFlags(structured));
        reply(option, Nbd.REP_INFO, 12);
        if (wantName) {
            infoString(option, Nbd.INFO_NAME, e.name());
        }
        if (wantDescription && e.description() != null) {
            infoString(option, Nbd.INFO_DESCRIPTION, e.description());
        }
        // Always sent, as QEMU does: a client that did not ask may ignore it, and our default sizes hold then.
        out.set(U16, 20, (short) Nbd.INFO_BLOCK_SIZE);
        out.set(U32, 22, e.minimumBlock());
        out.set(U32, 26, Math.max(Nbd.PREFERRED_BLOCK, e.minimumBlock()));
        out.set(U32, 30, Nbd.MAX_PAYLOAD);
        reply(option, Nbd.REP_INFO, 14);
        reply(option, Nbd.REP_ACK, 0);
        return option == Nbd.OPT_GO ? session(e, name) : null;
    }

    private NbdSession session(NbdExport e, String name) {
        boolean contexts = structured && name.equals(contextExport);
        return new NbdSession(e, structured, contexts ? baseAllocationId : -1, contexts ? allocationDepthId : -1, socket);
    }

    private void infoString(int option, int type, String value) throws ConnectionClosedException {
        byte[] b = value.getBytes(StandardCharsets.UTF_8);
        int n = Math.min(b.length, Nbd.MAX_STRING);
        out.set(U16, 20, (short) type);
        MemorySegment.copy(b, 0, out, ValueLayout.JAVA_BYTE, 22, n);
        reply(option, Nbd.REP_INFO, 2 + n);
    }

    /**
     * LIST_META_CONTEXT and SET_META_CONTEXT: u32 name length, name, u32 count, then count queries of u32
     * length and string. We offer base:allocation and, where the export enables it, qemu:allocation-depth.
     */
    private void metaContext(int option, int length) throws ConnectionClosedException {
        boolean set = option == Nbd.OPT_SET_META_CONTEXT;
        if (set) {
            contextExport = null;
            baseAllocationId = -1;
            allocationDepthId = -1;
        }
        if (!structured) {
            error(option, Nbd.REP_ERR_INVALID, "negotiate structured replies first");
            return;
        }
        long at = 0;
        if (length < 8) {
            error(option, Nbd.REP_ERR_INVALID, "option data too short");
            return;
        }
        long nameLength = Integer.toUnsignedLong(in.get(U32, at));
        if (nameLength > length - 8 || nameLength > Nbd.MAX_STRING) {
            error(option, Nbd.REP_ERR_INVALID, "name length does not fit the option");
            return;
        }
        String name = string(4, (int) nameLength);
        at = 4 + nameLength;
        long queries = Integer.toUnsignedLong(in.get(U32, at));
        at += 4;
        boolean base = false;
        boolean depth = false;
        for (long q = 0; q < queries; q++) {
            if (at + 4 > length) {
                error(option, Nbd.REP_ERR_INVALID, "queries do not fit the option");
                return;
            }
            long queryLength = Integer.toUnsignedLong(in.get(U32, at));
            if (queryLength > length - at - 4) {
                error(option, Nbd.REP_ERR_INVALID, "queries do not fit the option");
                return;
            }
            String query = string(at + 4, (int) queryLength);
            at += 4 + queryLength;
            base |= query.equals(Nbd.BASE_ALLOCATION) || (!set && query.equals("base:"));
            depth |= query.equals(Nbd.QEMU_ALLOCATION_DEPTH) || (!set && query.equals("qemu:"));
        }
        if (at != length) {
            error(option, Nbd.REP_ERR_INVALID, "option data longer than its queries");
            return;
        }
        NbdExport e = exports.apply(name);
        if (e == null) {
            error(option, Nbd.REP_ERR_UNKNOWN, "export '" + limit(name) + "' not present");
            return;
        }
        if (!set && queries == 0) {
            base = true;
            depth = true;
        }
        depth &= e.allocationDepth();
        if (base) {
            contextReply(option, set ? NbdSession.BASE_ALLOCATION_ID : 0, Nbd.BASE_ALLOCATION);
        }
        if (depth) {
            contextReply(option, set ? NbdSession.ALLOCATION_DEPTH_ID : 0, Nbd.QEMU_ALLOCATION_DEPTH);
        }
        if (set) {
            contextExport = name;
            baseAllocationId = base ? NbdSession.BASE_ALLOCATION_ID : -1;
            allocationDepthId = depth ? NbdSession.ALLOCATION_DEPTH_ID : -1;
        }
        reply(option, Nbd.REP_ACK, 0);
    }

    private void contextReply(int option, int id, String name) throws ConnectionClosedException {
        byte[] b = name.getBytes(StandardCharsets.US_ASCII);
        out.set(U32, 20, id);
        MemorySegment.copy(b, 0, out, ValueLayout.JAVA_BYTE, 24, b.length);
        reply(option, Nbd.REP_META_CONTEXT, 4 + b.length);
    }

    /** An option reply whose data (length bytes) the caller put at offset 20 of out. */
    private void reply(int option, int type, int length) throws ConnectionClosedException {
        out.set(U64, 0, Nbd.REPLY_MAGIC);
        out.set(U32, 8, option);
        out.set(U32, 12, type);
        out.set(U32, 16, length);
        socket.writeFully(out, 20L + length);
    }

    /** An error reply with a message for the client's user. */
    private void error(int option, int type, String message) throws ConnectionClosedException {
        byte[] b = message.getBytes(StandardCharsets.UTF_8);
        int n = Math.min(b.length, Nbd.MAX_STRING);
        MemorySegment.copy(b, 0, out, ValueLayout.JAVA_BYTE, 20, n);
        reply(option, type, n);
    }

    private void skip(long length) throws ConnectionClosedException {
        long left = length;
        while (left > 0) {
            long n = Math.min(left, in.byteSize());
            socket.readFully(in, 0, n, deadline);
            left -= n;
        }
    }

    private String string(long offset, int length) {
        return new String(in.asSlice(offset, length).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
    }

    private static String limit(String s) {
        return s.length() > 256 ? s.substring(0, 256) + "..." : s;
    }
}

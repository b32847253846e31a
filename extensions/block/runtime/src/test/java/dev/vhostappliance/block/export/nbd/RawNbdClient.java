package dev.vhostappliance.block.export.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

/**
 * A client that writes NBD bytes by hand, well-formed or not: the hostile and protocol tests' tool. The real
 * clients (qemu-img, qemu-io, nbdinfo, nbdcopy) are in {@link NbdRealClientsTest}.
 */
final class RawNbdClient implements AutoCloseable {
    final SocketChannel channel;

    RawNbdClient(Path socket) throws IOException {
        channel = SocketChannel.open(UnixDomainSocketAddress.of(socket));
    }

    /** Over TCP to 127.0.0.1:port (the path is ignored: a name for the test's reader). */
    RawNbdClient(Path unused, int port) throws IOException {
        channel = SocketChannel.open(new java.net.InetSocketAddress("127.0.0.1", port));
    }

    /** One option reply. */
    record OptionReply(int option, int type, byte[] data) {
        int u32(int at) {
            return ByteBuffer.wrap(data).getInt(at);
        }

        String text(int from) {
            return new String(data, from, data.length - from, StandardCharsets.UTF_8);
        }
    }

    /** One reply of the transmission phase: simple (type -1) or a structured chunk. */
    record Reply(long handle, int error, int flags, int type, byte[] data) {
    }

    /** Reads the greeting and answers with the client flags (fixed newstyle, no zeroes). */
    RawNbdClient greet() throws IOException {
        ByteBuffer g = read(18);
        if (g.getLong() != Nbd.NBDMAGIC || g.getLong() != Nbd.IHAVEOPT) {
            throw new IOException("bad greeting");
        }
        write(ByteBuffer.allocate(4).putInt(Nbd.FLAG_C_FIXED_NEWSTYLE | Nbd.FLAG_C_NO_ZEROES).flip());
        return this;
    }

    void option(int option, byte[] data) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(16 + data.length);
        b.putLong(Nbd.IHAVEOPT).putInt(option).putInt(data.length).put(data).flip();
        write(b);
    }

    OptionReply optionReply() throws IOException {
        ByteBuffer h = read(20);
        if (h.getLong() != Nbd.REPLY_MAGIC) {
            throw new IOException("bad option reply magic");
        }
        int option = h.getInt();
        int type = h.getInt();
        int length = h.getInt();
        return new OptionReply(option, type, read(length).array());
    }

    /** Replies up to and including the final one (ACK or an error). */
    List<OptionReply> optionReplies() throws IOException {
        List<OptionReply> all = new java.util.ArrayList<>();
        while (true) {
            OptionReply r = optionReply();
            all.add(r);
            if (r.type() == Nbd.REP_ACK || r.type() < 0) {
                return all;
            }
        }
    }

    static byte[] nameAndInfos(String name, int... infos) {
        byte[] n = name.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(4 + n.length + 2 + 2 * infos.length);
        b.putInt(n.length).put(n).putShort((short) infos.length);
        for (int i : infos) {
            b.putShort((short) i);
        }
        return b.array();
    }

    static byte[] contextQuery(String name, String... queries) {
        byte[] n = name.getBytes(StandardCharsets.UTF_8);
        int len = 8 + n.length;
        for (String q : queries) {
            len += 4 + q.length();
        }
        ByteBuffer b = ByteBuffer.allocate(len);
        b.putInt(n.length).put(n).putInt(queries.length);
        for (String q : queries) {
            b.putInt(q.length()).put(q.getBytes(StandardCharsets.US_ASCII));
        }
        return b.array();
    }

    /** Structured replies, the contexts asked for, then GO to name; returns the export's size and flags. */
    long[] go(String name, boolean structured, String... contexts) throws IOException {
        if (structured) {
            option(Nbd.OPT_STRUCTURED_REPLY, new byte[0]);
            expectAck(optionReplies());
        }
        if (contexts.length > 0) {
            option(Nbd.OPT_SET_META_CONTEXT, contextQuery(name, contexts));
            expectAck(optionReplies());
        }
        option(Nbd.OPT_GO, nameAndInfos(name, Nbd.INFO_BLOCK_SIZE));
        long[] sizeFlags = null;
        for (OptionReply r : optionReplies()) {
            if (r.type() == Nbd.REP_INFO && ByteBuffer.wrap(r.data()).getShort() == Nbd.INFO_EXPORT) {
                ByteBuffer b = ByteBuffer.wrap(r.data(), 2, 10);
                sizeFlags = new long[] {b.getLong(), b.getShort() & 0xffff};
            } else if (r.type() < 0) {
                throw new IOException("GO refused: 0x" + Integer.toHexString(r.type()) + " " + r.text(0));
            }
        }
        return sizeFlags;
    }

    private static void expectAck(List<OptionReply> replies) throws IOException {
        if (replies.get(replies.size() - 1).type() != Nbd.REP_ACK) {
            throw new IOException("option refused: 0x" + Integer.toHexString(replies.get(replies.size() - 1).type()));
        }
    }

    void request(int flags, int type, long handle, long offset, long length, byte[] payload) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(28 + (payload == null ? 0 : payload.length));
        b.putInt(Nbd.REQUEST_MAGIC).putShort((short) flags).putShort((short) type).putLong(handle).putLong(offset)
                .putInt((int) length);
        if (payload != null) {
            b.put(payload);
        }
        write(b.flip());
    }

    /** Reads one reply; a simple reply to a read carries readLength bytes of data when it succeeded. */
    Reply reply(int readLength) throws IOException {
        ByteBuffer h = read(4);
        int magic = h.getInt();
        if (magic == Nbd.SIMPLE_REPLY_MAGIC) {
            ByteBuffer rest = read(12);
            int error = rest.getInt();
            long handle = rest.getLong();
            byte[] data = error == 0 && readLength > 0 ? read(readLength).array() : new byte[0];
            return new Reply(handle, error, 0, -1, data);
        }
        if (magic != Nbd.STRUCTURED_REPLY_MAGIC) {
            throw new IOException("bad reply magic 0x" + Integer.toHexString(magic));
        }
        ByteBuffer rest = read(16);
        int flags = rest.getShort() & 0xffff;
        int type = rest.getShort() & 0xffff;
        long handle = rest.getLong();
        int length = rest.getInt();
        byte[] data = read(length).array();
        int error = (type & 0x8000) != 0 ? ByteBuffer.wrap(data).getInt() : 0;
        return new Reply(handle, error, flags, type, data);
    }

    void write(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            channel.write(b);
        }
    }

    ByteBuffer read(int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            if (channel.read(b) < 0) {
                throw new EOFException("server closed the connection");
            }
        }
        return b.flip();
    }

    /** True if the server closed the connection (reads hit the end) within the timeout. */
    boolean closedByServer() throws IOException {
        try {
            ByteBuffer b = ByteBuffer.allocate(4096);
            while (true) {
                int n = channel.read(b);
                if (n < 0) {
                    return true;
                }
                b.clear();
            }
        } catch (IOException e) {
            return true; // reset by the server
        }
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}

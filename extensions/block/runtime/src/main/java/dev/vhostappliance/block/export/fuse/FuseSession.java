package dev.vhostappliance.block.export.fuse;

import dev.vhostappliance.block.io.SyncIo;
import dev.vhostappliance.block.node.BlockNode;
import dev.vhostappliance.block.node.BlockStatus;
import dev.vhostappliance.cli.StartupException;
import dev.vhostappliance.libc.Errno;
import dev.vhostappliance.libc.LibC;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.jboss.logging.Logger;

/**
 * Serves the kernel's requests on one FUSE mount, one at a time: the export's single regular file (its
 * size, reads, writes, truncation when growable, fallocate, SEEK_DATA/SEEK_HOLE, fsync). Every request's
 * length is checked against what its opcode needs. Ends when the file is unmounted (the kernel then fails
 * the read with ENODEV) or on DESTROY. Node memory alignment (O_DIRECT files) is met with a bounce buffer.
 */
final class FuseSession implements Runnable {
    private static final Logger LOG = Logger.getLogger(FuseSession.class);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED;
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED;
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final boolean AARCH64 = "aarch64".equals(System.getProperty("os.arch"));
    private static final long SYS_WRITEV = AARCH64 ? 66 : 20;
    private static final int ATTR_OUT = 16 + 88;
    private static final int BOUNCE_SLACK = 8192;

    private final FuseMount mount;
    private final BlockNode node;
    private final boolean writable;
    private final boolean growable;
    private final boolean allowOther;
    private final SyncIo io;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment in = arena.allocate(Fuse.REQUEST_BUFFER, 4096);
    /** The reply header and fixed-size replies. */
    private final MemorySegment out = arena.allocate(4096, 8);
    /** Data of reads and of unaligned writes, aligned for O_DIRECT, with room to round a range out. */
    private final MemorySegment data = arena.allocate(Fuse.MAX_WRITE + BOUNCE_SLACK, 4096);
    private final MemorySegment iov = arena.allocate(32, 8);
    /** A write's data, right after its fuse_write_in. */
    private final MemorySegment writeData = in.asSlice(Fuse.IN_HEADER + 40);
    private final BlockStatus status = new BlockStatus();
    private final long created = System.currentTimeMillis() / 1000;
    private final int uid = LibC.getuid();
    private final int gid = LibC.getgid();

    FuseSession(FuseMount mount, BlockNode node, boolean writable, boolean growable, boolean allowOther, String who) {
        this.mount = mount;
        this.node = node;
        this.writable = writable;
        this.growable = growable;
        this.allowOther = allowOther;
        this.io = new SyncIo(node, who);
    }

    @Override
    public void run() {
        try {
            while (true) {
                long n = LibC.rawRead(mount.fd(), in, in.byteSize());
                if (n < 0) {
                    int errno = (int) -n;
                    if (errno == Errno.EINTR || errno == Errno.EAGAIN || errno == Errno.ENOENT) {
                        continue; // ENOENT: the request was interrupted before we read it
                    }
                    if (errno != Errno.ENODEV) {
                        LOG.warnf("FUSE export on %s: read: %s", mount.mountpoint(), Errno.describe(errno));
                    }
                    return; // ENODEV: unmounted
                }
                if (n < Fuse.IN_HEADER || Integer.toUnsignedLong(in.get(U32, 0)) != n) {
                    continue; // not a request the kernel makes
                }
                if (!handle((int) n)) {
                    return;
                }
            }
        } finally {
            release();
        }
    }

    /** Frees the engine, /dev/fuse and the buffers: at the end of run, or instead of it if it never ran. */
    void release() {
        io.close();
        mount.closeDevice();
        arena.close();
    }

    /** One request; false when the session ends (DESTROY). */
    private boolean handle(int n) {
        int opcode = in.get(U32, 4);
        long unique = in.get(U64, 8);
        int body = n - Fuse.IN_HEADER;
        switch (opcode) {
            case Fuse.INIT -> init(unique, body);
            case Fuse.GETATTR -> attr(unique);
            case Fuse.SETATTR -> setattr(unique, body);
            case Fuse.OPEN -> open(unique, body);
            case Fuse.READ -> read(unique, body);
            case Fuse.WRITE -> write(unique, body);
            case Fuse.FSYNC -> reply(unique, writable ? io.flush() : 0, 0);
            case Fuse.FLUSH, Fuse.RELEASE -> reply(unique, 0, 0);
            case Fuse.STATFS -> statfs(unique);
            case Fuse.FALLOCATE -> fallocate(unique, body);
            case Fuse.LSEEK -> lseek(unique, body);
            case Fuse.LOOKUP -> reply(unique, -Errno.ENOENT, 0); // the root is a file: nothing to look up
            case Fuse.FORGET, Fuse.BATCH_FORGET, Fuse.INTERRUPT -> { } // no reply to these
            case Fuse.DESTROY -> {
                reply(unique, 0, 0);
                return false;
            }
            default -> reply(unique, -Errno.ENOSYS, 0);
        }
        return true;
    }

    private long arg64(int at) {
        return in.get(U64, Fuse.IN_HEADER + at);
    }

    private int arg32(int at) {
        return in.get(U32, Fuse.IN_HEADER + at);
    }

    /** INIT: protocol 7.x, at most our minor; 1 MiB writes; no writeback cache (other exports see every write). */
    private void init(long unique, int body) {
        if (body < 16) {
            reply(unique, -Errno.EINVAL, 0);
            return;
        }
        int major = arg32(0);
        int minor = arg32(4);
        if (major < Fuse.KERNEL_VERSION) {
            reply(unique, -71, 0); // EPROTO
            return;
        }
        MemorySegment o = out.asSlice(Fuse.OUT_HEADER, 64).fill((byte) 0);
        o.set(U32, 0, Fuse.KERNEL_VERSION);
        if (major > Fuse.KERNEL_VERSION) {
            reply(unique, 0, 8); // the kernel asks again with our major
            return;
        }
        o.set(U32, 4, Math.min(minor, Fuse.KERNEL_MINOR));
        o.set(U32, 8, arg32(8)); // max_readahead as the kernel offers
        o.set(U32, 12, arg32(12) & (Fuse.ASYNC_READ | Fuse.BIG_WRITES | Fuse.MAX_PAGES));
        o.set(U16, 16, (short) 16);
        o.set(U16, 18, (short) 12);
        o.set(U32, 20, Fuse.MAX_WRITE);
        o.set(U32, 24, 1);
        o.set(U16, 28, (short) (Fuse.MAX_WRITE / 4096));
        reply(unique, 0, 64);
    }

    /** The file's attributes as GETATTR and SETATTR answer them. */
    private void attr(long unique) {
        MemorySegment o = out.asSlice(Fuse.OUT_HEADER, ATTR_OUT).fill((byte) 0);
        long size = node.size();
        int perm = writable ? 0600 : 0400;
        if (allowOther) {
            perm |= writable ? 0066 : 0044;
        }
        o.set(U64, 16, Fuse.ROOT_ID);
        o.set(U64, 24, size);
        o.set(U64, 32, (size + 511) / 512);
        o.set(U64, 40, created);
        o.set(U64, 48, created);
        o.set(U64, 56, created);
        o.set(U32, 76, Fuse.S_IFREG | perm);
        o.set(U32, 80, 1);
        o.set(U32, 84, uid);
        o.set(U32, 88, gid);
        o.set(U32, 96, 4096);
        reply(unique, 0, ATTR_OUT);
    }

    /** SETATTR: a size change truncates or grows the node (writable exports, as QEMU); owners and modes stay. */
    private void setattr(long unique, int body) {
        if (body < 88) {
            reply(unique, -Errno.EINVAL, 0);
            return;
        }
        int valid = arg32(0);
        if ((valid & (Fuse.FATTR_MODE | Fuse.FATTR_UID | Fuse.FATTR_GID)) != 0) {
            reply(unique, -Errno.EPERM, 0);
            return;
        }
        if ((valid & Fuse.FATTR_SIZE) != 0) {
            long size = arg64(16);
            if (!writable) {
                reply(unique, -Errno.EACCES, 0);
                return;
            }
            if (size < 0) {
                reply(unique, -Errno.EINVAL, 0);
                return;
            }
            if (size != node.size()) {
                int rc = resize(size);
                if (rc != 0) {
                    reply(unique, rc, 0);
                    return;
                }
            }
        }
        attr(unique);
    }

    private int resize(long size) {
        try {
            node.resize(size);
            return 0;
        } catch (StartupException e) {
            LOG.debugf("FUSE export on %s: %s", mount.mountpoint(), e.getMessage());
            return -Errno.EOPNOTSUPP;
        }
    }

    private void open(long unique, int body) {
        if (body < 8) {
            reply(unique, -Errno.EINVAL, 0);
            return;
        }
        int accmode = arg32(0) & 3;
        if (accmode != LibC.O_RDONLY && !writable) {
            reply(unique, -Errno.EACCES, 0);
            return;
        }
        MemorySegment o = out.asSlice(Fuse.OUT_HEADER, 16).fill((byte) 0);
        // no page cache: what the other exports of the node write is seen at once
        o.set(U32, 8, Fuse.FOPEN_DIRECT_IO);
        reply(unique, 0, 16);
    }

    /** READ: up to the end of the file; nothing past it. */
    private void read(long unique, int body) {
        if (body < 40) {
            reply(unique, -Errno.EINVAL, 0);
            return;
        }
        long offset = arg64(8);
        long size = Integer.toUnsignedLong(arg32(16));
        long end = node.size();
        if (offset < 0 || size > Fuse.MAX_WRITE) {
            reply(unique, -Errno.EINVAL, 0);
            return;
        }
        long length = offset >= end ? 0 : Math.min(size, end - offset);
        if (length == 0) {
            reply(unique, 0, 0);
            return;
        }
        int align = node.memoryAlignment();
        long lo = offset / align * align;
        long hi = Math.min(roundUp(offset + length, align), roundUp(end, align));
        int rc = io.read(data, lo, hi - lo);
        if (rc != 0) {
            reply(unique, rc, 0);
            return;
        }
        replyData(unique, data.address() + (offset - lo), length);
    }

    /** WRITE: growable exports grow to take it; others take what fits (QEMU's behaviour). */
    private void write(long unique, int body) {
        if (body < 40) {
            reply(unique, -Errno.EINVAL, 0);
            return;
        }
        long offset = arg64(8);
        long size = Integer.toUnsignedLong(arg32(16));
        if (!writable) {
            reply(unique, -Errno.EACCES, 0);
            return;
        }
        if (offset < 0 || size > body - 40L) {
            reply(unique, -Errno.EINVAL, 0);
            return;
        }
        long end = node.size();
        if (offset + size > end) {
            if (growable) {
                int rc = resize(offset + size);
                if (rc != 0) {
                    reply(unique, rc, 0);
                    return;
                }
                end = node.size();
            } else {
                size = Math.max(0, end - offset);
            }
        }
        if (size > 0) {
            int rc = writeAligned(offset, size);
            if (rc != 0) {
                reply(unique, rc, 0);
                return;
            }
        }
        MemorySegment o = out.asSlice(Fuse.OUT_HEADER, 8).fill((byte) 0);
        o.set(U32, 0, (int) size);
        reply(unique, 0, 8);
    }

    /** Writes from the request buffer; an unaligned range on an O_DIRECT node is read, patched and written back. */
    private int writeAligned(long offset, long size) {
        int align = node.memoryAlignment();
        if (align == 1 || (offset % align == 0 && size % align == 0 && writeData.address() % align == 0)) {
            return io.write(writeData, offset, size);
        }
        long lo = offset / align * align;
        long hi = roundUp(offset + size, align);
        int rc = io.read(data, lo, hi - lo);
        if (rc != 0) {
            return rc;
        }
        MemorySegment.copy(writeData, 0, data, offset - lo, size);
        return io.write(data, lo, hi - lo);
    }

    private static long roundUp(long v, int align) {
        return (v + align - 1) / align * align;
    }

    private void statfs(long unique) {
        MemorySegment o = out.asSlice(Fuse.OUT_HEADER, 80).fill((byte) 0);
        long blocks = (node.size() + 4095) / 4096;
        o.set(U64, 0, blocks);
        o.set(U64, 24, 1);
        o.set(U32, 40, 4096);
        o.set(U32, 44, 255);
        o.set(U32, 48, 4096);
        reply(unique, 0, 80);
    }

    /** FALLOCATE: allocate (growing a growable export), PUNCH_HOLE and ZERO_RANGE (as write-zeroes). */
    private void fallocate(long unique, int body) {
        if (body < 32) {
            reply(unique, -Errno.EINVAL, 0);
            return;
        }
        long offset = arg64(8);
        long length = arg64(16);
        int mode = arg32(24);
        if (!writable) {
            reply(unique, -Errno.EACCES, 0);
            return;
        }
        if (offset < 0 || length <= 0 || offset + length < 0) {
            reply(unique, -Errno.EINVAL, 0);
            return;
        }
        boolean keepSize = (mode & Fuse.FALLOC_FL_KEEP_SIZE) != 0;
        int kind = mode & ~Fuse.FALLOC_FL_KEEP_SIZE;
        if (kind != 0 && kind != Fuse.FALLOC_FL_PUNCH_HOLE && kind != Fuse.FALLOC_FL_ZERO_RANGE
                || kind == Fuse.FALLOC_FL_PUNCH_HOLE && !keepSize) {
            reply(unique, -Errno.EOPNOTSUPP, 0);
            return;
        }
        long end = node.size();
        if (!keepSize && offset + length > end) {
            if (!growable) {
                reply(unique, -Errno.ENOSPC, 0);
                return;
            }
            int rc = resize(offset + length);
            if (rc != 0) {
                reply(unique, rc, 0);
                return;
            }
            end = node.size();
        }
        long n = Math.min(length, Math.max(0, end - offset));
        int rc = 0;
        if (kind != 0 && n > 0) {
            rc = io.writeZeroes(offset, n, kind == Fuse.FALLOC_FL_PUNCH_HOLE);
        }
        reply(unique, rc, 0);
    }

    /** LSEEK with SEEK_DATA/SEEK_HOLE from the node's block status (the kernel does the other whences). */
    private void lseek(long unique, int body) {
        if (body < 24) {
            reply(unique, -Errno.EINVAL, 0);
            return;
        }
        long offset = arg64(8);
        int whence = arg32(16);
        long end = node.size();
        if (whence != Fuse.SEEK_DATA && whence != Fuse.SEEK_HOLE) {
            reply(unique, -Errno.EINVAL, 0);
            return;
        }
        if (offset < 0 || offset >= end) {
            reply(unique, -Errno.ENXIO, 0);
            return;
        }
        long pos = offset;
        while (pos < end) {
            long run = node.blockStatus(pos, end - pos, status);
            if (status.hole == (whence == Fuse.SEEK_HOLE)) {
                break;
            }
            pos += Math.max(1, run);
        }
        if (pos >= end && whence == Fuse.SEEK_DATA) {
            reply(unique, -Errno.ENXIO, 0);
            return;
        }
        out.set(U64, Fuse.OUT_HEADER, Math.min(pos, end));
        reply(unique, 0, 8);
    }

    /** A reply of the header and length bytes the caller put after it in out (error: -errno or 0). */
    private void reply(long unique, int error, int length) {
        int n = error == 0 ? Fuse.OUT_HEADER + length : Fuse.OUT_HEADER;
        out.set(U32, 0, n);
        out.set(U32, 4, error);
        out.set(U64, 8, unique);
        send(out.address(), n, 0, 0);
    }

    private void replyData(long unique, long address, long length) {
        out.set(U32, 0, (int) (Fuse.OUT_HEADER + length));
        out.set(U32, 4, 0);
        out.set(U64, 8, unique);
        send(out.address(), Fuse.OUT_HEADER, address, length);
    }

    private void send(long header, long headerLength, long payload, long payloadLength) {
        iov.set(ValueLayout.JAVA_LONG, 0, header);
        iov.set(ValueLayout.JAVA_LONG, 8, headerLength);
        iov.set(ValueLayout.JAVA_LONG, 16, payload);
        iov.set(ValueLayout.JAVA_LONG, 24, payloadLength);
        long rc = LibC.syscallHot(SYS_WRITEV, mount.fd(), iov.address(), payloadLength > 0 ? 2 : 1, 0, 0, 0);
        if (rc < 0 && rc != -Errno.ENOENT) { // ENOENT: the request was interrupted meanwhile
            LOG.debugf("FUSE export on %s: reply: %s", mount.mountpoint(), Errno.describe((int) -rc));
        }
    }
}

package dev.vhostappliance.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The qemu-storage-daemon command line on the packaged binary: several exports, fd, JSON, pidfile. */
class StorageDaemonIT {
    @TempDir
    Path dir;

    private Path image(String name) throws Exception {
        return Appliance.image(dir, name, 16 << 20);
    }

    @Test
    void severalExportsWithFdJsonAndPidfile() throws Exception {
        Path img1 = image("a.img");
        Path img2 = image("b.img");
        Path s1 = dir.resolve("a.sock");
        Path s2 = dir.resolve("b.sock");
        Path s3 = dir.resolve("fd.sock");
        Path pid = dir.resolve("qsd.pid");
        // python3 binds the third socket itself and hands it over as addr.type=fd (as a management layer
        // would), waits for the pid file, talks vhost-user to all three exports, then SIGTERMs the pid in it.
        String script = String.join("\n",
                "import os, signal, socket, struct, subprocess, sys, time",
                "s1, s2, s3, pidfile = sys.argv[1:5]",
                "lst = socket.socket(socket.AF_UNIX); lst.bind(s3); lst.listen(1)",
                "cmd = [a.replace('FD', str(lst.fileno())) for a in sys.argv[5:]]",
                "p = subprocess.Popen(cmd, pass_fds=[lst.fileno()])",
                "lst.close()",
                "for i in range(600):",
                "    if os.path.exists(pidfile) and os.path.getsize(pidfile) > 0: break",
                "    time.sleep(0.05)",
                "print('pid', open(pidfile).read().strip() == str(p.pid))",
                "for path in (s1, s2, s3):",
                "    c = socket.socket(socket.AF_UNIX); c.settimeout(20); c.connect(path)",
                "    c.sendall(struct.pack('<III', 17, 1, 0))",  // GET_QUEUE_NUM
                "    r, f, n = struct.unpack('<III', c.recv(12)); q, = struct.unpack('<Q', c.recv(n))",
                "    print('queues', os.path.basename(path), q)",
                "    c.close()",
                "second = subprocess.run(cmd[:cmd.index('-jar') + 2] + ['--blockdev', 'driver=null-co,node-name=x', '--export',",
                "    'type=vhost-user-blk,id=x,node-name=x,addr.type=unix,addr.path=' + s1 + '.2', '--pidfile', pidfile],",
                "    capture_output=True, text=True)",
                "print('second', second.returncode, len(second.stderr.strip().splitlines()), 'another daemon' in second.stderr)",
                "os.kill(int(open(pidfile).read()), signal.SIGTERM)",
                "print('exit', p.wait(timeout=10))",
                "print('gone', not os.path.exists(pidfile), not os.path.exists(s1), not os.path.exists(s2))");
        List<String> cmd = new ArrayList<>(List.of("python3", "-c", script, s1.toString(), s2.toString(), s3.toString(),
                pid.toString()));
        cmd.addAll(Appliance.command(null,
                "--object", "iothread,id=io0",
                "--blockdev", "driver=file,node-name=disk0,filename=" + img1,
                "--blockdev", "{\"driver\":\"raw\",\"node-name\":\"disk1\",\"file\":{\"driver\":\"file\",\"filename\":\"" + img2 + "\"}}",
                "--blockdev", "driver=null-co,node-name=null0,size=64M,read-zeroes=on",
                "--export", "type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=" + s1
                        + ",writable=on,num-queues=4,iothread=io0",
                "--export", "{\"type\":\"vhost-user-blk\",\"id\":\"exp1\",\"node-name\":\"disk1\",\"addr\":{\"type\":\"unix\",\"path\":\""
                        + s2 + "\"},\"logical-block-size\":4096}",
                "--export", "vhost-user-blk,id=exp2,node-name=null0,addr.type=fd,addr.str=FD,num-queues=2",
                "--pidfile", pid.toString()));
        Appliance.Result r = Appliance.run(cmd);
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(r.out().contains("pid True"), "pid file holds the daemon's pid: " + r.out());
        assertTrue(r.out().contains("queues a.sock 4"), r.out());
        assertTrue(r.out().contains("queues b.sock 1"), r.out());
        assertTrue(r.out().contains("queues fd.sock 2"), r.out());
        assertTrue(r.out().contains("second 1 1 True"), "a second daemon on the same pid file: exit 1, one line: " + r.out());
        assertTrue(r.out().contains("exit 0"), r.out());
        assertTrue(r.out().contains("gone True True True"), "pid file and sockets removed: " + r.out());
    }

    @ParameterizedTest
    @ValueSource(strings = {
            "--blockdev|driver=file,node-name=d,filename=IMG,frobnicate=on",
            "--blockdev|driver=qcow2,node-name=d,filename=IMG",
            "--blockdev|driver=file,node-name=d,filename=IMG,cache.writeback=on",
            "--blockdev|driver=file,node-name=d,filename=IMG,aio=posix",
            "--blockdev|driver=file,node-name=d,filename=IMG,aio=native",
            "--blockdev|driver=file,node-name=d,filename=IMG|--blockdev|driver=raw,node-name=r,file=d,offset=100",
            "--blockdev|driver=file,node-name=d,filename=IMG|--export|type=vhost-user-blk,id=e,node-name=nope,addr.type=unix,addr.path=S",
            "--blockdev|driver=file,node-name=d,filename=IMG,read-only=on|--export|type=vhost-user-blk,id=e,node-name=d,addr.type=unix,addr.path=S,writable=on",
            "--blockdev|driver=file,node-name=d,filename=IMG|--export|type=vhost-user-blk,id=e,node-name=d,addr.type=unix,addr.path=S,num-queues=0",
            "--blockdev|driver=file,node-name=d,filename=IMG|--export|type=vhost-user-blk,id=e,node-name=d,addr.type=unix,addr.path=S,logical-block-size=1000",
            "--blockdev|driver=file,node-name=d,filename=IMG|--export|type=vhost-user-blk,id=e,node-name=d,addr.type=unix,addr.path=S,iothread=none",
            "--blockdev|driver=file,node-name=d,filename=IMG|--blockdev|driver=null-co,node-name=d",
            "--object|memory-backend-ram,id=m,size=1G",
            "--blockdev|{\"driver\":",
            "--daemonize",
            "--chardev|socket,id=c,path=S,server=on,wait=off",
            "--blockdev|driver=file,node-name=d,filename=IMG|--export|type=nbd,id=e,node-name=d",
            "--blockdev|driver=file,node-name=d,filename=IMG|--nbd-server|addr.type=unix,addr.path=S|--export|type=nbd,id=e,node-name=d,bitmaps.0=b",
            "--blockdev|driver=file,node-name=d,filename=IMG|--nbd-server|addr.type=unix,addr.path=S|--export|type=nbd,id=e,node-name=nope",
            "--nbd-server|addr.type=inet,addr.host=127.0.0.1,addr.port=70000",
            "--nbd-server|addr.type=vsock,addr.cid=3",
            "--nbd-server|addr.type=unix,addr.path=S,tls-creds=tls0",
            "--object|tls-creds-x509,id=t,dir=/nonexistent,endpoint=server",
            "--object|tls-creds-x509,id=t,dir=/tmp,endpoint=client",
            "--blockdev|driver=file,node-name=d,filename=IMG|--export|type=fuse,id=e,node-name=d,mountpoint=S",
            "--blockdev|driver=file,node-name=d,filename=IMG|--export|type=fuse,id=e,node-name=d,mountpoint=IMG,allow-other=maybe",
            "--blockdev|driver=file,node-name=d,filename=IMG|--export|type=vduse-blk,id=e,node-name=d"})
    void unsupportedOrInvalidOptionsAreOneLineAndExitOne(String spec) throws Exception {
        Path img = image("x.img");
        Path sock = dir.resolve("x.sock");
        String[] args = spec.replace("IMG", img.toString()).replace("|S", "|" + sock).replace("path=S", "path=" + sock).split("\\|");
        Appliance.Result r = Appliance.run(args);
        assertEquals(1, r.exit(), r.err());
        assertEquals(1, r.errLines().size(), r.err());
        assertTrue(r.err().startsWith("vhost-appliance: "), r.err());
        assertFalse(Files.exists(sock), "no socket left behind");
    }
}

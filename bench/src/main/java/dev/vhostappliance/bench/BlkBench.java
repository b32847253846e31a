package dev.vhostappliance.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A/B benchmark: the same workloads against qemu-storage-daemon and the appliance (its qemu-storage-daemon
 * command line, same options) in the same run, alternating, with a libblkio client. Prints a markdown
 * table with both results and the ratio appliance / qsd. Not a test: numbers on a 2-core machine are noisy,
 * compare the ratios.
 *
 * <pre>java --enable-native-access=ALL-UNNAMED -cp bench/target/classes dev.vhostappliance.bench.BlkBench \
 *   --libblkio PATH/libblkio.so.1 --appliance app/target/app-image/bin/vhost-appliance [--seconds 3] [--rounds 2]</pre>
 */
public final class BlkBench {

    record Backend(String label, List<String> command) {
    }

    public static void main(String[] args) throws Throwable {
        Map<String, String> opt = new LinkedHashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            opt.put(args[i], args[i + 1]);
        }
        Libblkio lib = new Libblkio(Path.of(opt.getOrDefault("--libblkio", "/usr/lib/x86_64-linux-gnu/libblkio.so.1")));
        String appliance = opt.getOrDefault("--appliance", "app/target/app-image/bin/vhost-appliance");
        String qsd = opt.getOrDefault("--qsd", "qemu-storage-daemon");
        double seconds = Double.parseDouble(opt.getOrDefault("--seconds", "3"));
        int rounds = Integer.parseInt(opt.getOrDefault("--rounds", "2"));
        String only = opt.getOrDefault("--only", "");
        Path dir = Files.createTempDirectory(Path.of(opt.getOrDefault("--dir", "/dev/shm")), "vha-bench");

        List<LoadGenerator.Workload> workloads = List.of(
                new LoadGenerator.Workload("4k randread QD1", false, true, 4096, 1),
                new LoadGenerator.Workload("4k randread QD32", false, true, 4096, 32),
                new LoadGenerator.Workload("4k randwrite QD32", true, true, 4096, 32),
                new LoadGenerator.Workload("128k seqread QD8", false, false, 131072, 8));

        System.out.println("| node | queues | workload | qsd | appliance | appliance / qsd | qsd p50 / p99 us | appliance p50 / p99 us | qsd / appliance CPU % |");
        System.out.println("|---|---:|---|---:|---:|---:|---:|---:|---:|");
        for (String node : new String[] {"null-co", "file"}) {
            for (int queues : new int[] {1, 2}) {
                if (!only.isEmpty() && !only.equals(node + "/" + queues)) {
                    continue;
                }
                List<Backend> backends = List.of(
                        new Backend("qsd", qsdArgs(List.of(qsd), node, queues, dir.resolve("qsd"), true)),
                        new Backend("appliance", qsdArgs(List.of(appliance), node, queues, dir.resolve("vha"), false)));
                List<Process> running = new ArrayList<>();
                try {
                    for (Backend b : backends) {
                        running.add(start(b, dir.resolve(b.label().equals("qsd") ? "qsd" : "vha")));
                    }
                    if (node.equals("file")) {
                        // The client and both backends really move data, on every queue, before anything is timed.
                        ClientCheck.check(lib, dir.resolve("qsd.sock").toString(), queues, dir.resolve("qsd.img"));
                        ClientCheck.check(lib, dir.resolve("vha.sock").toString(), queues, dir.resolve("vha.img"));
                    }
                    for (LoadGenerator.Workload w : workloads) {
                        double[][] sum = new double[2][5];
                        for (int r = 0; r < rounds; r++) {
                            for (int b = 0; b < 2; b++) {
                                String sock = dir.resolve((b == 0 ? "qsd" : "vha") + ".sock").toString();
                                long cpu0 = cpuTicks(running.get(b));
                                long t0 = System.nanoTime();
                                LoadGenerator.Result res = LoadGenerator.run(lib, sock, queues, w, 0.5, seconds);
                                double wall = (System.nanoTime() - t0) / 1e9;
                                sum[b][4] += 100.0 * (cpuTicks(running.get(b)) - cpu0) / 100.0 / wall / rounds;
                                if (res.errors() > 0) {
                                    throw new IllegalStateException(backends.get(b).label() + " " + w.name() + ": "
                                            + res.errors() + " I/O errors");
                                }
                                sum[b][0] += res.iops() / rounds;
                                sum[b][1] += res.mbPerSecond() / rounds;
                                sum[b][2] += res.p50Micros() / rounds;
                                sum[b][3] += res.p99Micros() / rounds;
                            }
                        }
                        boolean mb = w.blockSize() > 4096;
                        int metric = mb ? 1 : 0;
                        System.out.printf("| %s | %d | %s | %.0f %s | %.0f %s | %.2f | %.1f / %.1f | %.1f / %.1f | %.0f / %.0f |%n",
                                node, queues, w.name(), sum[0][metric], mb ? "MB/s" : "IOPS", sum[1][metric],
                                mb ? "MB/s" : "IOPS", sum[1][metric] / sum[0][metric], sum[0][2], sum[0][3], sum[1][2],
                                sum[1][3], sum[0][4], sum[1][4]);
                    }
                    System.out.printf("| %s | %d | RSS after the run | %d MB | %d MB | %.2f | | | |%n", node, queues,
                            rssMb(running.get(0)), rssMb(running.get(1)),
                            (double) rssMb(running.get(1)) / Math.max(1, rssMb(running.get(0))));
                } finally {
                    for (Process p : running) {
                        p.destroy();
                        p.waitFor();
                    }
                }
            }
        }
    }

    private static List<String> qsdArgs(List<String> program, String node, int queues, Path base, boolean isQsd)
            throws IOException {
        List<String> cmd = new ArrayList<>(program);
        // An iothread for both: that is where QEMU polls adaptively (poll-max-ns), as the appliance's queues do.
        cmd.add("--object");
        cmd.add("iothread,id=io0");
        cmd.add("--blockdev");
        if (node.equals("null-co")) {
            cmd.add("driver=null-co,node-name=n0,size=1073741824,read-zeroes=on");
        } else {
            Path img = Path.of(base + ".img");
            try (var f = new java.io.RandomAccessFile(img.toFile(), "rw")) {
                f.setLength(1L << 30);
            }
            cmd.add("driver=file,node-name=n0,filename=" + img + ",aio=io_uring");
        }
        cmd.add("--export");
        cmd.add("type=vhost-user-blk,id=e0,node-name=n0,addr.type=unix,addr.path=" + base + ".sock,writable=on,iothread=io0,num-queues="
                + queues);
        return cmd;
    }

    private static Process start(Backend b, Path base) throws Exception {
        Path sock = Path.of(base + ".sock");
        Files.deleteIfExists(sock);
        Process p = new ProcessBuilder(b.command()).redirectErrorStream(true)
                .redirectOutput(Path.of(base + ".log").toFile()).start();
        for (int i = 0; i < 600 && !Files.exists(sock); i++) {
            Thread.sleep(20);
        }
        if (!Files.exists(sock)) {
            throw new IllegalStateException(b.label() + " did not listen: " + Files.readString(Path.of(base + ".log")));
        }
        return p;
    }

    /** utime + stime of the process, in clock ticks (100 per second on Linux). */
    private static long cpuTicks(Process p) throws IOException {
        String stat = Files.readString(Path.of("/proc/" + p.pid() + "/stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return Long.parseLong(f[11]) + Long.parseLong(f[12]);
    }

    private static long rssMb(Process p) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/" + p.pid() + "/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024;
            }
        }
        return -1;
    }
}

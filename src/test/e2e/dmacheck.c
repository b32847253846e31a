/*
 * dmacheck: the guest side of the live migration test (built static by guest-image.sh). Reads two disk
 * regions alternately, with O_DIRECT, into one buffer the CPU never writes, for SECONDS (while the host
 * migrates the guest), then waits WAIT seconds (the migration completes) and checks that the buffer holds
 * the region read last. Only the device writes that buffer, so only its dirty page log can carry the last
 * contents to the destination: without it the check fails.
 *   dmacheck DEV SECONDS WAIT
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define SIZE (16 << 20)
#define B_OFFSET (64LL << 20)

static uint64_t fnv(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static void readat(int fd, void *buf, long long off) {
    if (pread(fd, buf, SIZE, off) != SIZE) { perror("pread"); exit(1); }
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: dmacheck DEV SECONDS WAIT\n"); return 2; }
    int fd = open(argv[1], O_RDONLY | O_DIRECT);
    if (fd < 0) { perror(argv[1]); return 1; }
    unsigned char *buf = aligned_alloc(4096, SIZE);
    readat(fd, buf, 0);
    uint64_t a = fnv(buf, SIZE);
    readat(fd, buf, B_OFFSET);
    uint64_t b = fnv(buf, SIZE);
    if (a == b) { fprintf(stderr, "regions A and B are equal\n"); return 1; }
    printf("MIGRATE\n");
    fflush(stdout);
    time_t end = time(NULL) + atoi(argv[2]);
    long n = 0;
    int last = 1;
    while (time(NULL) < end) {
        last = n++ & 1;
        readat(fd, buf, last ? B_OFFSET : 0);
    }
    printf("READS %ld, last %s\n", n, last ? "B" : "A");
    fflush(stdout);
    sleep(atoi(argv[3]));
    uint64_t now = fnv(buf, SIZE);
    printf(now == (last ? b : a) ? "DMA intact\n" : "DMA stale\n");
    return 0;
}

/*
 * evtool: the guest side of the input end-to-end test (built static by guest-image.sh).
 *   evtool find NAME            print /dev/input/eventN of the device called NAME (waits up to 10 s)
 *   evtool info DEV             NAME=..., ID=bus:vendor:product:version, one "ABS code min max fuzz flat res" per axis
 *   evtool read DEV N           print "READY", then N events as "EV type code value", one a line
 *   evtool write DEV TYPE CODE VALUE   write one event (e.g. an LED: 17 1 1)
 */
#include <fcntl.h>
#include <glob.h>
#include <linux/input.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int open_dev(const char *path, int flags) {
    int fd = open(path, flags);
    if (fd < 0) { perror(path); exit(2); }
    return fd;
}

static int find(const char *name) {
    for (int tries = 0; tries < 100; tries++) {
        glob_t g;
        if (glob("/dev/input/event*", 0, NULL, &g) == 0) {
            for (size_t i = 0; i < g.gl_pathc; i++) {
                int fd = open(g.gl_pathv[i], O_RDONLY);
                char n[256] = {0};
                if (fd >= 0 && ioctl(fd, EVIOCGNAME(sizeof n - 1), n) >= 0 && strcmp(n, name) == 0) {
                    printf("%s\n", g.gl_pathv[i]);
                    return 0;
                }
                if (fd >= 0) close(fd);
            }
            globfree(&g);
        }
        usleep(100000);
    }
    fprintf(stderr, "no input device named %s\n", name);
    return 1;
}

static int info(const char *path) {
    int fd = open_dev(path, O_RDONLY);
    char name[256] = {0};
    struct input_id id;
    unsigned char absbits[ABS_CNT / 8 + 1] = {0};
    ioctl(fd, EVIOCGNAME(sizeof name - 1), name);
    ioctl(fd, EVIOCGID, &id);
    printf("NAME=%s\nID=%x:%x:%x:%x\n", name, id.bustype, id.vendor, id.product, id.version);
    ioctl(fd, EVIOCGBIT(EV_ABS, sizeof absbits), absbits);
    for (int a = 0; a < ABS_CNT; a++) {
        if (absbits[a / 8] & (1 << (a % 8))) {
            struct input_absinfo ai;
            if (ioctl(fd, EVIOCGABS(a), &ai) == 0)
                printf("ABS %d %d %d %d %d %d\n", a, ai.minimum, ai.maximum, ai.fuzz, ai.flat, ai.resolution);
        }
    }
    return 0;
}

static int readn(const char *path, int n) {
    int fd = open_dev(path, O_RDONLY);
    printf("READY\n");
    fflush(stdout);
    for (int i = 0; i < n;) {
        struct input_event ev;
        ssize_t r = read(fd, &ev, sizeof ev);
        if (r != sizeof ev) { perror("read"); return 1; }
        printf("EV %d %d %d\n", ev.type, ev.code, ev.value);
        fflush(stdout);
        i++;
    }
    return 0;
}

static int writeev(const char *path, int type, int code, int value) {
    int fd = open_dev(path, O_WRONLY);
    struct input_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type; ev.code = code; ev.value = value;
    if (write(fd, &ev, sizeof ev) != sizeof ev) { perror("write"); return 1; }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "find")) return find(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "info")) return info(argv[2]);
    if (argc == 4 && !strcmp(argv[1], "read")) return readn(argv[2], atoi(argv[3]));
    if (argc == 6 && !strcmp(argv[1], "write")) return writeev(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
    fprintf(stderr, "usage: evtool find NAME | info DEV | read DEV N | write DEV TYPE CODE VALUE\n");
    return 2;
}

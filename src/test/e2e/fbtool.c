/*
 * fbtool: the guest side of the gpu end-to-end test (built static by guest-image.sh).
 *   fbtool paint [FB]     paint the test pattern into the framebuffer (mmap: plain write() does not reach
 *                         virtio-gpu) and print "PAINTED WxH": eight colour bars, a white band with black text
 *   fbtool cursor N       set a 64x64 hardware cursor through DRM (/dev/dri/card0) and move it N times
 * The pattern is a function of the resolution only, so the host can compare screenshots pixel by pixel.
 */
#include <fcntl.h>
#include <linux/fb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static const uint32_t BARS[8] = {0xffffff, 0xffff00, 0x00ffff, 0x00ff00, 0xff00ff, 0xff0000, 0x0000ff, 0x000000};
static const char TEXT[] = "VHOST-APPLIANCE 2D";

/* 5x7 glyphs, one byte a row, bit 4 leftmost */
static const uint8_t *glyph(char c) {
    static const uint8_t G[][8] = {
        {'V', 0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04}, {'H', 0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11},
        {'O', 0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e}, {'S', 0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e},
        {'T', 0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}, {'-', 0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00},
        {'A', 0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11}, {'P', 0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10},
        {'L', 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f}, {'I', 0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e},
        {'N', 0x11, 0x19, 0x15, 0x13, 0x11, 0x11, 0x11}, {'C', 0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e},
        {'E', 0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f}, {'2', 0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f},
        {'D', 0x1e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1e}, {' ', 0, 0, 0, 0, 0, 0, 0}};
    for (size_t i = 0; i < sizeof G / sizeof G[0]; i++)
        if (G[i][0] == c) return &G[i][1];
    return G[sizeof G / sizeof G[0] - 1] + 1;
}

/* The colour of pixel (x, y) of a w x h screen: shared by the guest and (re-implemented) by the host test. */
static uint32_t pattern(int x, int y, int w, int h) {
    int band = h * 3 / 4, scale = 4, tx = 16, ty = band + 16;
    if (y < band) return BARS[x * 8 / w];
    int gx = (x - tx) / scale, gy = (y - ty) / scale;
    if (x >= tx && y >= ty && gy < 7 && gx < (int)strlen(TEXT) * 6) {
        int ch = gx / 6, col = gx % 6;
        if (col < 5 && (glyph(TEXT[ch])[gy] >> (4 - col) & 1)) return 0x000000;
    }
    return 0xffffff;
}

static int paint(const char *dev) {
    int fd = open(dev, O_RDWR);
    if (fd < 0) { perror(dev); return 1; }
    struct fb_var_screeninfo v;
    struct fb_fix_screeninfo f;
    if (ioctl(fd, FBIOGET_VSCREENINFO, &v) || ioctl(fd, FBIOGET_FSCREENINFO, &f)) { perror("FBIOGET"); return 1; }
    if (v.bits_per_pixel != 32) { fprintf(stderr, "%u bpp\n", v.bits_per_pixel); return 1; }
    size_t size = (size_t)f.line_length * v.yres;
    uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    for (unsigned y = 0; y < v.yres; y++) {
        uint32_t *row = (uint32_t *)(p + (size_t)y * f.line_length);
        for (unsigned x = 0; x < v.xres; x++) row[x] = pattern(x, y, v.xres, v.yres);
    }
    msync(p, size, MS_SYNC);
    printf("PAINTED %ux%u\n", v.xres, v.yres);
    return 0;
}

/* DRM uapi (drm.h, drm_mode.h): the few structs and ioctls needed, so no libdrm headers are required. */
struct card_res { uint64_t fb, crtc, conn, enc; uint32_t nfb, ncrtc, nconn, nenc, minw, maxw, minh, maxh; };
struct mode_cursor { uint32_t flags, crtc_id; int32_t x, y; uint32_t width, height, handle; };
struct create_dumb { uint32_t height, width, bpp, flags, handle, pitch; uint64_t size; };
struct map_dumb { uint32_t handle, pad; uint64_t offset; };
#define DRM_IOWR_(nr, t) _IOWR('d', nr, t)

static int cursor(int moves) {
    int fd = open("/dev/dri/card0", O_RDWR);
    if (fd < 0) { perror("/dev/dri/card0"); return 1; }
    uint32_t crtcs[8];
    struct card_res res = {0};
    if (ioctl(fd, DRM_IOWR_(0xA0, struct card_res), &res)) { perror("GETRESOURCES"); return 1; }
    res.crtc = (uintptr_t)crtcs;
    if (res.ncrtc > 8) res.ncrtc = 8;
    res.nfb = res.nconn = res.nenc = 0;
    if (ioctl(fd, DRM_IOWR_(0xA0, struct card_res), &res) || res.ncrtc == 0) { perror("GETRESOURCES crtcs"); return 1; }
    struct create_dumb cd = {.height = 64, .width = 64, .bpp = 32};
    if (ioctl(fd, DRM_IOWR_(0xB2, struct create_dumb), &cd)) { perror("CREATE_DUMB"); return 1; }
    struct map_dumb md = {.handle = cd.handle};
    if (ioctl(fd, DRM_IOWR_(0xB3, struct map_dumb), &md)) { perror("MAP_DUMB"); return 1; }
    uint32_t *px = mmap(NULL, cd.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, md.offset);
    if (px == MAP_FAILED) { perror("mmap dumb"); return 1; }
    for (int i = 0; i < 64 * 64; i++) px[i] = (i % 64 < 32) ? 0xffff0000 : 0xff00ff00; /* opaque red | green */
    struct mode_cursor c = {.flags = 1, .crtc_id = crtcs[0], .width = 64, .height = 64, .handle = cd.handle};
    if (ioctl(fd, DRM_IOWR_(0xA3, struct mode_cursor), &c)) { perror("CURSOR set"); return 1; }
    for (int i = 1; i <= moves; i++) {
        struct mode_cursor m = {.flags = 2, .crtc_id = crtcs[0], .x = 10 * i, .y = 5 * i};
        if (ioctl(fd, DRM_IOWR_(0xA3, struct mode_cursor), &m)) { perror("CURSOR move"); return 1; }
        usleep(20000);
    }
    printf("CURSOR set, moved %d times\n", moves);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "paint")) return paint(argc > 2 ? argv[2] : "/dev/fb0");
    if (argc == 3 && !strcmp(argv[1], "cursor")) return cursor(atoi(argv[2]));
    fprintf(stderr, "usage: fbtool paint [FB] | cursor N\n");
    return 2;
}

/*
 * gltool: the 3D guest program of the gpu end-to-end test. GBM + EGL + KMS + GLES2 on /dev/dri/card0 (virtio-gpu
 * with virgl): draws four colour quadrants and a triangle, shows them with a mode set and page flips, and prints
 * GL_RENDERER, what glReadPixels sees at known points and the frame rate. Built dynamically on the host and run in
 * the guest inside a chroot of the host's root (shared read-only over 9p), so the guest's Mesa is the host's.
 * The libraries are opened with dlopen and their few functions declared here: no -dev packages needed.
 *   gltool FRAMES HOLD_SECONDS   (prints SHOT after the last flip, keeps the picture HOLD_SECONDS, exits)
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/ioctl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>

/* --- the DRM mode-setting UAPI (include/uapi/drm/drm_mode.h) --- */
struct drm_mode_card_res {
    uint64_t fb_id_ptr, crtc_id_ptr, connector_id_ptr, encoder_id_ptr;
    uint32_t count_fbs, count_crtcs, count_connectors, count_encoders;
    uint32_t min_width, max_width, min_height, max_height;
};
struct drm_mode_modeinfo {
    uint32_t clock;
    uint16_t hdisplay, hsync_start, hsync_end, htotal, hskew;
    uint16_t vdisplay, vsync_start, vsync_end, vtotal, vscan;
    uint32_t vrefresh, flags, type;
    char name[32];
};
struct drm_mode_crtc {
    uint64_t set_connectors_ptr;
    uint32_t count_connectors, crtc_id, fb_id, x, y, gamma_size, mode_valid;
    struct drm_mode_modeinfo mode;
};
struct drm_mode_get_encoder { uint32_t encoder_id, encoder_type, crtc_id, possible_crtcs, possible_clones; };
struct drm_mode_get_connector {
    uint64_t encoders_ptr, modes_ptr, props_ptr, prop_values_ptr;
    uint32_t count_modes, count_props, count_encoders, encoder_id, connector_id, connector_type, connector_type_id,
        connection, mm_width, mm_height, subpixel, pad;
};
struct drm_mode_fb_cmd { uint32_t fb_id, width, height, pitch, bpp, depth, handle; };
struct drm_mode_crtc_page_flip { uint32_t crtc_id, fb_id, flags, reserved; uint64_t user_data; };
struct drm_event { uint32_t type, length; };
#define DRM_IOWR_(nr, type) _IOWR('d', nr, type)
#define DRM_IOCTL_MODE_GETRESOURCES DRM_IOWR_(0xA0, struct drm_mode_card_res)
#define DRM_IOCTL_MODE_SETCRTC DRM_IOWR_(0xA2, struct drm_mode_crtc)
#define DRM_IOCTL_MODE_GETENCODER DRM_IOWR_(0xA6, struct drm_mode_get_encoder)
#define DRM_IOCTL_MODE_GETCONNECTOR DRM_IOWR_(0xA7, struct drm_mode_get_connector)
#define DRM_IOCTL_MODE_ADDFB DRM_IOWR_(0xAE, struct drm_mode_fb_cmd)
#define DRM_IOCTL_MODE_RMFB DRM_IOWR_(0xAF, unsigned int)
#define DRM_IOCTL_MODE_PAGE_FLIP DRM_IOWR_(0xB0, struct drm_mode_crtc_page_flip)
#define DRM_MODE_PAGE_FLIP_EVENT 0x01
#define DRM_EVENT_FLIP_COMPLETE 0x02

/* --- GBM, EGL and GLES2: the values from gbm.h, egl.h and gl2.h --- */
#define GBM_FORMAT_XRGB8888 0x34325258
#define GBM_BO_USE_SCANOUT 1
#define GBM_BO_USE_RENDERING 4
#define EGL_PLATFORM_GBM_KHR 0x31D7
#define EGL_OPENGL_ES_API 0x30A0
#define EGL_NONE 0x3038
#define EGL_SURFACE_TYPE 0x3033
#define EGL_WINDOW_BIT 0x0004
#define EGL_RED_SIZE 0x3024
#define EGL_GREEN_SIZE 0x3023
#define EGL_BLUE_SIZE 0x3022
#define EGL_RENDERABLE_TYPE 0x3040
#define EGL_OPENGL_ES2_BIT 0x0004
#define EGL_NATIVE_VISUAL_ID 0x302E
#define EGL_CONTEXT_CLIENT_VERSION 0x3098
#define GL_COLOR_BUFFER_BIT 0x4000
#define GL_SCISSOR_TEST 0x0C11
#define GL_VENDOR 0x1F00
#define GL_RENDERER 0x1F01
#define GL_VERSION 0x1F02
#define GL_VERTEX_SHADER 0x8B31
#define GL_FRAGMENT_SHADER 0x8B30
#define GL_COMPILE_STATUS 0x8B81
#define GL_LINK_STATUS 0x8B82
#define GL_FLOAT 0x1406
#define GL_TRIANGLES 0x0004
#define GL_RGBA 0x1908
#define GL_UNSIGNED_BYTE 0x1401

typedef void *(*gbm_create_device_t)(int);
typedef void *(*gbm_surface_create_t)(void *, uint32_t, uint32_t, uint32_t, uint32_t);
typedef void *(*gbm_surface_lock_front_buffer_t)(void *);
typedef void (*gbm_surface_release_buffer_t)(void *, void *);
typedef uint64_t (*gbm_bo_get_handle_t)(void *); /* union gbm_bo_handle, 8 bytes, returned in rax */
typedef uint32_t (*gbm_bo_get_u32_t)(void *);
typedef void *(*egl_get_proc_t)(const char *);
typedef void *(*egl_get_platform_display_t)(uint32_t, void *, const intptr_t *);
typedef unsigned (*egl_initialize_t)(void *, int *, int *);
typedef unsigned (*egl_bind_api_t)(unsigned);
typedef unsigned (*egl_choose_config_t)(void *, const int *, void **, int, int *);
typedef unsigned (*egl_get_config_attrib_t)(void *, void *, int, int *);
typedef void *(*egl_create_context_t)(void *, void *, void *, const int *);
typedef void *(*egl_create_window_surface_t)(void *, void *, uintptr_t, const int *);
typedef unsigned (*egl_make_current_t)(void *, void *, void *, void *);
typedef unsigned (*egl_swap_buffers_t)(void *, void *);
typedef int (*egl_get_error_t)(void);

static void *need(void *lib, const char *name) {
    void *f = dlsym(lib, name);
    if (!f) {
        fprintf(stderr, "gltool: %s missing\n", name);
        exit(2);
    }
    return f;
}

static void *open_lib(const char *name) {
    void *l = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
    if (!l) {
        fprintf(stderr, "gltool: %s\n", dlerror());
        exit(2);
    }
    return l;
}

static void die(const char *what) {
    fprintf(stderr, "gltool: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* GLES2 entry points, looked up once */
static const unsigned char *(*glGetString)(unsigned);
static void (*glClearColor)(float, float, float, float);
static void (*glClear)(unsigned);
static void (*glEnable)(unsigned);
static void (*glDisable)(unsigned);
static void (*glScissor)(int, int, int, int);
static void (*glViewport)(int, int, int, int);
static unsigned (*glCreateShader)(unsigned);
static void (*glShaderSource)(unsigned, int, const char *const *, const int *);
static void (*glCompileShader)(unsigned);
static void (*glGetShaderiv)(unsigned, unsigned, int *);
static unsigned (*glCreateProgram)(void);
static void (*glAttachShader)(unsigned, unsigned);
static void (*glBindAttribLocation)(unsigned, unsigned, const char *);
static void (*glLinkProgram)(unsigned);
static void (*glGetProgramiv)(unsigned, unsigned, int *);
static void (*glUseProgram)(unsigned);
static void (*glVertexAttribPointer)(unsigned, int, unsigned, unsigned char, int, const void *);
static void (*glEnableVertexAttribArray)(unsigned);
static void (*glDrawArrays)(unsigned, int, int);
static void (*glReadPixels)(int, int, int, int, unsigned, unsigned, void *);
static void (*glFinish)(void);

static void load_gl(void *gl) {
#define GL(name) *(void **)&name = need(gl, #name)
    GL(glGetString); GL(glClearColor); GL(glClear); GL(glEnable); GL(glDisable); GL(glScissor); GL(glViewport);
    GL(glCreateShader); GL(glShaderSource); GL(glCompileShader); GL(glGetShaderiv); GL(glCreateProgram);
    GL(glAttachShader); GL(glBindAttribLocation); GL(glLinkProgram); GL(glGetProgramiv); GL(glUseProgram);
    GL(glVertexAttribPointer); GL(glEnableVertexAttribArray); GL(glDrawArrays); GL(glReadPixels); GL(glFinish);
#undef GL
}

static unsigned shader(unsigned type, const char *src) {
    unsigned s = glCreateShader(type);
    int ok = 0;
    glShaderSource(s, 1, &src, NULL);
    glCompileShader(s);
    glGetShaderiv(s, GL_COMPILE_STATUS, &ok);
    if (!ok) {
        fprintf(stderr, "gltool: shader does not compile\n");
        exit(1);
    }
    return s;
}

/* The picture: red top left, green top right, blue bottom left, white bottom right; a yellow triangle
 * with corners at (-0.5,-0.5), (0.5,-0.5), (0,0.5) in normalised coordinates over it. */
static void draw(int w, int h, unsigned program) {
    static const float quadrant[4][6] = {
        {0, 0.5f, 1, 0, 0, 0}, {0.5f, 0.5f, 0, 1, 0, 0}, {0, 0, 0, 0, 1, 0}, {0.5f, 0, 1, 1, 1, 0}};
    static const float triangle[] = {-0.5f, -0.5f, 0.5f, -0.5f, 0.0f, 0.5f};
    glViewport(0, 0, w, h);
    glEnable(GL_SCISSOR_TEST);
    for (int i = 0; i < 4; i++) {
        /* GL's window origin is the bottom left */
        glScissor((int) (quadrant[i][0] * w), (int) (quadrant[i][1] * h), w / 2, h / 2);
        glClearColor(quadrant[i][2], quadrant[i][3], quadrant[i][4], 1);
        glClear(GL_COLOR_BUFFER_BIT);
    }
    glDisable(GL_SCISSOR_TEST);
    glUseProgram(program);
    glVertexAttribPointer(0, 2, GL_FLOAT, 0, 0, triangle);
    glEnableVertexAttribArray(0);
    glDrawArrays(GL_TRIANGLES, 0, 3);
}

static uint32_t add_fb(int fd, void *bo, gbm_bo_get_handle_t handle, gbm_bo_get_u32_t stride, int w, int h) {
    struct drm_mode_fb_cmd fb = {.width = w, .height = h, .pitch = stride(bo), .bpp = 32, .depth = 24,
                                 .handle = (uint32_t) handle(bo)};
    if (ioctl(fd, DRM_IOCTL_MODE_ADDFB, &fb)) die("ADDFB");
    return fb.fb_id;
}

int main(int argc, char **argv) {
    int frames = argc > 1 ? atoi(argv[1]) : 30, hold = argc > 2 ? atoi(argv[2]) : 5;
    int fd = open("/dev/dri/card0", O_RDWR | O_CLOEXEC);
    if (fd < 0) die("/dev/dri/card0");

    /* the first connected connector, its preferred (first) mode and a CRTC for it */
    uint32_t conns[8], crtcs[8];
    struct drm_mode_card_res res = {0};
    if (ioctl(fd, DRM_IOCTL_MODE_GETRESOURCES, &res)) die("GETRESOURCES");
    if (res.count_connectors > 8) res.count_connectors = 8;
    if (res.count_crtcs > 8) res.count_crtcs = 8;
    res.connector_id_ptr = (uintptr_t) conns;
    res.crtc_id_ptr = (uintptr_t) crtcs;
    res.count_fbs = res.count_encoders = 0;
    if (ioctl(fd, DRM_IOCTL_MODE_GETRESOURCES, &res)) die("GETRESOURCES");
    struct drm_mode_modeinfo modes[64];
    struct drm_mode_get_connector conn = {0};
    uint32_t connector = 0;
    for (uint32_t i = 0; i < res.count_connectors && !connector; i++) {
        memset(&conn, 0, sizeof conn);
        conn.connector_id = conns[i];
        if (ioctl(fd, DRM_IOCTL_MODE_GETCONNECTOR, &conn)) die("GETCONNECTOR");
        if (conn.connection != 1 || conn.count_modes == 0) continue;
        if (conn.count_modes > 64) conn.count_modes = 64;
        conn.modes_ptr = (uintptr_t) modes;
        conn.count_props = conn.count_encoders = 0;
        if (ioctl(fd, DRM_IOCTL_MODE_GETCONNECTOR, &conn)) die("GETCONNECTOR");
        connector = conns[i];
    }
    if (!connector) {
        fprintf(stderr, "gltool: no connected output\n");
        return 1;
    }
    uint32_t crtc = crtcs[0];
    if (conn.encoder_id) {
        struct drm_mode_get_encoder enc = {.encoder_id = conn.encoder_id};
        if (ioctl(fd, DRM_IOCTL_MODE_GETENCODER, &enc) == 0 && enc.crtc_id) crtc = enc.crtc_id;
    }
    struct drm_mode_modeinfo mode = modes[0];
    int w = mode.hdisplay, h = mode.vdisplay;

    void *gbm_lib = open_lib("libgbm.so.1"), *egl_lib = open_lib("libEGL.so.1"), *gl_lib = open_lib("libGLESv2.so.2");
    gbm_create_device_t gbm_create_device = need(gbm_lib, "gbm_create_device");
    gbm_surface_create_t gbm_surface_create = need(gbm_lib, "gbm_surface_create");
    gbm_surface_lock_front_buffer_t lock_front = need(gbm_lib, "gbm_surface_lock_front_buffer");
    gbm_surface_release_buffer_t release = need(gbm_lib, "gbm_surface_release_buffer");
    gbm_bo_get_handle_t bo_handle = need(gbm_lib, "gbm_bo_get_handle");
    gbm_bo_get_u32_t bo_stride = need(gbm_lib, "gbm_bo_get_stride");
    egl_get_platform_display_t get_display = need(egl_lib, "eglGetPlatformDisplay");
    egl_initialize_t egl_initialize = need(egl_lib, "eglInitialize");
    egl_bind_api_t egl_bind_api = need(egl_lib, "eglBindAPI");
    egl_choose_config_t choose_config = need(egl_lib, "eglChooseConfig");
    egl_get_config_attrib_t config_attrib = need(egl_lib, "eglGetConfigAttrib");
    egl_create_context_t create_context = need(egl_lib, "eglCreateContext");
    egl_create_window_surface_t create_surface = need(egl_lib, "eglCreateWindowSurface");
    egl_make_current_t make_current = need(egl_lib, "eglMakeCurrent");
    egl_swap_buffers_t swap_buffers = need(egl_lib, "eglSwapBuffers");
    egl_get_error_t egl_error = need(egl_lib, "eglGetError");
    load_gl(gl_lib);

    void *gbm = gbm_create_device(fd);
    void *gbm_surface = gbm ? gbm_surface_create(gbm, w, h, GBM_FORMAT_XRGB8888,
                                                 GBM_BO_USE_SCANOUT | GBM_BO_USE_RENDERING) : NULL;
    if (!gbm_surface) {
        fprintf(stderr, "gltool: no GBM surface\n");
        return 1;
    }
    void *dpy = get_display(EGL_PLATFORM_GBM_KHR, gbm, NULL);
    int major = 0, minor = 0;
    if (!dpy || !egl_initialize(dpy, &major, &minor)) {
        fprintf(stderr, "gltool: eglInitialize failed (0x%x)\n", egl_error());
        return 1;
    }
    egl_bind_api(EGL_OPENGL_ES_API);
    static const int want[] = {EGL_SURFACE_TYPE, EGL_WINDOW_BIT, EGL_RED_SIZE, 8, EGL_GREEN_SIZE, 8, EGL_BLUE_SIZE, 8,
                               EGL_RENDERABLE_TYPE, EGL_OPENGL_ES2_BIT, EGL_NONE};
    void *configs[64], *config = NULL;
    int n = 0;
    choose_config(dpy, want, configs, 64, &n);
    for (int i = 0; i < n && !config; i++) {
        int visual = 0;
        if (config_attrib(dpy, configs[i], EGL_NATIVE_VISUAL_ID, &visual) && visual == GBM_FORMAT_XRGB8888) {
            config = configs[i];
        }
    }
    if (!config) {
        fprintf(stderr, "gltool: no XRGB8888 EGL config among %d\n", n);
        return 1;
    }
    static const int ctx_attr[] = {EGL_CONTEXT_CLIENT_VERSION, 2, EGL_NONE};
    void *ctx = create_context(dpy, config, NULL, ctx_attr);
    void *surface = ctx ? create_surface(dpy, config, (uintptr_t) gbm_surface, NULL) : NULL;
    if (!surface || !make_current(dpy, surface, surface, ctx)) {
        fprintf(stderr, "gltool: no EGL context or surface (0x%x)\n", egl_error());
        return 1;
    }
    printf("GL_VENDOR=%s\nGL_RENDERER=%s\nGL_VERSION=%s\nMODE=%dx%d\n", glGetString(GL_VENDOR),
           glGetString(GL_RENDERER), glGetString(GL_VERSION), w, h);
    fflush(stdout);

    unsigned program = glCreateProgram();
    glAttachShader(program, shader(GL_VERTEX_SHADER,
                                   "attribute vec2 pos; void main() { gl_Position = vec4(pos, 0.0, 1.0); }"));
    glAttachShader(program, shader(GL_FRAGMENT_SHADER,
                                   "precision mediump float; void main() { gl_FragColor = vec4(1.0, 1.0, 0.0, 1.0); }"));
    glBindAttribLocation(program, 0, "pos");
    glLinkProgram(program);
    int linked = 0;
    glGetProgramiv(program, GL_LINK_STATUS, &linked);
    if (!linked) {
        fprintf(stderr, "gltool: program does not link\n");
        return 1;
    }

    /* first frame: checked with glReadPixels (GL coordinates: y from the bottom), then shown with a mode set */
    draw(w, h, program);
    glFinish();
    int points[5][2] = {{w / 8, h * 7 / 8}, {w * 7 / 8, h * 7 / 8}, {w / 8, h / 8}, {w * 7 / 8, h / 8}, {w / 2, h / 2}};
    const char *names[5] = {"top-left", "top-right", "bottom-left", "bottom-right", "centre"};
    for (int i = 0; i < 5; i++) {
        unsigned char px[4] = {0};
        glReadPixels(points[i][0], points[i][1], 1, 1, GL_RGBA, GL_UNSIGNED_BYTE, px);
        printf("PIXEL %s %02x%02x%02x\n", names[i], px[0], px[1], px[2]);
    }
    swap_buffers(dpy, surface);
    void *bo = lock_front(gbm_surface);
    uint32_t fb = add_fb(fd, bo, bo_handle, bo_stride, w, h);
    struct drm_mode_crtc set = {.set_connectors_ptr = (uintptr_t) &connector, .count_connectors = 1, .crtc_id = crtc,
                                .fb_id = fb, .mode_valid = 1, .mode = mode};
    if (ioctl(fd, DRM_IOCTL_MODE_SETCRTC, &set)) die("SETCRTC");

    /* then FRAMES more, each drawn, swapped and page-flipped, waiting for the flip */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < frames; i++) {
        draw(w, h, program);
        swap_buffers(dpy, surface);
        void *next = lock_front(gbm_surface);
        uint32_t next_fb = add_fb(fd, next, bo_handle, bo_stride, w, h);
        struct drm_mode_crtc_page_flip flip = {.crtc_id = crtc, .fb_id = next_fb, .flags = DRM_MODE_PAGE_FLIP_EVENT};
        if (ioctl(fd, DRM_IOCTL_MODE_PAGE_FLIP, &flip)) die("PAGE_FLIP");
        char ev[1024];
        ssize_t got;
        do {
            got = read(fd, ev, sizeof ev); /* the flip-complete event */
        } while (got < 0 && errno == EINTR);
        if (got < (ssize_t) sizeof(struct drm_event)) die("flip event");
        ioctl(fd, DRM_IOCTL_MODE_RMFB, &fb);
        release(gbm_surface, bo);
        bo = next;
        fb = next_fb;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("FRAMES %d in %.2f s: %.1f fps\n", frames, secs, frames / secs);
    printf("SHOT\n");
    fflush(stdout);
    sleep(hold); /* the picture stays while the host takes its screendumps */
    return 0;
}

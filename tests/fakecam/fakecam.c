/* SPDX-License-Identifier: MIT */
/* A fake V4L2 camera, loaded with LD_PRELOAD into the real cvoptd: it
 * intercepts open/ioctl/mmap/munmap/poll/close on one device path and
 * emulates a capture device with mmap streaming, fed from a dataset, so
 * the daemon's real V4L2 code runs in tests. The device fd is an eventfd,
 * readable while a filled buffer waits, so poll() works as on a camera.
 *
 * Environment:
 *   FAKECAM_DEVICE   path it answers for (default /dev/video-fake0)
 *   FAKECAM_DATASET  dataset spec (default fashion-mnist:test)
 *   FAKECAM_COUNT    items to emit, then no more frames (default all)
 *   FAKECAM_FPS      frame rate (default: what S_PARM asks, else 30)
 *   FAKECAM_FORMATS  formats offered, comma-separated from yuyv, mjpeg,
 *                    nv12, grey, rgb24; ENUM_FMT lists them in that order
 *                    and S_FMT falls back to the first (default yuyv,mjpeg)
 *   FAKECAM_LINE_PAD bytes of padding after each line of an uncompressed
 *                    format (default 0), so bytesperline is more than the
 *                    pixels need, as with drivers that align lines
 *   FAKECAM_FAULTS   comma-separated faults, N counted in emitted frames:
 *     unplug=N:MS    after frame N the device disappears for MS ms
 *                    (ioctls fail with ENODEV, poll gives POLLERR, open
 *                    gives ENOENT), then can be opened again
 *     eio=N          DQBUF of frame N fails with EIO (once)
 *     stall=N:MS     no frames for MS ms after frame N
 *     short=N        frame N has half its bytesused
 *   FAKECAM_LOG      if set, a file where events are appended (for tests)
 *   FAKECAM_START_FILE  if set, no frame is emitted before this file exists
 *                    (so a test can subscribe before the first frame)
 *
 * Frames are the dataset item stretched (nearest neighbour) to the
 * negotiated size, in the colour conventions cvoptd reads them with
 * (daemon/preprocess.c), each reported in G_FMT/S_FMT:
 *   YUYV   BT.601, full range, reported as colorspace JPEG with quantization
 *          DEFAULT (which V4L2 maps to full range, as some webcams say it);
 *          U from the even pixel of a pair, V from the odd one
 *   MJPEG  4:2:2 JPEG of the RGB pixels, quality 90 (colorspace JPEG)
 *   NV12   BT.601, limited range (Y 16..235, UV 16..240; quantization
 *          LIM_RANGE, the V4L2 default for YUV), a Y plane then an
 *          interleaved UV plane at half resolution, UV averaged over each
 *          2x2 block; both planes have the same bytesperline
 *   GREY   the BT.601 luma, 1 byte per pixel, full range
 *   RGB24  R, G, B, 3 bytes per pixel (colorspace SRGB, full range)
 * sizeimage is bytesperline * height (* 3/2 for NV12); for MJPEG it is
 * width * height * 2, room for any frame at quality 90.
 */

/* Both the plain and the 64-bit names are defined below, so the header
 * must not rename one to the other. */
#undef _FILE_OFFSET_BITS

#include <assert.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cvopt/dataset.h"
#include "cvopt/errors.h"
#include "fakecam-render.h"
#include "macro.h"

#define MAX_BUFFERS 32
#define MAX_FAULTS 16
/* Padding beyond this is no driver's alignment, only a typo. */
#define MAX_LINE_PAD 4096u

/* The formats the fake can offer, in the order ENUM_FMT lists them. */
static const struct {
        const char *name; /* as in FAKECAM_FORMATS */
        uint32_t fourcc;
        const char *description;
} formats[] = {
        { "yuyv", V4L2_PIX_FMT_YUYV, "YUYV 4:2:2" },
        { "mjpeg", V4L2_PIX_FMT_MJPEG, "Motion-JPEG" },
        { "nv12", V4L2_PIX_FMT_NV12, "Y/UV 4:2:0" },
        { "grey", V4L2_PIX_FMT_GREY, "8-bit Greyscale" },
        { "rgb24", V4L2_PIX_FMT_RGB24, "24-bit RGB 8-8-8" },
};

typedef enum FaultKind { FAULT_UNPLUG, FAULT_EIO, FAULT_STALL, FAULT_SHORT } FaultKind;
typedef struct Fault {
        FaultKind kind;
        uint64_t at;
        uint64_t msec;
        bool done;
} Fault;

typedef struct Buffer {
        uint8_t *mem;
        size_t length;
        bool queued, done, mapped;
        uint32_t bytes_used;
        uint64_t sequence;
        struct timeval ts;
} Buffer;

static struct {
        pthread_mutex_t lock;
        char device[256];
        char dataset_spec[256];
        uint64_t count;
        uint32_t fps_env;
        bool offer[ELEMENTSOF(formats)];
        uint32_t line_pad;
        Fault faults[MAX_FAULTS];
        uint32_t n_faults;
        FILE *log;
        char start_file[256];

        CvoptDataset *dataset;
        int fd; /* the eventfd standing for the open device, or -1 */
        uint32_t width, height, pixelformat, fps;
        uint32_t bytes_per_line, size_image; /* of the negotiated format */
        Buffer buffers[MAX_BUFFERS];
        uint32_t n_buffers;
        bool streaming;
        pthread_t thread;
        bool thread_running;
        atomic_bool stop_thread;
        uint64_t emitted;        /* frames produced since the fake was loaded */
        uint64_t next_item;      /* dataset index of the next frame */
        bool unplugged;
        uint64_t replug_usec;    /* when an unplugged device comes back */
        uint64_t stall_until_usec;
        bool eio_pending;
} cam = { .lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1 };

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_ioctl)(int, unsigned long, ...);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static void *(*real_mmap64)(void *, size_t, int, int, int, off_t);
static int (*real_munmap)(void *, size_t);
static int (*real_poll)(struct pollfd *, nfds_t, int);
static int (*real_close)(int);

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static void cam_log(const char *format, ...) {
        if (!cam.log)
                return;
        va_list ap;
        va_start(ap, format);
        vfprintf(cam.log, format, ap);
        va_end(ap);
        fputc('\n', cam.log);
        fflush(cam.log);
}

static void parse_faults(const char *s) {
        char *copy = strdup(s), *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok && cam.n_faults < MAX_FAULTS; tok = strtok_r(NULL, ",", &save)) {
                Fault f = { 0 };
                unsigned long long a = 0, b = 0;
                if (sscanf(tok, "unplug=%llu:%llu", &a, &b) == 2)
                        f.kind = FAULT_UNPLUG;
                else if (sscanf(tok, "stall=%llu:%llu", &a, &b) == 2)
                        f.kind = FAULT_STALL;
                else if (sscanf(tok, "eio=%llu", &a) == 1)
                        f.kind = FAULT_EIO;
                else if (sscanf(tok, "short=%llu", &a) == 1)
                        f.kind = FAULT_SHORT;
                else {
                        fprintf(stderr, "fakecam: bad fault \"%s\"\n", tok);
                        abort();
                }
                f.at = a;
                f.msec = b;
                cam.faults[cam.n_faults++] = f;
        }
        free(copy);
}

static void parse_formats(const char *s) {
        char *copy = strdup(s), *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                size_t i = 0;
                while (i < ELEMENTSOF(formats) && !streq(tok, formats[i].name))
                        i++;
                if (i == ELEMENTSOF(formats)) {
                        fprintf(stderr, "fakecam: bad format \"%s\"\n", tok);
                        abort();
                }
                cam.offer[i] = true;
        }
        free(copy);
}

static void init_once(void) {
        real_open = dlsym(RTLD_NEXT, "open");
        real_open64 = dlsym(RTLD_NEXT, "open64");
        real_ioctl = dlsym(RTLD_NEXT, "ioctl");
        real_mmap = dlsym(RTLD_NEXT, "mmap");
        real_mmap64 = dlsym(RTLD_NEXT, "mmap64");
        real_munmap = dlsym(RTLD_NEXT, "munmap");
        real_poll = dlsym(RTLD_NEXT, "poll");
        real_close = dlsym(RTLD_NEXT, "close");
}

/* The settings, read on the first open(): the real functions above may be
 * needed before main() (a sanitizer runtime maps memory during its own
 * start-up), when the environment is not readable yet. */
static void config_once(void) {
        const char *e;
        snprintf(cam.device, sizeof cam.device, "%s", (e = getenv("FAKECAM_DEVICE")) ? e : "/dev/video-fake0");
        snprintf(cam.dataset_spec, sizeof cam.dataset_spec, "%s",
                 (e = getenv("FAKECAM_DATASET")) ? e : "fashion-mnist:test");
        cam.count = (e = getenv("FAKECAM_COUNT")) ? strtoull(e, NULL, 10) : UINT64_MAX;
        cam.fps_env = (e = getenv("FAKECAM_FPS")) ? (uint32_t) strtoul(e, NULL, 10) : 0;
        parse_formats((e = getenv("FAKECAM_FORMATS")) ? e : "yuyv,mjpeg");
        cam.line_pad = (e = getenv("FAKECAM_LINE_PAD")) ? (uint32_t) strtoul(e, NULL, 10) : 0;
        if (cam.line_pad > MAX_LINE_PAD) {
                fprintf(stderr, "fakecam: FAKECAM_LINE_PAD=%s, at most %u\n", e, MAX_LINE_PAD);
                abort();
        }
        if ((e = getenv("FAKECAM_FAULTS")))
                parse_faults(e);
        if ((e = getenv("FAKECAM_START_FILE")))
                snprintf(cam.start_file, sizeof cam.start_file, "%s", e);
        if ((e = getenv("FAKECAM_LOG")))
                cam.log = fopen(e, "ae");
}

/* Once, without the camera lock: the dataset is opened with the lock held
 * and its own open() calls come back through here. */
static void ensure_init(void) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, init_once);
}

static void ensure_config(void) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        ensure_init();
        pthread_once(&once, config_once);
}

static Fault *fault_at(FaultKind kind, uint64_t frame) {
        for (uint32_t i = 0; i < cam.n_faults; i++)
                if (cam.faults[i].kind == kind && cam.faults[i].at == frame && !cam.faults[i].done)
                        return &cam.faults[i];
        return NULL;
}

static void signal_fd(void) {
        uint64_t one = 1;
        if (cam.fd >= 0)
                (void) !write(cam.fd, &one, sizeof one);
}

static void *producer(void *userdata) {
        (void) userdata;
        uint64_t next = now_usec();
        while (!atomic_load(&cam.stop_thread)) {
                uint64_t interval = 1000000u / (cam.fps ? cam.fps : 30);
                uint64_t now = now_usec();
                if (now < next) {
                        usleep((useconds_t) MIN(next - now, 20000u));
                        continue;
                }
                next += interval;
                if (next < now)
                        next = now + interval;
                if (cam.start_file[0]) {
                        if (access(cam.start_file, F_OK) < 0)
                                continue;
                        cam.start_file[0] = 0;
                }

                pthread_mutex_lock(&cam.lock);
                if (cam.unplugged || now < cam.stall_until_usec || cam.emitted >= cam.count || !cam.streaming) {
                        pthread_mutex_unlock(&cam.lock);
                        continue;
                }
                uint64_t frame = cam.emitted++;
                uint64_t item = cam.next_item++ % cvopt_dataset_count(cam.dataset);
                Buffer *b = NULL;
                for (uint32_t i = 0; i < cam.n_buffers && !b; i++)
                        if (cam.buffers[i].queued)
                                b = &cam.buffers[i];
                if (!b) {
                        /* A real driver has nowhere to put the frame either. */
                        cam_log("overrun %llu", (unsigned long long) frame);
                } else {
                        CvoptImage *img = NULL;
                        if (cvopt_dataset_get(cam.dataset, item, &img, NULL) < 0)
                                abort();
                        /* S_FMT refuses a new format while buffers exist, so they fit it. */
                        assert(b->length >= cam.size_image);
                        b->bytes_used = frame_render(&(FrameLayout) { .width = cam.width, .height = cam.height,
                                                                      .fourcc = cam.pixelformat,
                                                                      .bytes_per_line = cam.bytes_per_line,
                                                                      .line_pad = cam.line_pad },
                                                     img, b->mem, b->length);
                        cvopt_image_free(img);
                        Fault *f = fault_at(FAULT_SHORT, frame);
                        if (f) {
                                f->done = true;
                                b->bytes_used /= 2;
                                cam_log("short %llu", (unsigned long long) frame);
                        }
                        f = fault_at(FAULT_EIO, frame);
                        if (f) {
                                f->done = true;
                                cam.eio_pending = true;
                        }
                        b->sequence = item;
                        uint64_t t = now_usec();
                        b->ts = (struct timeval) { .tv_sec = (time_t) (t / 1000000u), .tv_usec = (suseconds_t) (t % 1000000u) };
                        b->queued = false;
                        b->done = true;
                        signal_fd();
                }
                Fault *f;
                if ((f = fault_at(FAULT_UNPLUG, frame))) {
                        f->done = true;
                        cam.unplugged = true;
                        cam.replug_usec = now_usec() + f->msec * 1000;
                        cam_log("unplug %llu", (unsigned long long) frame);
                        signal_fd();
                }
                if ((f = fault_at(FAULT_STALL, frame))) {
                        f->done = true;
                        cam.stall_until_usec = now_usec() + f->msec * 1000;
                        cam_log("stall %llu", (unsigned long long) frame);
                }
                pthread_mutex_unlock(&cam.lock);
        }
        return NULL;
}

static bool is_device(const char *path) {
        ensure_config();
        return path && streq(path, cam.device);
}

static int fake_open(const char *path) {
        pthread_mutex_lock(&cam.lock);
        int r = -1;
        if (cam.unplugged && now_usec() < cam.replug_usec) {
                errno = ENOENT;
                goto out;
        }
        if (cam.unplugged) {
                cam.unplugged = false;
                cam_log("replug");
        }
        if (cam.fd >= 0) {
                errno = EBUSY;
                goto out;
        }
        if (!cam.dataset && cvopt_dataset_open(cam.dataset_spec, &cam.dataset) < 0) {
                fprintf(stderr, "fakecam: %s: %s\n", cam.dataset_spec, cvopt_error_detail());
                errno = EIO;
                goto out;
        }
        cam.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        r = cam.fd;
        cam_log("open %s", path);
out:
        pthread_mutex_unlock(&cam.lock);
        return r;
}

int open(const char *path, int flags, ...) {
        va_list ap;
        va_start(ap, flags);
        mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
        va_end(ap);
        if (is_device(path))
                return fake_open(path);
        return real_open(path, flags, mode);
}

int open64(const char *path, int flags, ...) {
        va_list ap;
        va_start(ap, flags);
        mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
        va_end(ap);
        if (is_device(path))
                return fake_open(path);
        return real_open64(path, flags, mode);
}

static void stop_streaming(void) {
        /* Called without the lock: joining the producer, which takes it. */
        if (cam.thread_running) {
                atomic_store(&cam.stop_thread, true);
                pthread_join(cam.thread, NULL);
                cam.thread_running = false;
                atomic_store(&cam.stop_thread, false);
        }
        pthread_mutex_lock(&cam.lock);
        cam.streaming = false;
        for (uint32_t i = 0; i < cam.n_buffers; i++)
                cam.buffers[i].queued = cam.buffers[i].done = false;
        pthread_mutex_unlock(&cam.lock);
}

static void free_buffers(void) {
        for (uint32_t i = 0; i < cam.n_buffers; i++)
                real_munmap(cam.buffers[i].mem, cam.buffers[i].length);
        memset(cam.buffers, 0, sizeof cam.buffers);
        cam.n_buffers = 0;
}

int close(int fd) {
        ensure_init();
        if (fd >= 0 && fd == cam.fd) {
                stop_streaming();
                pthread_mutex_lock(&cam.lock);
                free_buffers();
                cam.fd = -1;
                pthread_mutex_unlock(&cam.lock);
                cam_log("close");
        }
        return real_close(fd);
}

static bool offered(uint32_t fourcc) {
        for (size_t i = 0; i < ELEMENTSOF(formats); i++)
                if (formats[i].fourcc == fourcc)
                        return cam.offer[i];
        return false;
}

static uint32_t first_offered(void) {
        for (size_t i = 0; i < ELEMENTSOF(formats); i++)
                if (cam.offer[i])
                        return formats[i].fourcc;
        return V4L2_PIX_FMT_H264;
}

static void fill_format(struct v4l2_format *f, uint32_t w, uint32_t h, uint32_t fourcc) {
        struct v4l2_pix_format *p = &f->fmt.pix;
        memset(p, 0, sizeof *p);
        p->width = w;
        p->height = h;
        p->pixelformat = fourcc;
        p->field = V4L2_FIELD_NONE;
        frame_geometry(fourcc, w, h, cam.line_pad, &p->bytesperline, &p->sizeimage);
        p->colorspace = fourcc == V4L2_PIX_FMT_MJPEG || fourcc == V4L2_PIX_FMT_YUYV ? V4L2_COLORSPACE_JPEG
                                                                                  : V4L2_COLORSPACE_SRGB;
        p->quantization = fourcc == V4L2_PIX_FMT_NV12   ? V4L2_QUANTIZATION_LIM_RANGE
                          : fourcc == V4L2_PIX_FMT_YUYV ? V4L2_QUANTIZATION_DEFAULT
                                                        : V4L2_QUANTIZATION_FULL_RANGE;
}

/* The device ioctls, with the lock held. Returns 0 or -errno. */
static int fake_ioctl_locked(unsigned long request, void *arg) {
        if (cam.unplugged)
                return -ENODEV;
        switch (request) {
        case VIDIOC_QUERYCAP: {
                struct v4l2_capability *c = arg;
                memset(c, 0, sizeof *c);
                snprintf((char *) c->driver, sizeof c->driver, "fakecam");
                snprintf((char *) c->card, sizeof c->card, "cvopt fake camera");
                snprintf((char *) c->bus_info, sizeof c->bus_info, "platform:fakecam");
                c->device_caps = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING;
                c->capabilities = c->device_caps | V4L2_CAP_DEVICE_CAPS;
                return 0;
        }
        case VIDIOC_ENUM_FMT: {
                struct v4l2_fmtdesc *d = arg;
                size_t list[ELEMENTSOF(formats)], n = 0;
                for (size_t i = 0; i < ELEMENTSOF(formats); i++)
                        if (cam.offer[i])
                                list[n++] = i;
                if (d->type != V4L2_BUF_TYPE_VIDEO_CAPTURE || d->index >= n)
                        return -EINVAL;
                uint32_t index = d->index;
                memset(d, 0, sizeof *d);
                d->index = index;
                d->type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
                d->pixelformat = formats[list[index]].fourcc;
                d->flags = d->pixelformat == V4L2_PIX_FMT_MJPEG ? V4L2_FMT_FLAG_COMPRESSED : 0;
                snprintf((char *) d->description, sizeof d->description, "%s", formats[list[index]].description);
                return 0;
        }
        case VIDIOC_G_FMT:
                fill_format(arg, cam.width, cam.height, cam.pixelformat);
                return 0;
        case VIDIOC_S_FMT:
        case VIDIOC_TRY_FMT: {
                struct v4l2_format *f = arg;
                /* As videobuf2: no new format while buffers of the old one exist. */
                if ((cam.streaming || cam.n_buffers > 0) && request == VIDIOC_S_FMT)
                        return -EBUSY;
                uint32_t w = CLAMP(f->fmt.pix.width, 16u, 1920u) & ~1u, h = CLAMP(f->fmt.pix.height, 16u, 1080u) & ~1u;
                /* Like real drivers: an unsupported format is replaced, not refused. */
                uint32_t pf = offered(f->fmt.pix.pixelformat) ? f->fmt.pix.pixelformat : first_offered();
                fill_format(f, w, h, pf);
                if (request == VIDIOC_S_FMT) {
                        cam.width = w, cam.height = h, cam.pixelformat = pf;
                        cam.bytes_per_line = f->fmt.pix.bytesperline;
                        cam.size_image = f->fmt.pix.sizeimage;
                }
                return 0;
        }
        case VIDIOC_S_PARM:
        case VIDIOC_G_PARM: {
                struct v4l2_streamparm *p = arg;
                if (request == VIDIOC_S_PARM && p->parm.capture.timeperframe.numerator)
                        cam.fps = p->parm.capture.timeperframe.denominator / p->parm.capture.timeperframe.numerator;
                if (cam.fps_env)
                        cam.fps = cam.fps_env;
                if (!cam.fps)
                        cam.fps = 30;
                memset(&p->parm, 0, sizeof p->parm);
                p->parm.capture.capability = V4L2_CAP_TIMEPERFRAME;
                p->parm.capture.timeperframe = (struct v4l2_fract) { 1, cam.fps };
                return 0;
        }
        case VIDIOC_REQBUFS: {
                struct v4l2_requestbuffers *r = arg;
                if (r->memory != V4L2_MEMORY_MMAP || cam.streaming)
                        return -EINVAL;
                free_buffers();
                if (r->count == 0)
                        return 0;
                r->count = CLAMP(r->count, 2u, (uint32_t) MAX_BUFFERS);
                size_t len = ALIGN_TO((size_t) cam.size_image, 4096);
                for (uint32_t i = 0; i < r->count; i++) {
                        void *m = real_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                        if (m == MAP_FAILED)
                                return -ENOMEM;
                        cam.buffers[i] = (Buffer) { .mem = m, .length = len };
                        cam.n_buffers = i + 1;
                }
                return 0;
        }
        case VIDIOC_QUERYBUF:
        case VIDIOC_QBUF: {
                struct v4l2_buffer *b = arg;
                if (b->index >= cam.n_buffers || b->memory != V4L2_MEMORY_MMAP)
                        return -EINVAL;
                Buffer *buf = &cam.buffers[b->index];
                if (request == VIDIOC_QBUF) {
                        if (buf->queued)
                                return -EINVAL;
                        buf->queued = true;
                        buf->done = false;
                        return 0;
                }
                b->length = (uint32_t) buf->length;
                b->m.offset = b->index * 0x1000000u;
                b->flags = (buf->queued ? V4L2_BUF_FLAG_QUEUED : 0) | (buf->done ? V4L2_BUF_FLAG_DONE : 0);
                return 0;
        }
        case VIDIOC_DQBUF: {
                struct v4l2_buffer *b = arg;
                Buffer *best = NULL;
                uint32_t index = 0, done = 0;
                for (uint32_t i = 0; i < cam.n_buffers; i++)
                        if (cam.buffers[i].done) {
                                done++;
                                if (!best || cam.buffers[i].ts.tv_sec < best->ts.tv_sec ||
                                    (cam.buffers[i].ts.tv_sec == best->ts.tv_sec && cam.buffers[i].ts.tv_usec < best->ts.tv_usec))
                                        best = &cam.buffers[i], index = i;
                        }
                if (done <= 1) {
                        uint64_t v;
                        (void) !read(cam.fd, &v, sizeof v);
                }
                if (!best)
                        return -EAGAIN;
                if (cam.eio_pending) {
                        cam.eio_pending = false;
                        best->done = false;
                        best->queued = true;
                        cam_log("eio");
                        return -EIO;
                }
                best->done = false;
                memset(b, 0, sizeof *b);
                b->type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
                b->memory = V4L2_MEMORY_MMAP;
                b->index = index;
                b->bytesused = best->bytes_used;
                b->length = (uint32_t) best->length;
                b->sequence = (uint32_t) best->sequence;
                b->timestamp = best->ts;
                b->flags = V4L2_BUF_FLAG_MAPPED | V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC;
                b->field = V4L2_FIELD_NONE;
                return 0;
        }
        case VIDIOC_STREAMON:
                if (cam.n_buffers == 0)
                        return -EINVAL;
                if (!cam.streaming) {
                        cam.streaming = true;
                        if (pthread_create(&cam.thread, NULL, producer, NULL) != 0)
                                return -EAGAIN;
                        cam.thread_running = true;
                }
                return 0;
        default:
                return -ENOTTY;
        }
}

int ioctl(int fd, unsigned long request, ...) {
        va_list ap;
        va_start(ap, request);
        void *arg = va_arg(ap, void *);
        va_end(ap);
        ensure_init();
        if (fd < 0 || fd != cam.fd)
                return real_ioctl(fd, request, arg);
        if (request == VIDIOC_STREAMOFF) {
                stop_streaming();
                if (cam.unplugged) {
                        errno = ENODEV;
                        return -1;
                }
                return 0;
        }
        pthread_mutex_lock(&cam.lock);
        int r = fake_ioctl_locked(request, arg);
        pthread_mutex_unlock(&cam.lock);
        if (r < 0) {
                errno = -r;
                return -1;
        }
        return 0;
}

static void *fake_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off, bool is64) {
        ensure_init();
        if (fd < 0 || fd != cam.fd)
                return is64 ? real_mmap64(addr, len, prot, flags, fd, off) : real_mmap(addr, len, prot, flags, fd, off);
        pthread_mutex_lock(&cam.lock);
        void *r = MAP_FAILED;
        uint64_t index = (uint64_t) off / 0x1000000u;
        if (cam.unplugged)
                errno = ENODEV;
        else if (off % 0x1000000u || index >= cam.n_buffers || len > cam.buffers[index].length)
                errno = EINVAL;
        else {
                cam.buffers[index].mapped = true;
                r = cam.buffers[index].mem;
        }
        pthread_mutex_unlock(&cam.lock);
        return r;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
        return fake_mmap(addr, len, prot, flags, fd, off, false);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
        return fake_mmap(addr, len, prot, flags, fd, off, true);
}

int munmap(void *addr, size_t len) {
        ensure_init();
        pthread_mutex_lock(&cam.lock);
        for (uint32_t i = 0; i < cam.n_buffers; i++)
                if (cam.buffers[i].mem == addr) {
                        /* The memory stays ours until REQBUFS(0) or close. */
                        cam.buffers[i].mapped = false;
                        pthread_mutex_unlock(&cam.lock);
                        return 0;
                }
        pthread_mutex_unlock(&cam.lock);
        return real_munmap(addr, len);
}

int poll(struct pollfd *fds, nfds_t n, int timeout) {
        ensure_init();
        int fake = -1;
        for (nfds_t i = 0; i < n; i++)
                if (fds[i].fd >= 0 && fds[i].fd == cam.fd)
                        fake = (int) i;
        if (fake >= 0 && cam.unplugged) {
                for (nfds_t i = 0; i < n; i++)
                        fds[i].revents = 0;
                fds[fake].revents = POLLERR | POLLHUP;
                return 1;
        }
        int r = real_poll(fds, n, timeout);
        if (r >= 0 && fake >= 0 && cam.unplugged) {
                if (!fds[fake].revents)
                        r++;
                fds[fake].revents = POLLERR | POLLHUP;
        }
        return r;
}

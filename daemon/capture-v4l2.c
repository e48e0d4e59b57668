/* SPDX-License-Identifier: MIT */
/* V4L2 capture: mmap streaming, the newest frame wins. Every value the
 * driver returns (sizes, indices, bytesused) is checked before use: a
 * buggy driver or a fake device must not make us read out of bounds. */

#include <errno.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "cvopt/errors.h"
#include "source.h"
#include "telemetry.h"

typedef struct V4l2Buffer {
        void *start;
        size_t length;
} V4l2Buffer;

typedef struct V4l2Source {
        Source base;
        int fd;
        V4l2Buffer buffers[32];
        uint32_t n_buffers;
        uint32_t bytes_per_line;
        bool full_range;
        bool streaming;
} V4l2Source;

static const struct {
        CameraFormat format;
        uint32_t fourcc;
} fourccs[] = {
        /* In the order "auto" prefers them: YUYV needs no decoding and is
         * what every UVC camera offers; MJPEG next, decoded at a reduced
         * scale; then the rest. */
        { CAMERA_FORMAT_YUYV, V4L2_PIX_FMT_YUYV },   { CAMERA_FORMAT_MJPEG, V4L2_PIX_FMT_MJPEG },
        { CAMERA_FORMAT_NV12, V4L2_PIX_FMT_NV12 },   { CAMERA_FORMAT_GREY, V4L2_PIX_FMT_GREY },
        { CAMERA_FORMAT_RGB24, V4L2_PIX_FMT_RGB24 },
};

static uint32_t format_fourcc(CameraFormat f) {
        for (size_t i = 0; i < ELEMENTSOF(fourccs); i++)
                if (fourccs[i].format == f)
                        return fourccs[i].fourcc;
        return 0;
}

static int xioctl(int fd, unsigned long request, void *arg) {
        int r;
        do
                r = ioctl(fd, request, arg);
        while (r < 0 && errno == EINTR);
        return r < 0 ? -errno : 0;
}

static void v4l2_stop(Source *s) {
        V4l2Source *v = (V4l2Source *) s;
        if (v->fd >= 0 && v->streaming) {
                enum v4l2_buf_type type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
                (void) xioctl(v->fd, VIDIOC_STREAMOFF, &type);
        }
        v->streaming = false;
        for (uint32_t i = 0; i < v->n_buffers; i++)
                if (v->buffers[i].start)
                        munmap(v->buffers[i].start, v->buffers[i].length);
        v->n_buffers = 0;
        if (v->fd >= 0) {
                struct v4l2_requestbuffers req = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP };
                (void) xioctl(v->fd, VIDIOC_REQBUFS, &req);
        }
        v->fd = safe_close(v->fd);
}

static int choose_format(V4l2Source *v, uint32_t *ret_fourcc) {
        const Conf *c = v->base.conf;
        if (c->camera_format != CAMERA_FORMAT_AUTO) {
                *ret_fourcc = format_fourcc(c->camera_format);
                return 0;
        }
        bool offered[ELEMENTSOF(fourccs)] = { 0 };
        for (uint32_t i = 0; i < 64; i++) {
                struct v4l2_fmtdesc d = { .index = i, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
                if (xioctl(v->fd, VIDIOC_ENUM_FMT, &d) < 0)
                        break;
                for (size_t k = 0; k < ELEMENTSOF(fourccs); k++)
                        if (fourccs[k].fourcc == d.pixelformat)
                                offered[k] = true;
        }
        for (size_t k = 0; k < ELEMENTSOF(fourccs); k++)
                if (offered[k]) {
                        *ret_fourcc = fourccs[k].fourcc;
                        return 0;
                }
        return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "%s offers none of YUYV, MJPEG, NV12, GREY, RGB24",
                               c->camera_device);
}

static int v4l2_start(Source *s) {
        V4l2Source *v = (V4l2Source *) s;
        const Conf *c = s->conf;
        const char *dev = c->camera_device;
        uint32_t fourcc = 0;
        int r;

        v->fd = open(dev, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (v->fd < 0)
                return cvopt_error_set(-errno, "%s: %s", dev, strerror(errno));

        struct v4l2_capability cap = { 0 };
        r = xioctl(v->fd, VIDIOC_QUERYCAP, &cap);
        if (r < 0) {
                v4l2_stop(s);
                return cvopt_error_set(r, "%s: not a V4L2 device: %s", dev, strerror(-r));
        }
        uint32_t caps = (cap.capabilities & V4L2_CAP_DEVICE_CAPS) ? cap.device_caps : cap.capabilities;
        if (!(caps & V4L2_CAP_VIDEO_CAPTURE) || !(caps & V4L2_CAP_STREAMING)) {
                v4l2_stop(s);
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "%s: no video capture with streaming I/O", dev);
        }

        r = choose_format(v, &fourcc);
        if (r < 0)
                goto fail;
        struct v4l2_format fmt = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
        fmt.fmt.pix.width = c->camera_width;
        fmt.fmt.pix.height = c->camera_height;
        fmt.fmt.pix.pixelformat = fourcc;
        fmt.fmt.pix.field = V4L2_FIELD_ANY;
        r = xioctl(v->fd, VIDIOC_S_FMT, &fmt);
        if (r < 0) {
                r = cvopt_error_set(r, "%s: VIDIOC_S_FMT: %s", dev, strerror(-r));
                goto fail;
        }
        CameraFormat got = _CAMERA_FORMAT_MAX;
        for (size_t k = 0; k < ELEMENTSOF(fourccs); k++)
                if (fourccs[k].fourcc == fmt.fmt.pix.pixelformat)
                        got = fourccs[k].format;
        if (got == _CAMERA_FORMAT_MAX || (c->camera_format != CAMERA_FORMAT_AUTO && got != c->camera_format)) {
                r = cvopt_error_set(-CVOPT_E_UNSUPPORTED, "%s: asked for %s, the camera gives format %.4s", dev,
                                    camera_format_name(c->camera_format == CAMERA_FORMAT_AUTO ? got : c->camera_format),
                                    (const char *) &fmt.fmt.pix.pixelformat);
                goto fail;
        }
        if (fmt.fmt.pix.width == 0 || fmt.fmt.pix.height == 0 || fmt.fmt.pix.width > 16384 || fmt.fmt.pix.height > 16384) {
                r = cvopt_error_set(-CVOPT_E_DATA, "%s: driver reports a %ux%u frame", dev, fmt.fmt.pix.width,
                                    fmt.fmt.pix.height);
                goto fail;
        }
        s->format = got;
        s->width = fmt.fmt.pix.width;
        s->height = fmt.fmt.pix.height;
        v->bytes_per_line = fmt.fmt.pix.bytesperline;
        if (v->bytes_per_line == 0 && got != CAMERA_FORMAT_MJPEG)
                v->bytes_per_line = s->width * (got == CAMERA_FORMAT_YUYV ? 2 : got == CAMERA_FORMAT_RGB24 ? 3 : 1);
        /* For YUV, a driver's default range follows the colorspace
         * (V4L2_MAP_QUANTIZATION_DEFAULT): full for JPEG, else limited. */
        v->full_range = fmt.fmt.pix.quantization == V4L2_QUANTIZATION_FULL_RANGE ||
                        (fmt.fmt.pix.quantization == V4L2_QUANTIZATION_DEFAULT &&
                         fmt.fmt.pix.colorspace == V4L2_COLORSPACE_JPEG);

        struct v4l2_streamparm parm = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
        parm.parm.capture.timeperframe = (struct v4l2_fract) { 1, c->camera_fps };
        s->fps = c->camera_fps;
        if (xioctl(v->fd, VIDIOC_S_PARM, &parm) == 0 && parm.parm.capture.timeperframe.numerator > 0)
                s->fps = (double) parm.parm.capture.timeperframe.denominator / parm.parm.capture.timeperframe.numerator;

        struct v4l2_requestbuffers req = { .count = c->camera_buffers, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
                                           .memory = V4L2_MEMORY_MMAP };
        r = xioctl(v->fd, VIDIOC_REQBUFS, &req);
        if (r < 0) {
                r = cvopt_error_set(r, "%s: VIDIOC_REQBUFS: %s", dev, strerror(-r));
                goto fail;
        }
        if (req.count < 2 || req.count > ELEMENTSOF(v->buffers)) {
                r = cvopt_error_set(-CVOPT_E_DATA, "%s: driver gave %u buffers", dev, req.count);
                goto fail;
        }
        for (uint32_t i = 0; i < req.count; i++) {
                struct v4l2_buffer b = { .index = i, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP };
                r = xioctl(v->fd, VIDIOC_QUERYBUF, &b);
                if (r < 0)
                        goto fail;
                void *p = mmap(NULL, b.length, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, b.m.offset);
                if (p == MAP_FAILED) {
                        r = cvopt_error_set(-errno, "%s: mmap buffer %u: %s", dev, i, strerror(errno));
                        goto fail;
                }
                v->buffers[i] = (V4l2Buffer) { .start = p, .length = b.length };
                v->n_buffers = i + 1;
                r = xioctl(v->fd, VIDIOC_QBUF, &b);
                if (r < 0)
                        goto fail;
        }
        enum v4l2_buf_type type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        r = xioctl(v->fd, VIDIOC_STREAMON, &type);
        if (r < 0) {
                r = cvopt_error_set(r, "%s: VIDIOC_STREAMON: %s", dev, strerror(-r));
                goto fail;
        }
        v->streaming = true;
        return 0;
fail:
        v4l2_stop(s);
        return r;
}

static int v4l2_next(Source *s, int wake_fd, uint64_t timeout_usec, Frame *ret_frame, uint64_t *ret_dropped) {
        V4l2Source *v = (V4l2Source *) s;
        struct pollfd p[2] = { { .fd = v->fd, .events = POLLIN }, { .fd = wake_fd, .events = POLLIN } };
        struct v4l2_buffer newest;
        bool have = false;
        uint64_t dropped = 0;

        *ret_dropped = 0;
        int r = poll(p, 2, (int) MIN((timeout_usec + 999) / 1000, (uint64_t) INT32_MAX));
        if (r < 0)
                return errno == EINTR ? 0 : -errno;
        if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL))
                return cvopt_error_set(-ENODEV, "%s: device gone", s->conf->camera_device);
        if (!(p[0].revents & POLLIN))
                return 0;

        for (;;) {
                struct v4l2_buffer b = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP };
                r = xioctl(v->fd, VIDIOC_DQBUF, &b);
                if (r == -EAGAIN)
                        break;
                if (r < 0) {
                        if (have)
                                (void) xioctl(v->fd, VIDIOC_QBUF, &newest);
                        return cvopt_error_set(r, "%s: VIDIOC_DQBUF: %s", s->conf->camera_device, strerror(-r));
                }
                if (b.index >= v->n_buffers) {
                        if (have)
                                (void) xioctl(v->fd, VIDIOC_QBUF, &newest);
                        return cvopt_error_set(-EIO, "%s: driver returned buffer %u of %u", s->conf->camera_device,
                                               b.index, v->n_buffers);
                }
                /* Newest frame wins: an older one goes straight back. Frames
                 * the driver flags as corrupt are dropped the same way. */
                if (have) {
                        (void) xioctl(v->fd, VIDIOC_QBUF, &newest);
                        dropped++;
                }
                if (b.flags & V4L2_BUF_FLAG_ERROR) {
                        (void) xioctl(v->fd, VIDIOC_QBUF, &b);
                        dropped++;
                        have = false;
                        continue;
                }
                newest = b;
                have = true;
        }
        *ret_dropped = dropped;
        if (!have)
                return 0;

        uint64_t ts = (uint64_t) newest.timestamp.tv_sec * 1000000u + (uint64_t) newest.timestamp.tv_usec;
        if ((newest.flags & V4L2_BUF_FLAG_TIMESTAMP_MASK) != V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC || ts == 0)
                ts = now_usec(CLOCK_MONOTONIC);
        *ret_frame = (Frame) {
                .format = s->format,
                .width = s->width,
                .height = s->height,
                .bytes_per_line = v->bytes_per_line,
                .data = v->buffers[newest.index].start,
                /* Never trust bytesused beyond the mapping. */
                .bytes_used = (uint32_t) MIN((size_t) newest.bytesused, v->buffers[newest.index].length),
                .sequence = newest.sequence,
                .ts_usec = ts,
                .truth = -1,
                .full_range = v->full_range,
                .index = newest.index,
        };
        return 1;
}

static void v4l2_release(Source *s, const Frame *f) {
        V4l2Source *v = (V4l2Source *) s;
        struct v4l2_buffer b = { .index = f->index, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP };
        /* A failure here (unplugged) shows up as an error of the next poll. */
        if (v->fd >= 0)
                (void) xioctl(v->fd, VIDIOC_QBUF, &b);
}

static void v4l2_describe(Source *s, char *buf, size_t size) {
        snprintf(buf, size, "%s, %ux%u %s at %.1f fps", s->conf->camera_device, s->width, s->height,
                 camera_format_name(s->format), s->fps);
}

static void v4l2_free(Source *s) {
        v4l2_stop(s);
        free(s);
}

static const SourceOps v4l2_ops = {
        .kind = "v4l2",
        .start = v4l2_start,
        .stop = v4l2_stop,
        .next = v4l2_next,
        .release = v4l2_release,
        .describe = v4l2_describe,
        .free = v4l2_free,
};

int source_new_v4l2(const Conf *conf, Source **ret_source) {
        V4l2Source *v = calloc(1, sizeof *v);
        if (!v)
                return -ENOMEM;
        v->base.ops = &v4l2_ops;
        v->base.conf = conf;
        v->fd = -EBADF;
        *ret_source = &v->base;
        return 0;
}

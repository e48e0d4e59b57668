/* SPDX-License-Identifier: MIT */
/* The replay source: items of a dataset (cvopt/dataset.h) become camera
 * frames of [camera] width x height in a real pixel format, paced at the
 * replay fps, so the whole pipeline (conversion, resize, inference,
 * publishing) runs as it would on a camera. */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvopt/dataset.h"
#include "cvopt/errors.h"
#include "source.h"
#include "telemetry.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptImage *, cvopt_image_free);

typedef struct ReplaySource {
        Source base;
        char *dataset_spec;
        uint32_t fps;
        bool loop;
        CvoptDataset *dataset;
        size_t next_index;
        uint64_t next_due_usec;
        uint8_t *frame;
        size_t frame_size;
        bool frame_busy;
} ReplaySource;

/* Splits "DATASET[,fps=N][,loop]": options are taken from the end, so a
 * dataset spec that itself has commas (idx:IMAGES,LABELS) stays whole. */
static int replay_parse(ReplaySource *r, const char *device) {
        _cleanup_free_ char *spec = strdup(device + strlen("replay:"));
        if (!spec)
                return -ENOMEM;
        r->fps = r->base.conf->camera_fps;
        for (;;) {
                char *comma = strrchr(spec, ',');
                if (!comma)
                        break;
                const char *opt = comma + 1;
                if (streq(opt, "loop"))
                        r->loop = true;
                else if (startswith(opt, "fps=")) {
                        char *end;
                        errno = 0;
                        unsigned long v = strtoul(opt + 4, &end, 10);
                        if (errno || *end || v < 1 || v > 1000)
                                return cvopt_error_set(-EINVAL, "camera device \"%s\": fps must be 1..1000", device);
                        r->fps = (uint32_t) v;
                } else
                        break;
                *comma = 0;
        }
        if (!*spec)
                return cvopt_error_set(-EINVAL, "camera device \"%s\": no dataset named", device);
        r->dataset_spec = TAKE_PTR(spec);
        return 0;
}

static int replay_start(Source *s) {
        ReplaySource *r = (ReplaySource *) s;
        const Conf *c = s->conf;
        size_t size;

        if (!r->dataset) {
                int k = cvopt_dataset_open(r->dataset_spec, &r->dataset);
                if (k < 0)
                        return cvopt_error_prefix(k, "replay: ");
        }
        s->format = c->camera_format == CAMERA_FORMAT_AUTO ? CAMERA_FORMAT_YUYV : c->camera_format;
        if (s->format == CAMERA_FORMAT_MJPEG)
                return cvopt_error_set(-EINVAL, "replay: format mjpeg is not synthesized; use yuyv, nv12, grey or rgb24");
        s->width = c->camera_width;
        s->height = c->camera_height;
        if (s->format == CAMERA_FORMAT_NV12 && (s->width % 2 || s->height % 2))
                return cvopt_error_set(-EINVAL, "replay: nv12 needs an even width and height");
        if (s->format == CAMERA_FORMAT_YUYV && s->width % 2)
                return cvopt_error_set(-EINVAL, "replay: yuyv needs an even width");
        s->fps = r->fps;
        size = (size_t) s->width * s->height;
        switch (s->format) {
        case CAMERA_FORMAT_YUYV: size *= 2; break;
        case CAMERA_FORMAT_NV12: size = size * 3 / 2; break;
        case CAMERA_FORMAT_RGB24: size *= 3; break;
        default: break;
        }
        free(r->frame);
        r->frame = malloc(size);
        if (!r->frame)
                return -ENOMEM;
        r->frame_size = size;
        r->next_due_usec = now_usec(CLOCK_MONOTONIC);
        return 0;
}

static void replay_stop(Source *s) {
        _unused_ ReplaySource *r = (ReplaySource *) s;
}

/* Nearest-neighbour stretch of the item to the frame, then conversion to
 * the frame format (full-range BT.601 for the YUV formats). Each item
 * pixel is converted once, each distinct frame row built once and copied
 * to the rows that repeat it: ~0.3 ms for 640x480, so the replay can run
 * at hundreds of fps. */
static int replay_render(ReplaySource *r, const CvoptImage *img) {
        Source *s = &r->base;
        uint32_t W = s->width, H = s->height;
        size_t n_item = (size_t) img->width * img->height;
        _cleanup_free_ uint8_t *yuv = malloc(ALIGN_TO(n_item * 3, sizeof(uint32_t)) + (size_t) W * sizeof(uint32_t));
        if (!yuv)
                return -ENOMEM;
        uint32_t *x_map = (uint32_t *) (void *) (yuv + ALIGN_TO(n_item * 3, sizeof(uint32_t)));
        for (size_t i = 0; i < n_item; i++) {
                const uint8_t *p = img->pixels + i * img->channels;
                uint8_t R = p[0], G = img->channels == 3 ? p[1] : p[0], B = img->channels == 3 ? p[2] : p[0];
                float Y = 0.299f * R + 0.587f * G + 0.114f * B;
                yuv[i * 3] = (uint8_t) CLAMP(lrintf(Y), 0, 255);
                yuv[i * 3 + 1] = (uint8_t) CLAMP(lrintf((B - Y) / 1.772f + 128.f), 0, 255);
                yuv[i * 3 + 2] = (uint8_t) CLAMP(lrintf((R - Y) / 1.402f + 128.f), 0, 255);
        }
        for (uint32_t x = 0; x < W; x++)
                x_map[x] = (uint32_t) (((uint64_t) x * img->width) / W);

        size_t line = (size_t) W * (s->format == CAMERA_FORMAT_YUYV ? 2 : s->format == CAMERA_FORMAT_RGB24 ? 3 : 1);
        uint8_t *uv_plane = r->frame + (size_t) W * H;
        uint32_t prev_sy = UINT32_MAX;
        for (uint32_t y = 0; y < H; y++) {
                uint32_t sy = (uint32_t) (((uint64_t) y * img->height) / H);
                uint8_t *out = r->frame + (size_t) y * line;
                if (sy == prev_sy && s->format != CAMERA_FORMAT_NV12) {
                        memcpy(out, out - line, line);
                        continue;
                }
                prev_sy = sy;
                const uint8_t *src_row = yuv + (size_t) sy * img->width * 3;
                const uint8_t *px_row = img->pixels + (size_t) sy * img->width * img->channels;
                for (uint32_t x = 0; x < W; x++) {
                        const uint8_t *q = src_row + (size_t) x_map[x] * 3;
                        switch (s->format) {
                        case CAMERA_FORMAT_YUYV:
                                out[x * 2] = q[0];
                                out[x * 2 + 1] = (x & 1) ? q[2] : q[1];
                                break;
                        case CAMERA_FORMAT_NV12:
                                out[x] = q[0];
                                if (!(x & 1) && !(y & 1)) {
                                        uv_plane[(size_t) (y / 2) * W + x] = q[1];
                                        uv_plane[(size_t) (y / 2) * W + x + 1] = q[2];
                                }
                                break;
                        case CAMERA_FORMAT_GREY:
                                out[x] = q[0];
                                break;
                        case CAMERA_FORMAT_RGB24: {
                                const uint8_t *p = px_row + (size_t) x_map[x] * img->channels;
                                out[x * 3] = p[0];
                                out[x * 3 + 1] = img->channels == 3 ? p[1] : p[0];
                                out[x * 3 + 2] = img->channels == 3 ? p[2] : p[0];
                                break;
                        }
                        default:
                                return -EINVAL;
                        }
                }
        }
        return 0;
}

static int replay_next(Source *s, int wake_fd, uint64_t timeout_usec, Frame *ret_frame, uint64_t *ret_dropped) {
        ReplaySource *r = (ReplaySource *) s;
        uint64_t interval_usec = 1000000u / r->fps;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        size_t count = cvopt_dataset_count(r->dataset);
        uint64_t dropped = 0;

        *ret_dropped = 0;
        if (r->next_index >= count && !r->loop)
                return -ENODATA;
        if (now < r->next_due_usec) {
                uint64_t wait = MIN(r->next_due_usec - now, timeout_usec);
                if (wait_wake_fd(wake_fd, wait) != 0 || now_usec(CLOCK_MONOTONIC) < r->next_due_usec)
                        return 0;
                now = now_usec(CLOCK_MONOTONIC);
        }
        /* Newest frame wins: items whose time passed while the pipeline
         * was busy are skipped, as a camera's would be overwritten. */
        while (now >= r->next_due_usec + interval_usec) {
                r->next_due_usec += interval_usec;
                r->next_index++;
                dropped++;
                if (r->next_index >= count) {
                        if (!r->loop)
                                break;
                        r->next_index = 0;
                }
        }
        if (r->next_index >= count) {
                if (!r->loop) {
                        *ret_dropped = dropped;
                        return -ENODATA;
                }
                r->next_index = 0;
        }

        _cleanup_(cvopt_image_freep) CvoptImage *img = NULL;
        int label = -1;
        int k = cvopt_dataset_get(r->dataset, r->next_index, &img, &label);
        if (k < 0)
                return cvopt_error_prefix(k, "replay item %zu: ", r->next_index);
        k = replay_render(r, img);
        if (k < 0)
                return k;

        *ret_frame = (Frame) {
                .format = s->format,
                .width = s->width,
                .height = s->height,
                .bytes_per_line = s->width * (s->format == CAMERA_FORMAT_YUYV ? 2 : s->format == CAMERA_FORMAT_RGB24 ? 3 : 1),
                .data = r->frame,
                .bytes_used = (uint32_t) r->frame_size,
                .sequence = r->next_index,
                /* Stamped when the frame is complete, as a driver does. */
                .ts_usec = now_usec(CLOCK_MONOTONIC),
                .truth = label,
                .full_range = true,
        };
        r->next_index++;
        if (r->next_index >= count && r->loop)
                r->next_index = 0;
        r->next_due_usec += interval_usec;
        *ret_dropped = dropped;
        return 1;
}

static void replay_release(Source *s, const Frame *f) {
        (void) s;
        (void) f;
}

static void replay_describe(Source *s, char *buf, size_t size) {
        ReplaySource *r = (ReplaySource *) s;
        snprintf(buf, size, "replay of %s (%zu items%s), %ux%u %s at %u fps", r->dataset_spec,
                 r->dataset ? cvopt_dataset_count(r->dataset) : (size_t) 0, r->loop ? ", looping" : "", s->width,
                 s->height, camera_format_name(s->format), r->fps);
}

static void replay_free(Source *s) {
        ReplaySource *r = (ReplaySource *) s;
        cvopt_dataset_free(r->dataset);
        free(r->dataset_spec);
        free(r->frame);
        free(r);
}

static const SourceOps replay_ops = {
        .kind = "replay",
        .start = replay_start,
        .stop = replay_stop,
        .next = replay_next,
        .release = replay_release,
        .describe = replay_describe,
        .free = replay_free,
};

int source_new_replay(const Conf *conf, Source **ret_source) {
        ReplaySource *r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        r->base.ops = &replay_ops;
        r->base.conf = conf;
        int k = replay_parse(r, conf->camera_device);
        if (k < 0) {
                replay_free(&r->base);
                return k;
        }
        *ret_source = &r->base;
        return 0;
}

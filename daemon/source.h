/* SPDX-License-Identifier: MIT */
#pragma once

/* A frame source: a V4L2 camera (capture-v4l2.c) or the replay of a
 * dataset (capture-replay.c). The worker thread alone uses a source. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "macro.h"

typedef struct Frame {
        CameraFormat format; /* never AUTO */
        uint32_t width, height;
        uint32_t bytes_per_line; /* of the first plane (Y for NV12) */
        const uint8_t *data;
        uint32_t bytes_used;
        uint64_t sequence;  /* driver sequence, or dataset index for replay */
        uint64_t ts_usec;   /* CLOCK_MONOTONIC capture time */
        int truth;          /* dataset label for replay, else -1 */
        bool full_range;    /* YUV formats: 0..255 (JPEG range) instead of 16..235 */
        uint32_t index;     /* source-private (buffer index) */
} Frame;

typedef struct Source Source;

typedef struct SourceOps {
        const char *kind;
        /* Opens the device and starts streaming. -ENOENT/-ENODEV/-EIO/...
         * while the camera is absent (retried), other errors are fatal
         * configuration errors (detail says why). */
        int (*start)(Source *s);
        void (*stop)(Source *s);
        /* Waits up to timeout_usec for a frame, also returning (0, no frame)
         * when wake_fd becomes readable. Returns 1 with the newest frame in
         * ret_frame (older ready frames are given back and counted in
         * *ret_dropped), 0 on timeout/wake, -ENODATA when a replay ended,
         * or -errno when the camera failed (lost). */
        int (*next)(Source *s, int wake_fd, uint64_t timeout_usec, Frame *ret_frame, uint64_t *ret_dropped);
        /* Gives a frame returned by next back to the source. */
        void (*release)(Source *s, const Frame *f);
        /* What the camera actually gave, after start. */
        void (*describe)(Source *s, char *buf, size_t size);
        void (*free)(Source *s);
} SourceOps;

struct Source {
        const SourceOps *ops;
        const Conf *conf;
        /* Negotiated, valid after start. */
        CameraFormat format;
        uint32_t width, height;
        double fps;
};

/* By conf->camera_device: "replay:..." or a device node. */
int source_new(const Conf *conf, Source **ret_source);
Source *source_free(Source *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Source *, source_free);

int source_new_replay(const Conf *conf, Source **ret_source);
int source_new_v4l2(const Conf *conf, Source **ret_source);

/* Waits until wake_fd is readable or timeout passes (replay pacing, and
 * the worker's waits while the camera is away). 1 if woken. */
int wait_wake_fd(int wake_fd, uint64_t timeout_usec);

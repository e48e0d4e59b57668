/* SPDX-License-Identifier: MIT */
#pragma once

/* Telemetry: counters and latency histograms. The worker records per-frame
 * numbers, the main loop reads them for status/stats/metrics; a mutex
 * guards both sides (held for a few hundred nanoseconds per frame). */

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

/* Log-linear histogram: for each power of two, 8 linear sub-buckets, so
 * any percentile is within 1/8 (12.5%, ~6% on average) of the true value.
 * 27 octaves cover 0 .. 2^29 us (~9 min); larger values go to the last bucket. */
#define HISTOGRAM_SUB_BUCKETS 8
#define HISTOGRAM_OCTAVES 27
#define HISTOGRAM_BUCKETS (HISTOGRAM_OCTAVES * HISTOGRAM_SUB_BUCKETS)

typedef struct Histogram {
        uint64_t count;
        uint64_t sum;
        uint64_t max;
        uint32_t buckets[HISTOGRAM_BUCKETS];
} Histogram;

void histogram_add(Histogram *h, uint64_t value);
/* q in 0..1: the upper bound of the bucket holding the q-quantile (0 if empty). */
uint64_t histogram_quantile(const Histogram *h, double q);

typedef enum Stage {
        STAGE_CAPTURE_WAIT, /* frame ready (driver timestamp) .. worker holds it */
        STAGE_PREPROCESS,   /* decode/convert/resize/normalize into the input */
        STAGE_INFERENCE,    /* engine run */
        STAGE_POSTPROCESS,  /* softmax, top-k, building the message */
        STAGE_PUBLISH,      /* worker hand-over .. queued to every subscriber (main loop) */
        STAGE_OVERHEAD,     /* everything per frame outside inference and capture wait */
        STAGE_TOTAL,        /* frame timestamp .. published */
        _STAGE_MAX,
} Stage;

const char *stage_name(Stage s);

typedef struct Telemetry {
        pthread_mutex_t lock;
        uint64_t frames_captured;
        uint64_t frames_classified;
        uint64_t frames_dropped;
        uint64_t frame_errors;
        uint64_t classify_requests;
        uint64_t cpu_usec_total; /* worker thread CPU spent on classified frames */
        uint64_t camera_reconnects;
        uint64_t camera_lost_events;
        uint64_t fallbacks;
        Histogram stages[_STAGE_MAX];
} Telemetry;

void telemetry_init(Telemetry *t);
void telemetry_done(Telemetry *t);

/* A consistent copy, taken under the lock. */
void telemetry_snapshot(Telemetry *t, Telemetry *ret_copy);

/* {"p50":..,"p90":..,"p99":..,"count":..,"max":..} */
json_t *histogram_to_json(const Histogram *h);

/* Resident set size of this process, from /proc/self/statm; 0 if unknown. */
uint64_t process_rss_bytes(void);

uint64_t now_usec(clockid_t clock);

/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "telemetry.h"

static const char *const stage_names[_STAGE_MAX] = {
        [STAGE_CAPTURE_WAIT] = "capture_wait", [STAGE_PREPROCESS] = "preprocess",
        [STAGE_INFERENCE] = "inference",       [STAGE_POSTPROCESS] = "postprocess",
        [STAGE_PUBLISH] = "publish",           [STAGE_OVERHEAD] = "overhead",
        [STAGE_TOTAL] = "total",
};

const char *stage_name(Stage s) {
        return s < _STAGE_MAX ? stage_names[s] : "?";
}

static unsigned histogram_bucket(uint64_t v) {
        if (v < HISTOGRAM_SUB_BUCKETS)
                return (unsigned) v; /* octave 0 holds 0..7 exactly */
        unsigned octave = 63 - __builtin_clzll(v); /* >= 3 */
        unsigned sub = (unsigned) (v >> (octave - 3)) & (HISTOGRAM_SUB_BUCKETS - 1);
        unsigned b = (octave - 2) * HISTOGRAM_SUB_BUCKETS + sub;
        return MIN(b, HISTOGRAM_BUCKETS - 1);
}

/* Largest value that falls into bucket b. */
static uint64_t histogram_bucket_upper(unsigned b) {
        if (b < HISTOGRAM_SUB_BUCKETS)
                return b;
        unsigned octave = b / HISTOGRAM_SUB_BUCKETS + 2;
        uint64_t sub = b % HISTOGRAM_SUB_BUCKETS;
        return ((HISTOGRAM_SUB_BUCKETS + sub + 1) << (octave - 3)) - 1;
}

void histogram_add(Histogram *h, uint64_t value) {
        h->buckets[histogram_bucket(value)]++;
        h->count++;
        h->sum += value;
        if (value > h->max)
                h->max = value;
}

uint64_t histogram_quantile(const Histogram *h, double q) {
        if (h->count == 0)
                return 0;
        /* Rank of the q-quantile, 1-based, rounded up (nearest-rank). */
        uint64_t rank = (uint64_t) (q * (double) h->count);
        if ((double) rank < q * (double) h->count)
                rank++;
        rank = CLAMP(rank, 1, h->count);
        uint64_t seen = 0;
        for (unsigned b = 0; b < HISTOGRAM_BUCKETS; b++) {
                seen += h->buckets[b];
                if (seen >= rank)
                        /* The last bucket also holds everything above its range. */
                        return b == HISTOGRAM_BUCKETS - 1 ? h->max : MIN(histogram_bucket_upper(b), h->max);
        }
        return h->max;
}

json_t *histogram_to_json(const Histogram *h) {
        return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "p50", (json_int_t) histogram_quantile(h, 0.50), "p90",
                         (json_int_t) histogram_quantile(h, 0.90), "p99", (json_int_t) histogram_quantile(h, 0.99),
                         "max", (json_int_t) h->max, "mean", (json_int_t) (h->count ? h->sum / h->count : 0),
                         "count", (json_int_t) h->count);
}

void telemetry_init(Telemetry *t) {
        memset(t, 0, sizeof *t);
        pthread_mutex_init(&t->lock, NULL);
}

void telemetry_done(Telemetry *t) {
        pthread_mutex_destroy(&t->lock);
}

void telemetry_snapshot(Telemetry *t, Telemetry *ret_copy) {
        pthread_mutex_lock(&t->lock);
        memcpy(ret_copy, t, sizeof *t);
        pthread_mutex_unlock(&t->lock);
        memset(&ret_copy->lock, 0, sizeof ret_copy->lock);
}

uint64_t process_rss_bytes(void) {
        unsigned long long size, resident;
        FILE *f = fopen("/proc/self/statm", "re");
        if (!f)
                return 0;
        int n = fscanf(f, "%llu %llu", &size, &resident);
        fclose(f);
        if (n != 2)
                return 0;
        return (uint64_t) resident * (uint64_t) sysconf(_SC_PAGESIZE);
}

uint64_t now_usec(clockid_t clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

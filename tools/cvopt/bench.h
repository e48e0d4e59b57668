/* SPDX-License-Identifier: MIT */
#pragma once

/* Latency of one inference (batch 1) on a backend: what `cvopt bench`
 * prints and what the optimizer's before/after table quotes. */

#include <stdint.h>

#include "cvopt/cvopt.h"

typedef struct BenchOptions {
        const char *backend; /* NULL: cpu */
        int threads;
        unsigned warmup_runs; /* not timed: caches, page faults, lazy init */
        unsigned runs;
        bool layers; /* per-node times (median over runs) */
} BenchOptions;

typedef struct BenchResult {
        double median_ms, p90_ms, min_ms, mean_ms;
        unsigned runs;
        uint64_t peak_rss_bytes; /* of this process, at the end */
        uint64_t activation_bytes;
        char backend[32];
        uint32_t n_nodes;
        double *node_median_ms; /* with options.layers: per graph node */
} BenchResult;

int bench_graph(const CvoptGraph *g, const BenchOptions *options, BenchResult *ret);
void bench_result_done(BenchResult *r);

/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "bench.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptSession *, cvopt_session_free);

static uint64_t now_nsec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * UINT64_C(1000000000) + (uint64_t) ts.tv_nsec;
}

static int compare_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return (x > y) - (x < y);
}

/* Value at fraction f of sorted values (nearest rank). */
static double quantile(const double *sorted, unsigned n, double f) {
        unsigned i = (unsigned) (f * (n - 1) + 0.5);

        return sorted[MIN(i, n - 1)];
}

void bench_result_done(BenchResult *r) {
        free(r->node_median_ms);
        r->node_median_ms = NULL;
}

int bench_graph(const CvoptGraph *g, const BenchOptions *options, BenchResult *ret) {
        _cleanup_(cvopt_session_freep) CvoptSession *s = NULL;
        const unsigned runs = MAX(options->runs, 1u);
        _cleanup_free_ double *times = calloc(runs, sizeof(double));
        _cleanup_free_ double *node_times = NULL;
        BenchResult result = {};
        struct rusage usage;
        double sum = 0;
        int r;

        if (!times)
                return -ENOMEM;
        r = cvopt_session_new(g,
                              &(CvoptSessionOptions) { .backend = options->backend, .threads = options->threads,
                                                       .profile = options->layers },
                              &s);
        if (r < 0)
                return r;
        /* A fixed, non-trivial input: timings of these kernels do not depend
         * on values, but all-zero inputs could hit shortcuts some day. */
        for (uint32_t i = 0; i < cvopt_session_n_inputs(s); i++) {
                CvoptTensor *in = cvopt_session_input(s, i);
                size_t bytes = cvopt_tensor_bytes(in);

                for (size_t k = 0; k < bytes; k++)
                        ((uint8_t *) in->data)[k] = (uint8_t) (k * 37 + 11);
                if (in->dtype == CVOPT_DTYPE_FLOAT32)
                        for (int64_t k = 0; k < cvopt_tensor_count(in); k++)
                                ((float *) in->data)[k] = (float) ((k * 37 + 11) % 255) / 255.0f;
        }
        if (options->layers) {
                node_times = calloc((size_t) g->n_nodes * runs + 1, sizeof(double));
                result.node_median_ms = calloc(g->n_nodes + 1u, sizeof(double));
                if (!node_times || !result.node_median_ms) {
                        free(result.node_median_ms);
                        return -ENOMEM;
                }
        }
        for (unsigned i = 0; i < options->warmup_runs; i++)
                if ((r = cvopt_session_run(s)) < 0)
                        goto fail;
        for (unsigned i = 0; i < runs; i++) {
                uint64_t start = now_nsec();

                if ((r = cvopt_session_run(s)) < 0)
                        goto fail;
                times[i] = (double) (now_nsec() - start) / 1e6;
                sum += times[i];
                if (node_times)
                        for (uint32_t k = 0; k < g->n_nodes; k++)
                                node_times[(size_t) k * runs + i] = (double) cvopt_session_node_time_nsec(s, k) / 1e6;
        }
        qsort(times, runs, sizeof(double), compare_double);
        result.runs = runs;
        result.median_ms = quantile(times, runs, 0.5);
        result.p90_ms = quantile(times, runs, 0.9);
        result.min_ms = times[0];
        result.mean_ms = sum / runs;
        result.activation_bytes = cvopt_session_activation_bytes(s);
        result.n_nodes = g->n_nodes;
        snprintf(result.backend, sizeof(result.backend), "%s", cvopt_session_backend_name(s));
        if (node_times)
                for (uint32_t k = 0; k < g->n_nodes; k++) {
                        qsort(node_times + (size_t) k * runs, runs, sizeof(double), compare_double);
                        result.node_median_ms[k] = quantile(node_times + (size_t) k * runs, runs, 0.5);
                }
        if (getrusage(RUSAGE_SELF, &usage) == 0)
                result.peak_rss_bytes = (uint64_t) usage.ru_maxrss * 1024;
        *ret = result;
        return 0;
fail:
        free(result.node_median_ms);
        return r;
}

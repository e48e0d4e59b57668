/* SPDX-License-Identifier: MIT */
#pragma once

/* Accuracy of a graph over a labelled set: top-1, top-5, per-class
 * accuracy and the confusion matrix. Samples come through a callback so
 * the same code evaluates any dataset (and the optimizer evaluates its
 * candidates exactly as `cvopt eval` does). */

#include <stddef.h>
#include <stdint.h>

#include "cvopt/cvopt.h"

/* Writes sample index's model input (input_count floats, planar) and its
 * label. Called from several threads at once, for different indices. */
typedef int (*EvalFetch)(void *userdata, size_t index, float *ret_input, size_t input_count, int *ret_label);
typedef void (*EvalProgress)(void *userdata, size_t done, size_t total);

typedef struct EvalOptions {
        const char *backend; /* NULL: cpu */
        unsigned threads;    /* sessions run in parallel; 0: one per core */
        EvalProgress progress;
        void *progress_userdata;
} EvalOptions;

typedef struct EvalResult {
        size_t n;
        uint32_t n_classes;
        uint64_t top1_correct, top5_correct;
        double top1, top5; /* percent */
        uint64_t *confusion; /* [true][predicted], n_classes^2 */
        uint64_t *class_count;
        double seconds, images_per_sec;
        uint32_t *predicted; /* per sample: the top-1 class */
} EvalResult;

int eval_graph(const CvoptGraph *g, size_t count, uint32_t n_classes, EvalFetch fetch, void *userdata,
               const EvalOptions *options, EvalResult *ret);
void eval_result_done(EvalResult *r);

/* Top-k class indices of scores, best first; ties go to the lower index so
 * results are deterministic. k <= n. */
void eval_top_k(const float *scores, uint32_t n, uint32_t k, uint32_t *ret_classes);

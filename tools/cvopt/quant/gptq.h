/* SPDX-License-Identifier: MIT */
#pragma once

/* GPTQ (Frantar et al., 2022): weight rounding that compensates each
 * rounding error with updates to the not-yet-rounded weights, using the
 * layer-input second moment H = E[x x^T] from calibration data. For a
 * depth above GPTQ_MAX_BLOCK, H is taken block-diagonal (blocks of
 * consecutive inputs), which keeps the cubic factorization affordable on a
 * small machine at the cost of ignoring correlations across blocks. */

#include <stddef.h>
#include <stdint.h>

#include "calibrate.h"
#include "cvopt/cvopt.h"

#define GPTQ_MAX_BLOCK 2048

typedef struct GptqHessian {
        uint32_t node;    /* float graph node */
        int64_t depth;    /* columns of the layer's [channels][depth] weights */
        int64_t block;    /* diagonal block size (== depth when exact) */
        double **blocks;  /* DIV_ROUND_UP(depth, block) upper-triangular sums of x x^T */
        uint64_t samples; /* input vectors summed */
        double *column_sum; /* [depth]: sum of each input, for means */
        /* Per block, U with (H + damping)^-1 = U^T U, computed on first use
         * and kept: the sensitivity analysis solves many layers' variants
         * against the same H. (So a GptqStats is not for concurrent use.) */
        double **inverse;
} GptqHessian;

typedef struct GptqStats {
        uint32_t n_layers;
        GptqHessian *layers;
} GptqStats;

GptqStats *gptq_stats_free(GptqStats *s);
void gptq_hessian_done(GptqHessian *h);

/* Collects H for every Conv (group 1), Gemm and MatMul with constant
 * weights for which want[node] is true (want NULL: all of them). */
int gptq_collect(const CvoptGraph *g, const bool *want, size_t n_samples, CalibrationFeed feed, void *userdata,
                 GptqStats **ret_stats);

const GptqHessian *gptq_find(const GptqStats *s, uint32_t node);

/* Rounds weights w [channels][depth] in place to the per-channel symmetric
 * grid of `bits` (scales from quantize_weights_per_channel on the original
 * weights), compensating errors with H. On return w holds grid values. */
int gptq_quantize(const GptqHessian *h, float *w, int64_t channels, unsigned bits);

/* Pruning inside the same OBS pass (SparseGPT, Frantar & Alistarh 2023). */
typedef struct ObsPrune {
        bool adaptive;   /* choose the mask during the pass, per batch of columns */
        double sparsity; /* unstructured: fraction removed */
        int n_keep;      /* N:M: keep n_keep of every m_group (0: unstructured) */
        int m_group;
} ObsPrune;

/* The general solver: bits 0 leaves values unrounded (pruning alone).
 * mask [channels][depth], 1 = removed: filled during the pass when
 * prune->adaptive, else read as a fixed mask (NULL: nothing removed).
 * Removed weights end exactly 0; the others carry the compensation. */
int obs_solve(const GptqHessian *h, float *w, int64_t channels, unsigned bits, const ObsPrune *prune, uint8_t *mask);

/* Lower-level pieces, exposed for tests: the upper-triangular U with
 * H^-1 = U^T U, for a dense symmetric positive definite n x n matrix
 * (row-major, overwritten). */
int gptq_inverse_cholesky_upper(double *h, int64_t n);

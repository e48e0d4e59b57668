/* SPDX-License-Identifier: MIT */
#pragma once

/* Activation statistics from calibration samples run through the float
 * graph, and the choice of each tensor's quantization range from them. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvopt/cvopt.h"

/* 2048 bins: the resolution TensorRT's entropy calibration uses; finer than
 * the 256 output levels by 8x so that clipping thresholds can be placed
 * between levels. */
#define CALIBRATION_BINS 2048

typedef struct TensorStats {
        bool seen;
        float min, max;
        uint64_t count;
        uint64_t *histogram; /* CALIBRATION_BINS over [min, max] */
        /* Per-channel (dim 1) means, for bias correction of the layers that
         * read this tensor. */
        uint32_t channels;
        double *channel_sum;
        uint64_t channel_count; /* values summed into each channel */
} TensorStats;

typedef struct CalibrationStats {
        uint32_t n_tensors; /* parallel to the graph's tensors */
        TensorStats *tensors;
        size_t n_samples;
} CalibrationStats;

/* Fills the graph's (single) input tensor for sample i. */
typedef int (*CalibrationFeed)(void *userdata, size_t sample, CvoptTensor *input);
/* Told after each sample of each pass; may print progress. */
typedef void (*CalibrationProgress)(void *userdata, unsigned pass, size_t done, size_t total);

/* Two passes over n_samples: ranges, then histograms within them. */
int calibration_collect(const CvoptGraph *g, size_t n_samples, CalibrationFeed feed, CalibrationProgress progress,
                        void *userdata, CalibrationStats **ret_stats);
CalibrationStats *calibration_stats_free(CalibrationStats *s);

typedef enum CalibrationMethod {
        CALIBRATION_MINMAX,
        CALIBRATION_PERCENTILE,
        CALIBRATION_MSE,
        CALIBRATION_ENTROPY,
        CALIBRATION_AUTO, /* per tensor, whichever of the others gives the least MSE */
        _CALIBRATION_MAX,
} CalibrationMethod;

const char *calibration_method_name(CalibrationMethod m);
int calibration_method_from_name(const char *name); /* method or -EINVAL */

/* Range [lo, hi] for a tensor, always containing 0 so that zero padding is
 * exact. */
int calibration_choose_range(const TensorStats *s, CalibrationMethod m, float *ret_lo, float *ret_hi);

/* Asymmetric uint8 parameters for a range. */
void calibration_range_to_quant(float lo, float hi, float *ret_scale, int32_t *ret_zero_point);

/* Expected squared quantization error of a tensor for a range, from its
 * histogram (used by MSE and AUTO, and reported). */
double calibration_range_mse(const TensorStats *s, float lo, float hi);

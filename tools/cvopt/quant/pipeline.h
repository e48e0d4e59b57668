/* SPDX-License-Identifier: MIT */
#pragma once

/* The quantization pipeline on a float model: calibrate, optionally GPTQ,
 * quantize, check. What `cvopt optimize` runs between its "before" and
 * "after" evaluations. */

#include "calibrate.h"
#include "cvopt/cvopt.h"
#include "quantize.h"

typedef struct PipelineOptions {
        QuantizeOptions quantize;
        bool gptq;               /* error-compensating rounding for the weights */
        size_t gptq_samples;     /* calibration samples for the Hessians (0: all) */
        CalibrationProgress progress;
        /* Already collected on this float graph: reused instead of running
         * the calibration samples again (NULL: collect). */
        const CalibrationStats *calibration;
        /* Layer Hessians for GPTQ, already collected on this graph (NULL: collect). */
        const struct GptqStats *hessians;
} PipelineOptions;

/* float_model's graph must be optimized (cvopt_graph_optimize). Writes a new
 * model with the quantized graph and float_model's input spec and labels. */
int pipeline_quantize(const CvoptModel *float_model, size_t n_calibration, CalibrationFeed feed, void *userdata,
                      const PipelineOptions *options, CvoptModel **ret_model, QuantizeReport **ret_report);

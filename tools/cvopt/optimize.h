/* SPDX-License-Identifier: MIT */
#pragma once

/* `cvopt optimize` after argument parsing: measures the float model, runs
 * the quantization pipeline, writes the .cvm, measures it the same way,
 * and fills the report. */

#include "cvopt/cvopt.h"
#include "prune/prune.h"
#include "quant/pipeline.h"
#include "report.h"

typedef struct OptimizeArgs {
        const char *source_path; /* the float model file, for its size on disk */
        const char *output_path;
        const char *calib_spec, *val_spec;
        size_t calib_count;      /* calibration images drawn from calib_spec */
        size_t val_limit;        /* 0: the whole validation set */
        size_t train_sample;     /* training-split top-1 on this many images (0: skip) */
        uint64_t seed;
        const char *backend;
        unsigned bench_runs;
        PipelineOptions pipeline;
        const PruneSpec *prune;  /* NULL: no pruning */
        int equalize;            /* cross-layer equalization: 1 on, 0 off, -1 when the net has depthwise convs */
        /* Targets (NAN / 0: not stated). With any of them, the per-layer
         * bits and sparsity come from the sensitivity search. */
        double max_drop, min_size_reduction_pct, min_speedup_pct;
        uint64_t target_size;
        size_t analysis_count;   /* held-out training images for the sensitivity table */
        bool compare;            /* also measure the baseline of each method: plain rounding for GPTQ,
                                  * magnitude for OBS pruning (report variants) */
        bool progress;           /* progress lines on stderr */
} OptimizeArgs;

/* float_model: optimized float graph with its input spec. */
/* A deep copy of a model (graph, input spec, labels). */
int model_clone(const CvoptModel *m, CvoptModel **ret_copy);

bool optimize_has_targets(const OptimizeArgs *args);

/* Writes args->output_path, and hands back the written model (for the
 * caller to add provenance and save again). */
int optimize_run(const CvoptModel *float_model, const OptimizeArgs *args, OptimizeReport *ret_report,
                 QuantizeReport **ret_layers, CvoptModel **ret_model);

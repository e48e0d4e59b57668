/* SPDX-License-Identifier: MIT */
#pragma once

/* The optimizer's report: the classic before/after table (size on disk,
 * latency, validation top-1/top-5, training-split top-1 on a sample) and
 * the per-layer table, as Markdown (for people) and JSON (for scripts). */

#include <jansson.h>
#include <stdio.h>

#include "quant/quantize.h"

typedef struct ModelNumbers {
        const char *path;
        uint64_t size_bytes;
        double latency_ms, latency_p90_ms;
        char backend[32];
        double top1, top5;
        size_t n_val;
        double train_top1;
        size_t n_train;
} ModelNumbers;

/* An extra measured variant, e.g. plain rounding vs GPTQ at 4 bits. */
typedef struct ReportVariant {
        char name[64];
        double top1, top5;
        uint64_t size_bytes;
} ReportVariant;

typedef struct TargetResult {
        const char *name;   /* "max_drop", ... */
        double bound, value;
        bool met;
} TargetResult;

typedef struct OptimizeReport {
        const char *source;
        const char *val_spec, *calib_spec, *train_spec;
        size_t n_calibration;
        char settings[256]; /* "int8, calibration mse, bias correction" */
        ModelNumbers before, after;
        const QuantizeReport *layers;
        ReportVariant variants[8];
        unsigned n_variants;
        char summary[2048]; /* "what was done", in plain words */
        TargetResult targets[4];
        unsigned n_targets;
        bool all_targets_met;
        char targets_missed[512];
        double seconds;
} OptimizeReport;

void report_write_table(const OptimizeReport *r, FILE *f);    /* the before/after table only */
void report_write_markdown(const OptimizeReport *r, FILE *f); /* everything */
json_t *report_to_json(const OptimizeReport *r);

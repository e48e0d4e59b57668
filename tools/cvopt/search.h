/* SPDX-License-Identifier: MIT */
#pragma once

/* Per-layer sensitivity analysis, and the search for per-layer weight bits
 * and sparsity that meets the targets a user states. */

#include <math.h>

#include "data-source.h"
#include "quant/pipeline.h"

/* What each weighted layer may become. 8-bit dense first: the baseline. */
typedef struct LayerChoice {
        unsigned bits;
        double sparsity; /* OBS (SparseGPT) unstructured */
} LayerChoice;

#define SEARCH_CHOICES 6
extern const LayerChoice search_choices[SEARCH_CHOICES];

typedef struct Sensitivity {
        uint32_t n_layers;
        uint32_t *nodes;      /* float graph node of each layer */
        char **names;
        uint64_t *weights;    /* weight count of each layer */
        double float_top1;    /* on the analysis set */
        double base_top1;     /* every layer at 8 bits, dense */
        double *top1;         /* [layer][choice]: only that layer changed */
        uint64_t *bytes;      /* [layer][choice]: estimated stored bytes */
        size_t n_eval;
} Sensitivity;

void sensitivity_done(Sensitivity *s);

typedef struct SearchContext {
        const CvoptModel *float_model;
        DataSource *calib;       /* calibration images */
        DataSource *analysis;    /* held-out training images, for the sensitivity table */
        uint32_t n_classes;
        CalibrationMethod calibration;
        const char *backend;
        bool progress;
} SearchContext;

int sensitivity_analyze(const SearchContext *c, Sensitivity *ret);

/* A candidate: per node of the float graph, weight bits (0: not a layer)
 * and OBS sparsity. */
typedef struct Plan {
        uint8_t *node_bits;
        double *node_sparsity;
        uint64_t estimated_bytes;
        double estimated_drop;
} Plan;

void plan_done(Plan *p);

/* Knapsack over the table: the choices with the fewest bytes whose summed
 * sensitivities (drops against the float model) stay within drop_budget
 * points. -ENOSPC if even all-8-bit exceeds it. */
int search_plan(const Sensitivity *s, uint32_t n_nodes, double drop_budget, Plan *ret);

/* Builds the model a plan describes: prunes a copy of the float model,
 * then quantizes it with the planned bits (GPTQ for layers under 8 bits). */
int search_build(const SearchContext *c, const Plan *p, CvoptModel **ret_model, QuantizeReport **ret_report);

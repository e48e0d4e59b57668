/* SPDX-License-Identifier: MIT */
#pragma once

/* Post-training pruning of a float graph's weighted layers, before
 * quantization: `magnitude` (the baseline), `obs` (SparseGPT: OBS
 * reconstruction from layer Hessians), both unstructured or N:M, and
 * `channel` (structured: whole output channels removed, the next layer
 * refit by least squares; see prune-channel.c). */

#include <stdbool.h>
#include <stdint.h>

#include "cvopt/cvopt.h"
#include "quant/calibrate.h"
#include "quant/gptq.h"

typedef enum PruneMethod {
        PRUNE_MAGNITUDE,
        PRUNE_OBS,
        PRUNE_CHANNEL,
} PruneMethod;

typedef struct PruneSpec {
        PruneMethod method;
        double amount;  /* fraction of weights (or channels) removed, 0..1 */
        int n_keep;     /* N:M structure: keep n_keep of every m_group (0: unstructured) */
        int m_group;
        bool global;    /* magnitude: one threshold across layers instead of per layer */
} PruneSpec;

/* "magnitude:0.5", "magnitude:0.5:global", "obs:0.5", "obs:2:4",
 * "magnitude:2:4", "channel:0.25". */
int prune_spec_parse(const char *text, PruneSpec *ret);
const char *prune_method_name(PruneMethod m);
/* "obs 50%", "magnitude 2:4" */
char *prune_spec_name(const PruneSpec *s, char *buf, size_t size);

typedef struct PruneLayer {
        uint32_t node;
        uint64_t weights, zeros;   /* after pruning */
        uint64_t channels_before, channels_after;
} PruneLayer;

typedef struct PruneResult {
        uint32_t n_layers;
        PruneLayer *layers;
} PruneResult;

void prune_result_done(PruneResult *r);

/* Prunes g in place. node_amount (optional, per node, < 0: default) sets
 * per-layer amounts; by default the first and last weighted layers are
 * left dense (few weights, most sensitive). OBS and channel pruning run
 * the calibration samples through g for the layer statistics. */
int prune_graph(CvoptGraph *g, const PruneSpec *spec, const double *node_amount, size_t n_calibration,
                CalibrationFeed feed, void *userdata, PruneResult *ret);

/* The same with OBS Hessians already collected on g (for the sensitivity
 * analysis, which prunes one layer at a time from the same float graph). */
int prune_graph_with(CvoptGraph *g, const PruneSpec *spec, const double *node_amount, const GptqStats *hessians,
                     PruneResult *ret);

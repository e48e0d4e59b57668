/* SPDX-License-Identifier: MIT */
#pragma once

/* Post-training quantization of a float graph (docs/quantization.md):
 * per-output-channel symmetric int8 (or int4) weights, per-tensor
 * asymmetric uint8 activations with calibrated ranges, int32 biases with
 * optional bias correction, and float islands (with explicit
 * Quantize/Dequantize) for every op that has no int8 kernel. */

#include <stdbool.h>
#include <stdint.h>

#include "calibrate.h"
#include "cvopt/cvopt.h"

typedef struct QuantizeOptions {
        CalibrationMethod calibration;
        unsigned weight_bits;  /* 8, or 4 for w4a8 */
        bool keep_edges_8bit;  /* with 4-bit weights: first, last and depthwise layers stay at 8 */
        bool bias_correction;  /* subtract the expected output shift the weight rounding causes */
        /* Optional per-node weight bits (index = float graph node; 0 = default,
         * 32 = keep the layer in float). */
        const uint8_t *node_bits;
        /* Optional replacement weights for layers, already rounded to the
         * grid of their scales by an error-compensating method (GPTQ):
         * index = float graph node, NULL = plain rounding. */
        float *const *node_weights;
} QuantizeOptions;

typedef struct LayerReport {
        char *name;
        const char *op;        /* of the float node */
        unsigned bits;         /* weight bits, 32 if left in float */
        uint64_t params;       /* weights + biases */
        uint64_t bytes;        /* as stored: packed weights, int32 bias, scales */
        double weight_sqnr_db; /* of the quantized weights against the float ones */
        double sparsity;       /* fraction of weights that are 0 after quantization */
        char *note;            /* why it stayed float, or NULL */
} LayerReport;

typedef struct QuantizeReport {
        uint32_t n_layers;
        LayerReport *layers;
        uint32_t n_float_ops; /* ops left in float (islands) */
        char *float_ops;      /* "Softmax x1, ..." */
} QuantizeReport;

QuantizeReport *quantize_report_free(QuantizeReport *r);

/* float_graph: optimized (BN folded, activations fused, shapes known),
 * stats from calibration_collect() on that graph. */
int quantize_graph(const CvoptGraph *float_graph, const CalibrationStats *stats, const QuantizeOptions *options,
                   CvoptGraph **ret_graph, QuantizeReport **ret_report);

/* Conv, Gemm or MatMul with constant float weights: what gets quantized
 * per channel. */
bool quantize_is_layer(const CvoptGraph *g, const CvoptNode *n);

/* Weight bits for layer node k under o: the per-node override, else 8 for
 * the first/last/depthwise layers when keep_edges_8bit, else weight_bits. */
unsigned quantize_layer_bits(const CvoptGraph *g, const QuantizeOptions *o, uint32_t k);

/* A copy of a Conv/Gemm/MatMul node's weights as [channels][depth] (the
 * layout QuantizeOptions.node_weights and GPTQ use). */
int quantize_layer_weights(const CvoptGraph *g, uint32_t node_index, float **ret_weights, int64_t *ret_channels,
                           int64_t *ret_depth);

/* Writes weights [channels][depth] back into the node's weight tensor (in
 * its own layout), into a newly allocated buffer. */
int quantize_layer_store_weights(CvoptGraph *g, uint32_t node_index, const float *weights);
/* The same with a new shape: channels x depth (a conv keeps its kernel
 * window, so depth must be a multiple of it). */
int quantize_layer_replace_weights(CvoptGraph *g, uint32_t node_index, const float *weights, int64_t channels,
                                   int64_t depth);

/* Per-channel symmetric weight quantization of a [channels, depth] matrix
 * to bits (2..8): scale = max|w| / (2^(bits-1) - 1). */
void quantize_weights_per_channel(const float *w, int64_t channels, int64_t depth, unsigned bits, int8_t *ret_q,
                                  float *ret_scale);

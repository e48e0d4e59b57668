/* SPDX-License-Identifier: MIT */
#pragma once

/* Cross-layer equalization (Nagel et al. 2019, "Data-Free Quantization
 * Through Weight Equalization and Bias Correction"): for a Conv A whose
 * output reaches Conv B only through positively homogeneous ops (ReLU,
 * LeakyReLU, max/average pooling), output channel i of A is divided by
 * s_i and input channel i of B multiplied by s_i, with
 * s_i = sqrt(range_A(i) / range_B(i)). The float function is unchanged;
 * the per-channel weight ranges of both layers become equal, which is
 * what per-channel int8 of depthwise layers (one channel, 9 weights, wild
 * ranges after BN folding) needs. ReLU6/Clip is not homogeneous, so a
 * fused Clip stops a pair. */

#include "cvopt/cvopt.h"

/* Equalizes every such pair of g, iterating (a chain A→B→C is solved by
 * alternating) iterations times. Returns the number of pairs equalized. */
int equalize_graph(CvoptGraph *g, unsigned iterations);

/* True if g has a depthwise convolution (the default turns equalization
 * on for those). */
bool graph_has_depthwise(const CvoptGraph *g);

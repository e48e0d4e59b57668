/* SPDX-License-Identifier: MIT */
#pragma once

/* The scalar fp32 reference operators: the oracle every other kernel is
 * tested against. One entry per CvoptOp, each with a shape function (used
 * by shape inference and constant folding) and a run function (used by the
 * executor's CPU reference backend). */

#include "cvopt/graph.h"

typedef struct RefOp {
        /* Sets dtype, ndim, dims and has_shape of every output of n, from its
         * inputs' shapes and, where an op needs them (Reshape's shape,
         * Unsqueeze's axes, Gather's indices...), the data of constant inputs.
         * Unsupported attributes or inputs fail with -CVOPT_E_UNSUPPORTED and
         * detail naming the op, node and reason. */
        int (*infer)(CvoptGraph *g, CvoptNode *n);
        /* Computes the outputs. Every present input has data and shape; every
         * output has its shape set and a buffer of cvopt_tensor_bytes().
         * Absent optional inputs are NULL. Outputs may share the buffer of
         * a same-shaped input (in place) only for the element-wise ops:
         * the activations, PRelu, Add/Sub/Mul/Div (with the non-broadcast
         * operand), BatchNormalization, Softmax, and the copies (Identity,
         * Dropout, Reshape, Flatten, Squeeze, Unsqueeze). */
        int (*run)(const CvoptNode *n, const CvoptTensor *const *inputs, CvoptTensor *const *outputs);
} RefOp;

/* NULL for an op with no reference implementation. */
const RefOp *ref_op_lookup(CvoptOp op);

/* Applies the activation fused into n by cvopt_graph_fuse_activations()
 * (attribute "activation": Relu, Clip, LeakyRelu, HardSwish, Sigmoid,
 * HardSigmoid, Tanh) to count values in place. */
void ref_apply_fused_activation(const CvoptNode *n, float *values, size_t count);

/* SPDX-License-Identifier: MIT */
#pragma once

/* Helpers shared by the reference operator files (ref-*.c): attribute
 * access with type checks, shape utilities (axis normalization,
 * broadcasting) and the per-op entry points the table in ref-ops.c lists.
 * Not part of the engine's interface: other code uses ref-ops.h. */

#include <stdbool.h>
#include <stdint.h>

#include "cvopt/errors.h"
#include "cvopt/graph.h"
#include "macro.h"
#include "ref-ops.h"

/* Every error of an operator names the node and the op, so that a user
 * reading "node 'conv3' (Conv): ..." finds the layer in their model. */
#define ref_fail(err, n, fmt, ...)                                                                   \
        cvopt_error_set((err), "node '%s' (%s): " fmt, (n)->name, cvopt_op_name((n)->op), ##__VA_ARGS__)

/* Checks the number of input and output slots of n. */
int ref_check_arity(const CvoptNode *n, uint32_t min_inputs, uint32_t max_inputs, uint32_t min_outputs,
                    uint32_t max_outputs);

/* The input at slot, which must be present and have a known shape. */
int ref_input(const CvoptGraph *g, const CvoptNode *n, uint32_t slot, CvoptTensor **ret);

/* The input at slot, or NULL (returning 0) when it is absent. */
int ref_input_optional(const CvoptGraph *g, const CvoptNode *n, uint32_t slot, CvoptTensor **ret);

/* Requires t to have dtype. */
int ref_check_dtype(const CvoptNode *n, const CvoptTensor *t, CvoptDType dtype, const char *what);

/* Sets dtype and shape of output slot of n. */
int ref_set_output(CvoptGraph *g, const CvoptNode *n, uint32_t slot, CvoptDType dtype, uint32_t ndim,
                   const int64_t *dims);

/* Fails unless only output slot 0 is in use (optional extra outputs such as
 * Dropout's mask or MaxPool's indices are not supported). */
int ref_check_single_output(const CvoptNode *n);

/* Maps axis in [-rank, rank) to [0, rank). */
int ref_normalize_axis(const CvoptNode *n, int64_t axis, uint32_t rank, uint32_t *ret);

/* Typed attribute getters: a present attribute of the wrong type fails
 * with -CVOPT_E_UNSUPPORTED instead of silently using the default. */
int ref_attr_int(const CvoptNode *n, const char *name, int64_t default_value, int64_t *ret);
int ref_attr_float(const CvoptNode *n, const char *name, float default_value, float *ret);
int ref_attr_string(const CvoptNode *n, const char *name, const char *default_value, const char **ret);
/* Copies up to max values; returns the count, or 0 when absent
 * (*ret_present tells an empty list from an absent one). */
int ref_attr_ints(const CvoptNode *n, const char *name, uint32_t max, int64_t *values, bool *ret_present);

/* numpy-style multidirectional broadcast of the shapes of a and b. */
int ref_broadcast_shape(const CvoptNode *n, const CvoptTensor *a, const CvoptTensor *b, uint32_t *ret_ndim,
                        int64_t *dims);

/* Element count of a tensor whose shape was checked by infer (never
 * negative there); 0 for a tensor whose count overflows. */
size_t ref_count(const CvoptTensor *t);

/* Product of dims[begin..end). */
size_t ref_dims_product(const int64_t *dims, uint32_t begin, uint32_t end);

/* Checks that out has the dtype and shape infer gave it, so that run never
 * writes past a buffer sized from a stale shape. */
int ref_check_output_shape(const CvoptNode *n, const CvoptTensor *out, CvoptDType dtype, uint32_t ndim,
                           const int64_t *dims);

/* gcc 12 at -O2 vectorizes only loops with a known trip count (its "very
 * cheap" cost model refuses loops that need a scalar epilogue), so hot
 * loops over a runtime count are written as fixed 8-wide blocks plus a
 * scalar tail. */
#define REF_BLOCK 8

/* Runs the statement (the rest of the arguments) for i in [0, count) as
 * such blocks and a tail. The block loop counts from 0 to REF_BLOCK: a
 * bound of start + REF_BLOCK could wrap, which hides the trip count. */
#define REF_BLOCKED_LOOP(i, count, ...)                                              \
        do {                                                                        \
                size_t _ref_n = (count), _ref_start = 0;                            \
                for (; _ref_start + REF_BLOCK <= _ref_n; _ref_start += REF_BLOCK)  \
                        for (size_t _ref_j = 0; _ref_j < REF_BLOCK; _ref_j++) {     \
                                size_t i = _ref_start + _ref_j;                     \
                                __VA_ARGS__;                                        \
                        }                                                           \
                for (size_t i = _ref_start; i < _ref_n; i++)                        \
                        __VA_ARGS__;                                                \
        } while (0)

/* y[i] += a * x[i] for i < count. */
static inline void ref_axpy(size_t count, float a, const float *restrict x, float *restrict y) {
        size_t i = 0;

        for (; i + REF_BLOCK <= count; i += REF_BLOCK)
                for (size_t j = 0; j < REF_BLOCK; j++)
                        y[i + j] += a * x[i + j];
        for (; i < count; i++)
                y[i] += a * x[i];
}

/* Activations, both as operators and fused into Conv/Gemm/MatMul. */
typedef enum RefActivationKind {
        REF_ACTIVATION_NONE,
        REF_ACTIVATION_RELU,
        REF_ACTIVATION_CLIP,
        REF_ACTIVATION_LEAKY_RELU,
        REF_ACTIVATION_HARD_SWISH,
        REF_ACTIVATION_SIGMOID,
        REF_ACTIVATION_HARD_SIGMOID,
        REF_ACTIVATION_TANH,
} RefActivationKind;

typedef struct RefActivation {
        RefActivationKind kind;
        float min, max;     /* Clip */
        float alpha, beta;  /* LeakyRelu alpha; HardSigmoid alpha, beta */
} RefActivation;

/* Reads the fused activation attributes of n (kind NONE when absent). */
int ref_fused_activation_parse(const CvoptNode *n, RefActivation *ret);
void ref_activation_apply(const RefActivation *act, float *values, size_t count);

/* C[i, j] (ldc) = (accumulate ? C[i, j] : 0) + alpha * sum_k A(i, k) B(k, j), where
 * A(i, k) = a[i * a_row + k * a_col] and B(k, j) = b[k * b_row + j * b_col]:
 * arbitrary strides let Gemm's transposes go through the same code. */
int ref_sgemm(size_t m, size_t n, size_t k, float alpha, const float *a, size_t a_row, size_t a_col,
              const float *b, size_t b_row, size_t b_col, float *c, size_t ldc, bool accumulate);

/* Geometry of a sliding window (Conv, MaxPool, AveragePool) over 1 to 3
 * spatial dims. The spatial dims sit at the END of the 3-slot arrays; the
 * leading unused slots describe a size-1 window over a size-1 dim, so the
 * loops are always 3-D. */
typedef struct RefWindow {
        uint32_t spatial;
        int64_t in[3], kernel[3], stride[3], dilation[3], pad_begin[3], pad_end[3], out[3];
} RefWindow;

/* Reads strides, dilations (if allowed), pads, auto_pad and ceil_mode (if
 * allowed) of n for input x ([N, C, spatial...]) and kernel (one size per
 * spatial dim), and computes the output size as ONNX does. */
int ref_window_params(const CvoptNode *n, const CvoptTensor *x, const int64_t *kernel, bool allow_ceil,
                      bool allow_dilations, RefWindow *ret);

#define REF_DECLARE_OP(name)                                                                          \
        int ref_##name##_infer(CvoptGraph *g, CvoptNode *n);                                         \
        int ref_##name##_run(const CvoptNode *n, const CvoptTensor *const *inputs, CvoptTensor *const *outputs)

REF_DECLARE_OP(conv);
REF_DECLARE_OP(gemm);
REF_DECLARE_OP(matmul);
REF_DECLARE_OP(unary);
REF_DECLARE_OP(prelu);
REF_DECLARE_OP(binary);
REF_DECLARE_OP(pool);
REF_DECLARE_OP(global_pool);
REF_DECLARE_OP(batch_norm);
REF_DECLARE_OP(softmax);
REF_DECLARE_OP(concat);
REF_DECLARE_OP(flatten);
REF_DECLARE_OP(reshape);
REF_DECLARE_OP(transpose);
REF_DECLARE_OP(squeeze);
REF_DECLARE_OP(unsqueeze);
REF_DECLARE_OP(copy);
REF_DECLARE_OP(constant);
REF_DECLARE_OP(shape);
REF_DECLARE_OP(gather);
REF_DECLARE_OP(slice);
REF_DECLARE_OP(reduce);

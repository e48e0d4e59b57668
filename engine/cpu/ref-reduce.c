/* SPDX-License-Identifier: MIT */
/* ReduceMean, ReduceMax, ReduceSum over the dims listed in the ints
 * attribute `axes` (the importer turns the opset 13/18 axes input into it),
 * with `keepdims` (default 1) and `noop_with_empty_axes` (default 0): no
 * axes reduce every dim, or none when noop_with_empty_axes = 1. Float32
 * for all three; int64 also for Max and Sum, which are exact there. */
#include <math.h>
#include <stdio.h>

#include "ref-internal.h"

typedef struct ReducePlan {
        bool reduce[CVOPT_MAX_DIMS];
        bool noop; /* empty axes with noop_with_empty_axes: a copy */
        uint32_t ndim;
        int64_t dims[CVOPT_MAX_DIMS];
} ReducePlan;

static int reduce_plan(const CvoptNode *n, const CvoptTensor *x, ReducePlan *ret) {
        ReducePlan plan = { .ndim = 0 };
        int64_t axes[CVOPT_MAX_DIMS], keepdims, noop_with_empty_axes;
        int count, r;

        if (x->dtype != CVOPT_DTYPE_FLOAT32 && (x->dtype != CVOPT_DTYPE_INT64 || n->op == CVOPT_OP_REDUCE_MEAN))
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "input '%s' is %s, not supported", x->name,
                                cvopt_dtype_name(x->dtype));
        r = ref_attr_int(n, "keepdims", 1, &keepdims);
        if (r >= 0)
                r = ref_attr_int(n, "noop_with_empty_axes", 0, &noop_with_empty_axes);
        if (r < 0)
                return r;
        count = ref_attr_ints(n, "axes", CVOPT_MAX_DIMS, axes, NULL);
        if (count < 0)
                return count;
        if (count == 0) {
                plan.noop = noop_with_empty_axes != 0;
                for (uint32_t d = 0; d < x->ndim; d++)
                        plan.reduce[d] = !plan.noop;
        }
        for (int i = 0; i < count; i++) {
                uint32_t axis;

                r = ref_normalize_axis(n, axes[i], x->ndim, &axis);
                if (r < 0)
                        return r;
                if (plan.reduce[axis])
                        return ref_fail(-CVOPT_E_SHAPE, n, "axis %u listed twice", axis);
                plan.reduce[axis] = true;
        }
        for (uint32_t d = 0; d < x->ndim; d++) {
                if (!plan.reduce[d])
                        plan.dims[plan.ndim++] = x->dims[d];
                else if (keepdims)
                        plan.dims[plan.ndim++] = 1;
        }
        *ret = plan;
        return 0;
}

int ref_reduce_infer(CvoptGraph *g, CvoptNode *n) {
        ReducePlan plan;
        CvoptTensor *x;
        int r;

        r = ref_check_arity(n, 1, 1, 1, 1);
        if (r >= 0)
                r = ref_input(g, n, 0, &x);
        if (r >= 0)
                r = reduce_plan(n, x, &plan);
        if (r < 0)
                return r;
        return ref_set_output(g, n, 0, x->dtype, plan.ndim, plan.dims);
}

/* acc[o] op= x[i] for every input element i, o its output element: one
 * walk over the input in order, with the output offset advanced by an
 * odometer in which reduced dims have stride 0. */
#define REDUCE_WALK(x, count, out_strides, step_body)                                                  \
        do {                                                                                         \
                size_t _index[CVOPT_MAX_DIMS] = { 0 }, o = 0;                                        \
                for (size_t i = 0; i < (count); i++) {                                               \
                        step_body;                                                                   \
                        for (uint32_t _d = (x)->ndim; _d-- > 0;) {                                   \
                                o += (out_strides)[_d];                                              \
                                if (++_index[_d] < (size_t) (x)->dims[_d])                          \
                                        break;                                                       \
                                o -= (out_strides)[_d] * (size_t) (x)->dims[_d];                     \
                                _index[_d] = 0;                                                      \
                        }                                                                            \
                }                                                                                    \
        } while (0)

static int reduce_float(const CvoptNode *n, const CvoptTensor *x, const size_t *out_strides, size_t reduced,
                        CvoptTensor *y) {
        const float *in = x->data;
        float *out = y->data;
        size_t count = ref_count(x), out_count = ref_count(y);

        if (n->op == CVOPT_OP_REDUCE_MAX) {
                for (size_t o = 0; o < out_count; o++)
                        out[o] = -INFINITY;
                /* A NaN wins, as in numpy's max. */
                REDUCE_WALK(x, count, out_strides, {
                        if (in[i] > out[o] || isnan(in[i]))
                                out[o] = isnan(out[o]) ? out[o] : in[i];
                });
                return 0;
        }

        /* Sums in double: a mean over a 7x7 or 56x56 plane then rounds once,
         * as closely as a float result can match any summation order. */
        _cleanup_free_ double *acc = calloc(MAX(out_count, (size_t) 1), sizeof(double));
        if (!acc)
                return -ENOMEM;
        REDUCE_WALK(x, count, out_strides, acc[o] += in[i]);
        for (size_t o = 0; o < out_count; o++)
                out[o] = (float) (n->op == CVOPT_OP_REDUCE_MEAN ? acc[o] / (double) reduced : acc[o]);
        return 0;
}

static int reduce_int64(const CvoptNode *n, const CvoptTensor *x, const size_t *out_strides, CvoptTensor *y) {
        const int64_t *in = x->data;
        int64_t *out = y->data;
        size_t count = ref_count(x), out_count = ref_count(y);
        bool overflow = false;

        for (size_t o = 0; o < out_count; o++)
                out[o] = n->op == CVOPT_OP_REDUCE_MAX ? INT64_MIN : 0;
        if (n->op == CVOPT_OP_REDUCE_MAX)
                REDUCE_WALK(x, count, out_strides, out[o] = MAX(out[o], in[i]));
        else
                REDUCE_WALK(x, count, out_strides, overflow |= __builtin_add_overflow(out[o], in[i], &out[o]));
        if (overflow)
                return ref_fail(-ERANGE, n, "int64 sum overflows");
        return 0;
}

int ref_reduce_run(const CvoptNode *n, const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        const CvoptTensor *x = inputs[0];
        CvoptTensor *y = outputs[0];
        size_t out_strides[CVOPT_MAX_DIMS], stride = 1, reduced = 1;
        ReducePlan plan;
        int r;

        r = reduce_plan(n, x, &plan);
        if (r >= 0)
                r = ref_check_output_shape(n, y, x->dtype, plan.ndim, plan.dims);
        if (r < 0)
                return r;
        if (plan.noop) {
                if (ref_count(x) > 0 && y->data != x->data)
                        memcpy(y->data, x->data, cvopt_tensor_bytes(x));
                return 0;
        }
        if (ref_count(y) == 0)
                return 0;
        /* Output strides over the input's dims: 0 for a reduced dim, which
         * has size 1 (keepdims) or no place (not) in the output. */
        for (uint32_t d = x->ndim; d-- > 0;) {
                if (plan.reduce[d]) {
                        out_strides[d] = 0;
                        reduced *= (size_t) x->dims[d];
                } else {
                        out_strides[d] = stride;
                        stride *= (size_t) x->dims[d];
                }
        }
        /* Over an empty set: Sum gives 0, Max -inf (ONNX 18's rule), Mean
         * 0 / 0 = NaN, as numpy does. */
        if (x->dtype == CVOPT_DTYPE_INT64)
                return reduce_int64(n, x, out_strides, y);
        return reduce_float(n, x, out_strides, reduced, y);
}

/* SPDX-License-Identifier: MIT */
/* Slice (ONNX opset 10+ form, which the importer gives every model): data,
 * starts, ends, optional axes, optional steps. The parameters must be
 * constants by the time shapes are inferred (initializers, or Shape -> Gather
 * -> arithmetic chains that constant folding has evaluated), since they
 * decide the output's shape. Data of any dtype the engine stores is copied,
 * so that folding can slice int64 shapes too. */
#include <stdio.h>

#include "ref-internal.h"

/* One output dim: element i of it is input element start + i * step. */
typedef struct SliceDim {
        int64_t start, step, count;
} SliceDim;

static const char *const slice_input_names[] = { "data", "starts", "ends", "axes", "steps" };

/* Reads a constant 1-D int32/int64 parameter input into values (at most
 * CVOPT_MAX_DIMS of them); returns the count, or -1 via *ret_count when the
 * input is absent. */
static int slice_param(const CvoptNode *n, const CvoptTensor *t, uint32_t slot, int64_t *values,
                       int64_t *ret_count) {
        const char *what = slice_input_names[slot];
        size_t count;

        if (!t) {
                *ret_count = -1;
                return 0;
        }
        if (!t->is_constant || !t->data)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n,
                                "%s input '%s' is computed at run time, not supported (must be a constant)", what,
                                t->name);
        if (t->dtype != CVOPT_DTYPE_INT64 && t->dtype != CVOPT_DTYPE_INT32)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "%s input '%s' is %s, expected int32 or int64", what,
                                t->name, cvopt_dtype_name(t->dtype));
        if (t->ndim != 1)
                return ref_fail(-CVOPT_E_SHAPE, n, "%s input '%s' must be 1-D", what, t->name);
        count = ref_count(t);
        if (count > CVOPT_MAX_DIMS)
                return ref_fail(-CVOPT_E_SHAPE, n, "%s input '%s' has %zu values (at most %d)", what, t->name,
                                count, CVOPT_MAX_DIMS);
        for (size_t i = 0; i < count; i++)
                values[i] = t->dtype == CVOPT_DTYPE_INT64 ? ((const int64_t *) t->data)[i]
                                                          : ((const int32_t *) t->data)[i];
        *ret_count = (int64_t) count;
        return 0;
}

/* The ONNX rule for one axis of size dim: negative start/end count from the
 * end, then clamp to [0, dim] for a positive step and to [-1, dim - 1] for
 * a negative one (so that "end = -1 after adding dim" can still mean "past
 * the first element"). Every value stays within [-1, dim], so the
 * differences below cannot overflow whatever the model's int64s were. */
static void slice_axis(int64_t dim, int64_t start, int64_t end, int64_t step, SliceDim *ret) {
        uint64_t span, magnitude;

        if (start < 0)
                start += dim;
        if (end < 0)
                end += dim;
        if (step > 0) {
                start = CLAMP(start, (int64_t) 0, dim);
                end = CLAMP(end, (int64_t) 0, dim);
        } else {
                start = CLAMP(start, (int64_t) 0, dim - 1);
                end = CLAMP(end, (int64_t) -1, dim - 1);
        }
        /* INT64_MIN has no positive counterpart: take the magnitude unsigned. */
        magnitude = step < 0 ? (uint64_t) 0 - (uint64_t) step : (uint64_t) step;
        span = (uint64_t) (step > 0 ? end - start : start - end);
        *ret = (SliceDim) { .start = start, .step = step, .count = 0 };
        if ((step > 0 ? end > start : start > end) && dim > 0)
                ret->count = (int64_t) (1 + (span - 1) / magnitude);
}

/* Resolves the node's parameters against input x into one SliceDim per
 * dim of x (untouched dims take everything). */
static int slice_resolve(const CvoptNode *n, const CvoptTensor *x, const CvoptTensor *const *params,
                         SliceDim *dims) {
        int64_t starts[CVOPT_MAX_DIMS], ends[CVOPT_MAX_DIMS], axes[CVOPT_MAX_DIMS], steps[CVOPT_MAX_DIMS];
        int64_t n_starts, n_ends, n_axes, n_steps;
        bool seen[CVOPT_MAX_DIMS] = { false };
        int r;

        r = slice_param(n, params[1], 1, starts, &n_starts);
        if (r >= 0)
                r = slice_param(n, params[2], 2, ends, &n_ends);
        if (r >= 0)
                r = slice_param(n, params[3], 3, axes, &n_axes);
        if (r >= 0)
                r = slice_param(n, params[4], 4, steps, &n_steps);
        if (r < 0)
                return r;
        if (n_starts < 0 || n_ends < 0)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "inputs 'starts' and 'ends' are required");
        if (n_ends != n_starts || (n_axes >= 0 && n_axes != n_starts) || (n_steps >= 0 && n_steps != n_starts))
                return ref_fail(-CVOPT_E_SHAPE, n, "starts, ends, axes and steps must have the same length");

        for (uint32_t d = 0; d < x->ndim; d++)
                dims[d] = (SliceDim) { .start = 0, .step = 1, .count = x->dims[d] };
        for (int64_t i = 0; i < n_starts; i++) {
                int64_t step = n_steps >= 0 ? steps[i] : 1;
                uint32_t axis;

                r = ref_normalize_axis(n, n_axes >= 0 ? axes[i] : i, x->ndim, &axis);
                if (r < 0)
                        return r;
                if (seen[axis])
                        return ref_fail(-CVOPT_E_SHAPE, n, "axis %u listed twice", axis);
                seen[axis] = true;
                if (step == 0)
                        return ref_fail(-CVOPT_E_SHAPE, n, "step of axis %u is 0", axis);
                slice_axis(x->dims[axis], starts[i], ends[i], step, &dims[axis]);
        }
        return 0;
}

static int slice_output_dims(const CvoptNode *n, const CvoptTensor *x, const CvoptTensor *const *params,
                             SliceDim *slice, int64_t *dims) {
        int r = slice_resolve(n, x, params, slice);

        if (r < 0)
                return r;
        for (uint32_t d = 0; d < x->ndim; d++)
                dims[d] = slice[d].count;
        return 0;
}

int ref_slice_infer(CvoptGraph *g, CvoptNode *n) {
        const CvoptTensor *params[5] = { NULL };
        SliceDim slice[CVOPT_MAX_DIMS];
        int64_t dims[CVOPT_MAX_DIMS];
        CvoptTensor *t;
        int r;

        r = ref_check_arity(n, 3, 5, 1, 1);
        if (r < 0)
                return r;
        for (uint32_t s = 0; s < n->n_inputs; s++) {
                r = s == 0 ? ref_input(g, n, s, &t) : ref_input_optional(g, n, s, &t);
                if (r < 0)
                        return r;
                params[s] = t;
        }
        if (cvopt_dtype_size(params[0]->dtype) == 0)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "input '%s' has dtype %s", params[0]->name,
                                cvopt_dtype_name(params[0]->dtype));
        r = slice_output_dims(n, params[0], params, slice, dims);
        if (r < 0)
                return r;
        return ref_set_output(g, n, 0, params[0]->dtype, params[0]->ndim, dims);
}

int ref_slice_run(const CvoptNode *n, const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        const CvoptTensor *params[5] = { NULL }, *x = inputs[0];
        size_t in_strides[CVOPT_MAX_DIMS], index[CVOPT_MAX_DIMS] = { 0 }, stride = 1, elem, block, blocks;
        SliceDim slice[CVOPT_MAX_DIMS];
        int64_t dims[CVOPT_MAX_DIMS];
        CvoptTensor *y = outputs[0];
        const char *src = x->data;
        char *dst = y->data;
        uint32_t outer;
        int r;

        for (uint32_t s = 0; s < n->n_inputs && s < ELEMENTSOF(params); s++)
                params[s] = inputs[s];
        r = slice_output_dims(n, x, params, slice, dims);
        if (r >= 0)
                r = ref_check_output_shape(n, y, x->dtype, x->ndim, dims);
        if (r < 0)
                return r;
        if (ref_count(y) == 0)
                return 0;
        elem = cvopt_dtype_size(x->dtype);
        for (uint32_t d = x->ndim; d-- > 0;) {
                in_strides[d] = stride;
                stride *= (size_t) x->dims[d];
        }
        /* Trailing dims taken whole are one contiguous block, and so is the
         * last partial dim when its step is 1: x.chunk(2, dim=1) on NCHW
         * copies C/2 planes with one memcpy each outer index. */
        block = elem;
        outer = x->ndim;
        while (outer > 0 && slice[outer - 1].start == 0 && slice[outer - 1].step == 1 &&
               slice[outer - 1].count == x->dims[outer - 1])
                block *= (size_t) x->dims[--outer];
        if (outer > 0 && slice[outer - 1].step == 1) {
                outer--;
                block *= (size_t) slice[outer].count;
        }
        blocks = ref_count(y) * elem / block;
        for (size_t b = 0; b < blocks; b++) {
                size_t offset = 0;

                if (outer < x->ndim)
                        offset = (size_t) slice[outer].start * in_strides[outer];
                for (uint32_t d = 0; d < outer; d++)
                        offset += (size_t) (slice[d].start + (int64_t) index[d] * slice[d].step) * in_strides[d];
                memcpy(dst, src + offset * elem, block);
                dst += block;
                for (uint32_t d = outer; d-- > 0;) {
                        if (++index[d] < (size_t) slice[d].count)
                                break;
                        index[d] = 0;
                }
        }
        return 0;
}

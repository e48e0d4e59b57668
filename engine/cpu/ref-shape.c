/* SPDX-License-Identifier: MIT */
/* Operators that move data without arithmetic: Reshape, Flatten, Squeeze,
 * Unsqueeze, Identity and Dropout (copies under a new shape), Transpose,
 * Concat, Gather, Shape and Constant. They take any dtype, since shape
 * computations (Shape -> Gather -> Concat -> Reshape) run on int64. */
#include <stdio.h>

#include "ref-internal.h"

static int check_known_dtype(const CvoptNode *n, const CvoptTensor *t) {
        if (cvopt_dtype_size(t->dtype) == 0)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "input '%s' has dtype %s", t->name,
                                cvopt_dtype_name(t->dtype));
        return 0;
}

/* Run of every op whose output is its input under another shape. */
static int copy_data(const CvoptNode *n, const CvoptTensor *in, CvoptTensor *out) {
        size_t bytes = cvopt_tensor_bytes(in);

        if (in->dtype != out->dtype || ref_count(in) != ref_count(out) || cvopt_tensor_count(in) < 0)
                return ref_fail(-CVOPT_E_SHAPE, n, "output '%s' does not match the input's size",
                                strempty(out->name));
        if (bytes > 0 && out->data != in->data)
                memcpy(out->data, in->data, bytes);
        return 0;
}

/* Identity and Dropout (inference: a copy; the mask output is refused). */

int ref_copy_infer(CvoptGraph *g, CvoptNode *n) {
        CvoptTensor *x, *training = NULL;
        int r;

        r = ref_check_arity(n, 1, n->op == CVOPT_OP_DROPOUT ? 3 : 1, 1, n->op == CVOPT_OP_DROPOUT ? 2 : 1);
        if (r >= 0)
                r = ref_check_single_output(n);
        if (r >= 0)
                r = ref_input(g, n, 0, &x);
        if (r >= 0)
                r = check_known_dtype(n, x);
        if (r >= 0 && n->op == CVOPT_OP_DROPOUT)
                r = ref_input_optional(g, n, 2, &training);
        if (r < 0)
                return r;
        if (training) {
                /* Only a constant false training_mode means inference. */
                if (!training->is_constant || !training->data || ref_count(training) != 1 ||
                    cvopt_dtype_size(training->dtype) == 0)
                        return ref_fail(-CVOPT_E_UNSUPPORTED, n, "training_mode must be a constant");
                for (size_t i = 0; i < cvopt_dtype_size(training->dtype); i++)
                        if (((const uint8_t *) training->data)[i] != 0)
                                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "training mode is not supported");
        }
        return ref_set_output(g, n, 0, x->dtype, x->ndim, x->dims);
}

int ref_copy_run(const CvoptNode *n, const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        return copy_data(n, inputs[0], outputs[0]);
}

/* Constant: the importer stores the value in the output tensor itself, so
 * there is nothing to compute; infer and run only check that it is there. */

int ref_constant_infer(CvoptGraph *g, CvoptNode *n) {
        CvoptTensor *t;
        int r;

        r = ref_check_arity(n, 0, 0, 1, 1);
        if (r < 0)
                return r;
        t = cvopt_node_output(g, n, 0);
        if (!t)
                return ref_fail(-CVOPT_E_FORMAT, n, "output out of range");
        if (!t->is_constant || !t->has_shape || (!t->data && ref_count(t) != 0))
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "output '%s' holds no constant value", t->name);
        return 0;
}

int ref_constant_run(const CvoptNode *n, const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        (void) inputs;
        if (!outputs[0]->is_constant)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "output '%s' holds no constant value",
                                strempty(outputs[0]->name));
        return 0;
}

/* Flatten: [prod(dims[:axis]), prod(dims[axis:])], axis in [-r, r]. */

int ref_flatten_infer(CvoptGraph *g, CvoptNode *n) {
        CvoptTensor *x;
        int64_t axis;
        int r;

        r = ref_check_arity(n, 1, 1, 1, 1);
        if (r >= 0)
                r = ref_input(g, n, 0, &x);
        if (r >= 0)
                r = check_known_dtype(n, x);
        if (r >= 0)
                r = ref_attr_int(n, "axis", 1, &axis);
        if (r < 0)
                return r;
        if (axis < -(int64_t) x->ndim || axis > (int64_t) x->ndim)
                return ref_fail(-CVOPT_E_SHAPE, n, "axis %lld out of range for rank %u", (long long) axis, x->ndim);
        if (axis < 0)
                axis += x->ndim;
        return ref_set_output(g, n, 0, x->dtype, 2,
                              (int64_t[]) { (int64_t) ref_dims_product(x->dims, 0, (uint32_t) axis),
                                            (int64_t) ref_dims_product(x->dims, (uint32_t) axis, x->ndim) });
}

int ref_flatten_run(const CvoptNode *n, const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        return copy_data(n, inputs[0], outputs[0]);
}

/* Reshape: the shape input must be a constant int64 1-D tensor. 0 copies
 * the input's dim at the same index (unless allowzero = 1), one -1 is
 * inferred from the element count. */

int ref_reshape_infer(CvoptGraph *g, CvoptNode *n) {
        int64_t dims[CVOPT_MAX_DIMS], allow_zero, known = 1;
        CvoptTensor *x, *shape;
        int infer_index = -1;
        const int64_t *want;
        size_t count;
        int r;

        r = ref_check_arity(n, 2, 2, 1, 1);
        if (r >= 0)
                r = ref_input(g, n, 0, &x);
        if (r >= 0)
                r = ref_input(g, n, 1, &shape);
        if (r >= 0)
                r = check_known_dtype(n, x);
        if (r >= 0)
                r = ref_attr_int(n, "allowzero", 0, &allow_zero);
        if (r < 0)
                return r;
        if (!shape->is_constant || !shape->data || shape->dtype != CVOPT_DTYPE_INT64 || shape->ndim != 1)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "shape '%s' must be a constant 1-D int64 tensor",
                                shape->name);
        count = (size_t) shape->dims[0];
        if (count > CVOPT_MAX_DIMS)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "target shape has %zu dims (max %d)", count,
                                CVOPT_MAX_DIMS);
        want = shape->data;
        for (size_t i = 0; i < count; i++) {
                int64_t d = want[i];

                if (d == -1) {
                        if (infer_index >= 0)
                                return ref_fail(-CVOPT_E_SHAPE, n, "more than one -1 in the target shape");
                        infer_index = (int) i;
                        dims[i] = 1;
                        continue;
                }
                if (d < -1)
                        return ref_fail(-CVOPT_E_SHAPE, n, "invalid target dim %lld", (long long) d);
                if (d == 0 && !allow_zero) {
                        if (i >= x->ndim)
                                return ref_fail(-CVOPT_E_SHAPE, n, "target dim %zu is 0 but the input has %u dims", i,
                                                x->ndim);
                        d = x->dims[i];
                }
                dims[i] = d;
                if (__builtin_mul_overflow(known, d, &known))
                        return ref_fail(-CVOPT_E_SHAPE, n, "target shape too large");
        }
        if (infer_index >= 0) {
                if (known == 0 || ref_count(x) % (size_t) known != 0)
                        return ref_fail(-CVOPT_E_SHAPE, n, "cannot infer the -1 dim of the target shape");
                dims[infer_index] = (int64_t) (ref_count(x) / (size_t) known);
                known *= dims[infer_index];
        }
        if ((size_t) known != ref_count(x))
                return ref_fail(-CVOPT_E_SHAPE, n, "target shape has %lld elements, input '%s' has %zu",
                                (long long) known, x->name, ref_count(x));
        return ref_set_output(g, n, 0, x->dtype, (uint32_t) count, dims);
}

int ref_reshape_run(const CvoptNode *n, const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        return copy_data(n, inputs[0], outputs[0]);
}

/* Squeeze: removes the listed axes (each of size 1) or, with no axes
 * attribute, every dim of size 1. */

int ref_squeeze_infer(CvoptGraph *g, CvoptNode *n) {
        int64_t axes[CVOPT_MAX_DIMS], dims[CVOPT_MAX_DIMS];
        bool remove[CVOPT_MAX_DIMS] = { false }, present;
        uint32_t ndim = 0;
        CvoptTensor *x;
        int count, r;

        r = ref_check_arity(n, 1, 1, 1, 1);
        if (r >= 0)
                r = ref_input(g, n, 0, &x);
        if (r >= 0)
                r = check_known_dtype(n, x);
        if (r < 0)
                return r;
        count = ref_attr_ints(n, "axes", CVOPT_MAX_DIMS, axes, &present);
        if (count < 0)
                return count;
        for (int i = 0; i < count; i++) {
                uint32_t a;

                r = ref_normalize_axis(n, axes[i], x->ndim, &a);
                if (r < 0)
                        return r;
                if (x->dims[a] != 1)
                        return ref_fail(-CVOPT_E_SHAPE, n, "cannot squeeze axis %u of size %lld", a,
                                        (long long) x->dims[a]);
                if (remove[a])
                        return ref_fail(-CVOPT_E_SHAPE, n, "axis %u listed twice", a);
                remove[a] = true;
        }
        for (uint32_t i = 0; i < x->ndim; i++) {
                if (!present && x->dims[i] == 1)
                        continue;
                if (!remove[i])
                        dims[ndim++] = x->dims[i];
        }
        return ref_set_output(g, n, 0, x->dtype, ndim, dims);
}

int ref_squeeze_run(const CvoptNode *n, const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        return copy_data(n, inputs[0], outputs[0]);
}

/* Unsqueeze: inserts size-1 dims at the listed axes, which are positions
 * in the OUTPUT (negative ones count from the output's end). */

int ref_unsqueeze_infer(CvoptGraph *g, CvoptNode *n) {
        int64_t axes[CVOPT_MAX_DIMS], dims[CVOPT_MAX_DIMS];
        bool insert[CVOPT_MAX_DIMS] = { false }, present;
        uint32_t out_ndim, next = 0;
        CvoptTensor *x;
        int count, r;

        r = ref_check_arity(n, 1, 1, 1, 1);
        if (r >= 0)
                r = ref_input(g, n, 0, &x);
        if (r >= 0)
                r = check_known_dtype(n, x);
        if (r < 0)
                return r;
        count = ref_attr_ints(n, "axes", CVOPT_MAX_DIMS, axes, &present);
        if (count < 0)
                return count;
        if (!present || count == 0)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "attribute 'axes' is required");
        out_ndim = x->ndim + (uint32_t) count;
        if (out_ndim > CVOPT_MAX_DIMS)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "output would have %u dims (max %d)", out_ndim,
                                CVOPT_MAX_DIMS);
        for (int i = 0; i < count; i++) {
                uint32_t a;

                r = ref_normalize_axis(n, axes[i], out_ndim, &a);
                if (r < 0)
                        return r;
                if (insert[a])
                        return ref_fail(-CVOPT_E_SHAPE, n, "axis %u listed twice", a);
                insert[a] = true;
        }
        for (uint32_t i = 0; i < out_ndim; i++)
                dims[i] = insert[i] ? 1 : x->dims[next++];
        return ref_set_output(g, n, 0, x->dtype, out_ndim, dims);
}

int ref_unsqueeze_run(const CvoptNode *n, const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        return copy_data(n, inputs[0], outputs[0]);
}

/* Transpose: output dim i is input dim perm[i]; default reverses. */

static int transpose_perm(const CvoptNode *n, const CvoptTensor *x, uint32_t *perm) {
        int64_t values[CVOPT_MAX_DIMS];
        bool seen[CVOPT_MAX_DIMS] = { false }, present;
        int count = ref_attr_ints(n, "perm", CVOPT_MAX_DIMS, values, &present);

        if (count < 0)
                return count;
        if (!present) {
                for (uint32_t i = 0; i < x->ndim; i++)
                        perm[i] = x->ndim - 1 - i;
                return 0;
        }
        if ((uint32_t) count != x->ndim)
                return ref_fail(-CVOPT_E_SHAPE, n, "perm has %d values for rank %u", count, x->ndim);
        for (int i = 0; i < count; i++) {
                if (values[i] < 0 || values[i] >= (int64_t) x->ndim || seen[values[i]])
                        return ref_fail(-CVOPT_E_SHAPE, n, "perm is not a permutation of 0..%u", x->ndim - 1);
                seen[values[i]] = true;
                perm[i] = (uint32_t) values[i];
        }
        return 0;
}

int ref_transpose_infer(CvoptGraph *g, CvoptNode *n) {
        int64_t dims[CVOPT_MAX_DIMS];
        uint32_t perm[CVOPT_MAX_DIMS];
        CvoptTensor *x;
        int r;

        r = ref_check_arity(n, 1, 1, 1, 1);
        if (r >= 0)
                r = ref_input(g, n, 0, &x);
        if (r >= 0)
                r = check_known_dtype(n, x);
        if (r >= 0)
                r = transpose_perm(n, x, perm);
        if (r < 0)
                return r;
        for (uint32_t i = 0; i < x->ndim; i++)
                dims[i] = x->dims[perm[i]];
        return ref_set_output(g, n, 0, x->dtype, x->ndim, dims);
}

int ref_transpose_run(const CvoptNode *n, const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        const CvoptTensor *x = inputs[0];
        CvoptTensor *y = outputs[0];
        size_t in_strides[CVOPT_MAX_DIMS], strides[CVOPT_MAX_DIMS], index[CVOPT_MAX_DIMS] = { 0 };
        size_t elem = cvopt_dtype_size(x->dtype), count = ref_count(x), stride = 1, offset = 0;
        uint32_t perm[CVOPT_MAX_DIMS];
        int64_t dims[CVOPT_MAX_DIMS];
        const char *src = x->data;
        char *dst = y->data;
        int r;

        r = transpose_perm(n, x, perm);
        if (r < 0)
                return r;
        for (uint32_t i = 0; i < x->ndim; i++)
                dims[i] = x->dims[perm[i]];
        r = ref_check_output_shape(n, y, x->dtype, x->ndim, dims);
        if (r < 0)
                return r;
        if (count == 0)
                return 0;
        for (uint32_t i = x->ndim; i-- > 0;) {
                in_strides[i] = stride;
                stride *= (size_t) x->dims[i];
        }
        /* strides[i]: step in the input when output index i advances. */
        for (uint32_t i = 0; i < x->ndim; i++)
                strides[i] = in_strides[perm[i]];
        for (size_t o = 0; o < count; o++) {
                memcpy(dst + o * elem, src + offset * elem, elem);
                for (uint32_t d = x->ndim; d-- > 0;) {
                        offset += strides[d];
                        if (++index[d] < (size_t) dims[d])
                                break;
                        offset -= strides[d] * (size_t) dims[d];
                        index[d] = 0;
                }
        }
        return 0;
}

/* Concat: all inputs share dtype, rank, and every dim but axis. */

static int concat_shape(const CvoptNode *n, const CvoptTensor *const *in, uint32_t count, uint32_t *ret_axis,
                        int64_t *dims) {
        int64_t axis, total = 0;
        uint32_t a;
        int r;

        r = ref_attr_int(n, "axis", INT64_MIN, &axis);
        if (r < 0)
                return r;
        if (axis == INT64_MIN)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "attribute 'axis' is required");
        r = ref_normalize_axis(n, axis, in[0]->ndim, &a);
        if (r < 0)
                return r;
        for (uint32_t i = 0; i < count; i++) {
                if (in[i]->dtype != in[0]->dtype || in[i]->ndim != in[0]->ndim)
                        return ref_fail(-CVOPT_E_SHAPE, n, "input '%s' differs in dtype or rank from '%s'",
                                        in[i]->name, in[0]->name);
                for (uint32_t d = 0; d < in[0]->ndim; d++)
                        if (d != a && in[i]->dims[d] != in[0]->dims[d])
                                return ref_fail(-CVOPT_E_SHAPE, n, "input '%s' differs in dim %u from '%s'",
                                                in[i]->name, d, in[0]->name);
                if (__builtin_add_overflow(total, in[i]->dims[a], &total))
                        return ref_fail(-CVOPT_E_SHAPE, n, "output too large");
        }
        memcpy(dims, in[0]->dims, in[0]->ndim * sizeof(int64_t));
        dims[a] = total;
        *ret_axis = a;
        return 0;
}

int ref_concat_infer(CvoptGraph *g, CvoptNode *n) {
        _cleanup_free_ CvoptTensor **in = NULL;
        int64_t dims[CVOPT_MAX_DIMS];
        uint32_t axis;
        int r;

        r = ref_check_arity(n, 1, UINT32_MAX, 1, 1);
        if (r < 0)
                return r;
        in = calloc(n->n_inputs, sizeof(CvoptTensor *));
        if (!in)
                return -ENOMEM;
        for (uint32_t i = 0; i < n->n_inputs; i++) {
                r = ref_input(g, n, i, &in[i]);
                if (r >= 0)
                        r = check_known_dtype(n, in[i]);
                if (r < 0)
                        return r;
        }
        r = concat_shape(n, (const CvoptTensor *const *) in, n->n_inputs, &axis, dims);
        if (r < 0)
                return r;
        return ref_set_output(g, n, 0, in[0]->dtype, in[0]->ndim, dims);
}

int ref_concat_run(const CvoptNode *n, const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        CvoptTensor *y = outputs[0];
        int64_t dims[CVOPT_MAX_DIMS];
        size_t elem, outer, inner;
        char *dst = y->data;
        uint32_t axis;
        int r;

        r = concat_shape(n, inputs, n->n_inputs, &axis, dims);
        if (r >= 0)
                r = ref_check_output_shape(n, y, inputs[0]->dtype, inputs[0]->ndim, dims);
        if (r < 0)
                return r;
        elem = cvopt_dtype_size(y->dtype);
        outer = ref_dims_product(dims, 0, axis);
        inner = ref_dims_product(dims, axis + 1, y->ndim) * elem;
        for (size_t o = 0; o < outer; o++)
                for (uint32_t i = 0; i < n->n_inputs; i++) {
                        size_t chunk = (size_t) inputs[i]->dims[axis] * inner;

                        if (chunk > 0)
                                memcpy(dst, (const char *) inputs[i]->data + o * chunk, chunk);
                        dst += chunk;
                }
        return 0;
}

/* Shape: the input's dims [start, end) as int64 (opset 15 start/end,
 * negative from the end, clamped). */

static void shape_range(const CvoptTensor *x, int64_t start, int64_t end, uint32_t *ret_begin, uint32_t *ret_end) {
        int64_t rank = x->ndim;

        if (start < 0)
                start += rank;
        if (end < 0)
                end += rank;
        start = CLAMP(start, (int64_t) 0, rank);
        end = CLAMP(end, (int64_t) 0, rank);
        *ret_begin = (uint32_t) start;
        *ret_end = (uint32_t) MAX(start, end);
}

static int shape_attrs(const CvoptNode *n, const CvoptTensor *x, uint32_t *ret_begin, uint32_t *ret_end) {
        int64_t start, end;
        int r;

        r = ref_attr_int(n, "start", 0, &start);
        if (r >= 0)
                r = ref_attr_int(n, "end", INT64_MAX, &end);
        if (r < 0)
                return r;
        shape_range(x, start, end, ret_begin, ret_end);
        return 0;
}

int ref_shape_infer(CvoptGraph *g, CvoptNode *n) {
        uint32_t begin, end;
        CvoptTensor *x;
        int r;

        r = ref_check_arity(n, 1, 1, 1, 1);
        if (r >= 0)
                r = ref_input(g, n, 0, &x);
        if (r >= 0)
                r = shape_attrs(n, x, &begin, &end);
        if (r < 0)
                return r;
        return ref_set_output(g, n, 0, CVOPT_DTYPE_INT64, 1, (int64_t[]) { end - begin });
}

int ref_shape_run(const CvoptNode *n, const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        const CvoptTensor *x = inputs[0];
        CvoptTensor *y = outputs[0];
        uint32_t begin, end;
        int r;

        r = shape_attrs(n, x, &begin, &end);
        if (r >= 0)
                r = ref_check_output_shape(n, y, CVOPT_DTYPE_INT64, 1, (int64_t[]) { end - begin });
        if (r < 0)
                return r;
        for (uint32_t i = begin; i < end; i++)
                ((int64_t *) y->data)[i - begin] = x->dims[i];
        return 0;
}

/* Gather: out = data.shape[:axis] + indices.shape + data.shape[axis+1:]. */

static int gather_shape(const CvoptNode *n, const CvoptTensor *data, const CvoptTensor *indices,
                        uint32_t *ret_axis, uint32_t *ret_ndim, int64_t *dims) {
        uint32_t axis, ndim = 0;
        int64_t axis_attr;
        int r;

        if (indices->dtype != CVOPT_DTYPE_INT64 && indices->dtype != CVOPT_DTYPE_INT32)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "indices '%s' must be int32 or int64", indices->name);
        r = ref_attr_int(n, "axis", 0, &axis_attr);
        if (r >= 0)
                r = ref_normalize_axis(n, axis_attr, data->ndim, &axis);
        if (r < 0)
                return r;
        if (data->ndim - 1 + indices->ndim > CVOPT_MAX_DIMS)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "output would have more than %d dims", CVOPT_MAX_DIMS);
        for (uint32_t i = 0; i < axis; i++)
                dims[ndim++] = data->dims[i];
        for (uint32_t i = 0; i < indices->ndim; i++)
                dims[ndim++] = indices->dims[i];
        for (uint32_t i = axis + 1; i < data->ndim; i++)
                dims[ndim++] = data->dims[i];
        *ret_axis = axis;
        *ret_ndim = ndim;
        return 0;
}

int ref_gather_infer(CvoptGraph *g, CvoptNode *n) {
        int64_t dims[CVOPT_MAX_DIMS];
        CvoptTensor *data, *indices;
        uint32_t axis, ndim;
        int r;

        r = ref_check_arity(n, 2, 2, 1, 1);
        if (r >= 0)
                r = ref_input(g, n, 0, &data);
        if (r >= 0)
                r = ref_input(g, n, 1, &indices);
        if (r >= 0)
                r = check_known_dtype(n, data);
        if (r >= 0)
                r = gather_shape(n, data, indices, &axis, &ndim, dims);
        if (r < 0)
                return r;
        return ref_set_output(g, n, 0, data->dtype, ndim, dims);
}

int ref_gather_run(const CvoptNode *n, const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        const CvoptTensor *data = inputs[0], *indices = inputs[1];
        CvoptTensor *y = outputs[0];
        size_t outer, inner, count, elem;
        int64_t dims[CVOPT_MAX_DIMS], axis_len;
        uint32_t axis, ndim;
        char *dst = y->data;
        int r;

        r = gather_shape(n, data, indices, &axis, &ndim, dims);
        if (r >= 0)
                r = ref_check_output_shape(n, y, data->dtype, ndim, dims);
        if (r < 0)
                return r;
        elem = cvopt_dtype_size(data->dtype);
        axis_len = data->dims[axis];
        outer = ref_dims_product(data->dims, 0, axis);
        inner = ref_dims_product(data->dims, axis + 1, data->ndim) * elem;
        count = ref_count(indices);
        /* Every index is checked before any data moves. */
        for (size_t i = 0; i < count; i++) {
                int64_t index = indices->dtype == CVOPT_DTYPE_INT64 ? ((const int64_t *) indices->data)[i]
                                                                    : ((const int32_t *) indices->data)[i];

                if (index < -axis_len || index >= axis_len)
                        return ref_fail(-ERANGE, n, "index %lld out of range for a dim of %lld", (long long) index,
                                        (long long) axis_len);
        }
        for (size_t o = 0; o < outer; o++) {
                const char *src = (const char *) data->data + o * (size_t) axis_len * inner;

                for (size_t i = 0; i < count; i++) {
                        int64_t index = indices->dtype == CVOPT_DTYPE_INT64 ? ((const int64_t *) indices->data)[i]
                                                                            : ((const int32_t *) indices->data)[i];

                        if (index < 0)
                                index += axis_len;
                        if (inner > 0)
                                memcpy(dst, src + (size_t) index * inner, inner);
                        dst += inner;
                }
        }
        return 0;
}

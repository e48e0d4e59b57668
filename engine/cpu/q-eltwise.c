/* SPDX-License-Identifier: MIT */
/* Quantize/Dequantize at float-island borders, and the element-wise int8
 * operators: QAdd (residual connections), QConcat (inputs brought to the
 * output's scale) and QLut (any 8-bit -> 8-bit activation as a table). */
#include <math.h>

#include "cvopt/errors.h"
#include "macro.h"
#include "q-ops.h"

static int same_shape(const CvoptTensor *a, const CvoptTensor *b) {
        if (a->ndim != b->ndim)
                return 0;
        for (uint32_t i = 0; i < a->ndim; i++)
                if (a->dims[i] != b->dims[i])
                        return 0;
        return 1;
}

static int quantize_infer(CvoptGraph *g, CvoptNode *n) {
        CvoptTensor *x = cvopt_node_input(g, n, 0), *y = cvopt_node_output(g, n, 0);
        float inv = cvopt_node_get_float(n, "inv_scale", 0);
        int r;

        if (!x || x->dtype != CVOPT_DTYPE_FLOAT32)
                return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (Quantize): input must be float32", n->name);
        if ((r = q_check_activation(n, y, "output")) < 0)
                return r;
        /* inv_scale is stored rather than derived so that no backend divides
         * at run time (OpenCL's float division need not be correctly
         * rounded); it must still agree with the output scale. */
        if (!(inv > 0) || !isfinite(inv) || fabsf(inv * y->quant.scale[0] - 1.0f) > 1e-5f)
                return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (Quantize): inv_scale disagrees with scale",
                                       n->name);
        return q_copy_dims(y, x->ndim, x->dims);
}

static int quantize_run(const CvoptNode *n, const CvoptTensor *const *in, CvoptTensor *const *out) {
        const float *xd = in[0]->data;
        uint8_t *yd = out[0]->data;
        const float inv = cvopt_node_get_float(n, "inv_scale", 1), zero_point = (float) q_zero_point(out[0]);
        const int64_t count = cvopt_tensor_count(in[0]);

        for (int64_t i = 0; i < count; i++) {
                /* Round half to even (rintf in the default mode), then clamp;
                 * NaN fails both comparisons and becomes 0. */
                float v = rintf(xd[i] * inv) + zero_point;
                yd[i] = v >= 255.0f ? 255 : v >= 0.0f ? (uint8_t) v : 0;
        }
        return 0;
}

static int dequantize_infer(CvoptGraph *g, CvoptNode *n) {
        CvoptTensor *x = cvopt_node_input(g, n, 0), *y = cvopt_node_output(g, n, 0);
        int r;

        if ((r = q_check_activation(n, x, "input")) < 0)
                return r;
        if (!y || y->dtype != CVOPT_DTYPE_FLOAT32)
                return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (Dequantize): output must be float32", n->name);
        return q_copy_dims(y, x->ndim, x->dims);
}

static int dequantize_run(const CvoptNode *n, const CvoptTensor *const *in, CvoptTensor *const *out) {
        const uint8_t *xd = in[0]->data;
        float *yd = out[0]->data;
        const float scale = in[0]->quant.scale[0];
        const int32_t zero_point = q_zero_point(in[0]);
        const int64_t count = cvopt_tensor_count(in[0]);

        (void) n;
        for (int64_t i = 0; i < count; i++)
                yd[i] = (float) ((int32_t) xd[i] - zero_point) * scale;
        return 0;
}

static int qadd_infer(CvoptGraph *g, CvoptNode *n) {
        CvoptTensor *a = cvopt_node_input(g, n, 0), *b = cvopt_node_input(g, n, 1), *y = cvopt_node_output(g, n, 0);
        const CvoptAttr *m = cvopt_node_attr(n, "multiplier");
        int64_t shift = cvopt_node_get_int(n, "shift", 0);
        int r;

        if ((r = q_check_activation(n, a, "input A")) < 0 || (r = q_check_activation(n, b, "input B")) < 0 ||
            (r = q_check_activation(n, y, "output")) < 0)
                return r;
        if (!same_shape(a, b))
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "node '%s' (QAdd): inputs must have one shape", n->name);
        if (!m || m->type != CVOPT_ATTR_INTS || m->count != 2 || m->ints[0] < 0 || m->ints[0] > INT32_MAX ||
            m->ints[1] < 0 || m->ints[1] > INT32_MAX || shift < CVOPT_SHIFT_MIN || shift > CVOPT_SHIFT_MAX)
                return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (QAdd): bad multiplier/shift", n->name);
        int64_t lo = cvopt_node_get_int(n, "out_min", 0), hi = cvopt_node_get_int(n, "out_max", 255);
        if (lo < 0 || hi > 255 || lo > hi)
                return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (QAdd): bad out_min/out_max", n->name);
        return q_copy_dims(y, a->ndim, a->dims);
}

/* y = zy + ((a - za) * Ma + (b - zb) * Mb) * 2^-shift, one rounding. */
static int qadd_run(const CvoptNode *n, const CvoptTensor *const *in, CvoptTensor *const *out) {
        const uint8_t *ad = in[0]->data, *bd = in[1]->data;
        uint8_t *yd = out[0]->data;
        const CvoptAttr *m = cvopt_node_attr(n, "multiplier");
        const int64_t ma = m->ints[0], mb = m->ints[1], shift = cvopt_node_get_int(n, "shift", 1);
        const int32_t za = q_zero_point(in[0]), zb = q_zero_point(in[1]), zy = q_zero_point(out[0]);
        const int32_t lo = (int32_t) cvopt_node_get_int(n, "out_min", 0), hi = (int32_t) cvopt_node_get_int(n, "out_max", 255);
        const int64_t count = cvopt_tensor_count(in[0]);

        for (int64_t i = 0; i < count; i++) {
                int64_t sum = ((int64_t) ad[i] - za) * ma + ((int64_t) bd[i] - zb) * mb;
                yd[i] = (uint8_t) cvopt_clamp_i32(zy + ((sum + ((int64_t) 1 << (shift - 1))) >> shift), lo, hi);
        }
        return 0;
}

static int qconcat_axis(const CvoptNode *n, const CvoptTensor *first, int64_t *ret_axis) {
        int64_t axis = cvopt_node_get_int(n, "axis", 1);

        if (axis < 0)
                axis += first->ndim;
        if (axis < 0 || axis >= (int64_t) first->ndim)
                return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (QConcat): axis out of range", n->name);
        *ret_axis = axis;
        return 0;
}

static int qconcat_infer(CvoptGraph *g, CvoptNode *n) {
        CvoptTensor *first = cvopt_node_input(g, n, 0), *y = cvopt_node_output(g, n, 0);
        QRequantParams params;
        int64_t axis = 0, dims[CVOPT_MAX_DIMS];
        int r;

        if ((r = q_check_activation(n, first, "input")) < 0 || (r = q_check_activation(n, y, "output")) < 0 ||
            (r = qconcat_axis(n, first, &axis)) < 0 || (r = q_requant_params(n, n->n_inputs, false, &params)) < 0)
                return r;
        if (params.count != n->n_inputs)
                return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (QConcat): one multiplier per input", n->name);
        memcpy(dims, first->dims, sizeof(dims));
        dims[axis] = 0;
        for (uint32_t i = 0; i < n->n_inputs; i++) {
                CvoptTensor *t = cvopt_node_input(g, n, i);

                if ((r = q_check_activation(n, t, "input")) < 0)
                        return r;
                if (t->ndim != first->ndim)
                        return cvopt_error_set(-CVOPT_E_SHAPE, "node '%s' (QConcat): ranks differ", n->name);
                for (uint32_t d = 0; d < t->ndim; d++)
                        if (d != axis && t->dims[d] != first->dims[d])
                                return cvopt_error_set(-CVOPT_E_SHAPE, "node '%s' (QConcat): shapes differ", n->name);
                dims[axis] += t->dims[axis];
        }
        return q_copy_dims(y, first->ndim, dims);
}

static int qconcat_run(const CvoptNode *n, const CvoptTensor *const *in, CvoptTensor *const *out) {
        CvoptTensor *y = out[0];
        uint8_t *yd = y->data;
        QRequantParams params;
        int64_t axis = 0, outer = 1, offset = 0;
        int r;

        if ((r = qconcat_axis(n, in[0], &axis)) < 0 || (r = q_requant_params(n, n->n_inputs, false, &params)) < 0)
                return r;
        for (int64_t d = 0; d < axis; d++)
                outer *= in[0]->dims[d];
        int64_t inner_out = cvopt_tensor_count(y) / MAX(outer, 1);
        for (uint32_t i = 0; i < n->n_inputs; i++) {
                const CvoptTensor *x = in[i];
                const uint8_t *xd = x->data;
                const int32_t zx = q_zero_point(x), zy = q_zero_point(y);
                const int64_t inner = cvopt_tensor_count(x) / MAX(outer, 1);

                for (int64_t o = 0; o < outer; o++)
                        for (int64_t k = 0; k < inner; k++)
                                yd[o * inner_out + offset + k] =
                                        cvopt_requantize((int32_t) xd[o * inner + k] - zx, (int32_t) params.multiplier[i],
                                                     (int32_t) params.shift[i], zy, params.out_min, params.out_max);
                offset += inner;
        }
        return 0;
}

static int qlut_infer(CvoptGraph *g, CvoptNode *n) {
        CvoptTensor *x = cvopt_node_input(g, n, 0), *y = cvopt_node_output(g, n, 0);
        const CvoptAttr *lut = cvopt_node_attr(n, "lut");
        int r;

        if ((r = q_check_activation(n, x, "input")) < 0 || (r = q_check_activation(n, y, "output")) < 0)
                return r;
        if (!lut || lut->type != CVOPT_ATTR_INTS || lut->count != 256)
                return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (QLut): 'lut' must be 256 ints", n->name);
        for (uint32_t i = 0; i < 256; i++)
                if (lut->ints[i] < 0 || lut->ints[i] > 255)
                        return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (QLut): value out of range", n->name);
        return q_copy_dims(y, x->ndim, x->dims);
}

static int qlut_run(const CvoptNode *n, const CvoptTensor *const *in, CvoptTensor *const *out) {
        const int64_t *lut = cvopt_node_attr(n, "lut")->ints;
        const uint8_t *xd = in[0]->data;
        uint8_t *yd = out[0]->data;
        const int64_t count = cvopt_tensor_count(in[0]);

        for (int64_t i = 0; i < count; i++)
                yd[i] = (uint8_t) lut[xd[i]];
        return 0;
}

const RefOp q_op_quantize = { .infer = quantize_infer, .run = quantize_run };
const RefOp q_op_dequantize = { .infer = dequantize_infer, .run = dequantize_run };
const RefOp q_op_add = { .infer = qadd_infer, .run = qadd_run };
const RefOp q_op_concat = { .infer = qconcat_infer, .run = qconcat_run };
const RefOp q_op_lut = { .infer = qlut_infer, .run = qlut_run };

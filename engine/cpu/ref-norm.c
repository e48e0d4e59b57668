/* SPDX-License-Identifier: MIT */
/* BatchNormalization (inference form) and Softmax. */
#include <math.h>

#include "ref-internal.h"

/* BatchNormalization: y = scale * (x - mean) / sqrt(var + epsilon) + bias,
 * per channel (dim 1). Training mode and its extra outputs are refused. */

static int batch_norm_check(const CvoptNode *n, const CvoptTensor *const *in) {
        int64_t channels;

        if (in[0]->ndim < 2)
                return ref_fail(-CVOPT_E_SHAPE, n, "input '%s' needs at least 2 dims", in[0]->name);
        channels = in[0]->dims[1];
        for (int i = 1; i < 5; i++)
                if (in[i]->ndim != 1 || in[i]->dims[0] != channels)
                        return ref_fail(-CVOPT_E_SHAPE, n, "'%s' must have %lld values (one per channel)",
                                        in[i]->name, (long long) channels);
        return 0;
}

int ref_batch_norm_infer(CvoptGraph *g, CvoptNode *n) {
        CvoptTensor *in[5];
        int64_t training;
        float epsilon;
        int r;

        r = ref_check_arity(n, 5, 5, 1, 5);
        if (r >= 0)
                r = ref_check_single_output(n);
        for (uint32_t i = 0; r >= 0 && i < 5; i++) {
                r = ref_input(g, n, i, &in[i]);
                if (r >= 0)
                        r = ref_check_dtype(n, in[i], CVOPT_DTYPE_FLOAT32, "input");
        }
        if (r >= 0)
                r = ref_attr_int(n, "training_mode", 0, &training);
        if (r >= 0)
                r = ref_attr_float(n, "epsilon", 1e-5f, &epsilon);
        if (r < 0)
                return r;
        if (training != 0)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "training_mode is not supported");
        r = batch_norm_check(n, (const CvoptTensor *const *) in);
        if (r < 0)
                return r;
        return ref_set_output(g, n, 0, CVOPT_DTYPE_FLOAT32, in[0]->ndim, in[0]->dims);
}

int ref_batch_norm_run(const CvoptNode *n, const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        const CvoptTensor *x = inputs[0];
        const float *scale = inputs[1]->data, *bias = inputs[2]->data, *mean = inputs[3]->data,
                    *var = inputs[4]->data;
        CvoptTensor *y = outputs[0];
        size_t batch, channels, plane;
        float epsilon;
        int r;

        r = ref_attr_float(n, "epsilon", 1e-5f, &epsilon);
        if (r >= 0)
                r = batch_norm_check(n, inputs);
        if (r >= 0)
                r = ref_check_output_shape(n, y, CVOPT_DTYPE_FLOAT32, x->ndim, x->dims);
        if (r < 0)
                return r;
        batch = (size_t) x->dims[0];
        channels = (size_t) x->dims[1];
        plane = ref_dims_product(x->dims, 2, x->ndim);
        for (size_t b = 0; b < batch; b++)
                for (size_t c = 0; c < channels; c++) {
                        float mul = scale[c] / sqrtf(var[c] + epsilon), add = bias[c] - mean[c] * mul;
                        const float *src = (const float *) x->data + (b * channels + c) * plane;
                        float *dst = (float *) y->data + (b * channels + c) * plane;

                        size_t start = 0;

                        /* Blocks loaded into locals before the stores: gcc -O2
                         * vectorizes them, and in-place (dst == src) stays
                         * correct. */
                        for (; start + REF_BLOCK <= plane; start += REF_BLOCK) {
                                float block[REF_BLOCK];

                                for (size_t j = 0; j < REF_BLOCK; j++)
                                        block[j] = src[start + j];
                                for (size_t j = 0; j < REF_BLOCK; j++)
                                        dst[start + j] = block[j] * mul + add;
                        }
                        for (size_t i = start; i < plane; i++)
                                dst[i] = src[i] * mul + add;
                }
        return 0;
}

/* Softmax. With int attribute coerce_2d = 1 (set by the importer for
 * opset < 13) the input is viewed as 2-D [prod(dims[:axis]),
 * prod(dims[axis:])] and normalized over the second dim, default axis 1;
 * otherwise softmax runs along axis alone, default -1 (opset >= 13). */

typedef struct SoftmaxShape {
        size_t outer, length, inner;
} SoftmaxShape;

static int softmax_shape(const CvoptNode *n, const CvoptTensor *x, SoftmaxShape *ret) {
        int64_t coerce, axis;
        uint32_t a;
        int r;

        r = ref_attr_int(n, "coerce_2d", 0, &coerce);
        if (r < 0)
                return r;
        if (coerce != 0 && coerce != 1)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "coerce_2d %lld", (long long) coerce);
        r = ref_attr_int(n, "axis", coerce ? 1 : -1, &axis);
        if (r < 0)
                return r;
        if (x->ndim == 0)
                return ref_fail(-CVOPT_E_SHAPE, n, "input '%s' is a scalar", x->name);
        if (coerce) {
                /* Opset < 13 accepts axis == rank too (an empty second dim
                 * product of 1). */
                if (axis < -(int64_t) x->ndim || axis > (int64_t) x->ndim)
                        return ref_fail(-CVOPT_E_SHAPE, n, "axis %lld out of range", (long long) axis);
                a = (uint32_t) (axis < 0 ? axis + x->ndim : axis);
                ret->outer = ref_dims_product(x->dims, 0, a);
                ret->length = ref_dims_product(x->dims, a, x->ndim);
                ret->inner = 1;
                return 0;
        }
        r = ref_normalize_axis(n, axis, x->ndim, &a);
        if (r < 0)
                return r;
        ret->outer = ref_dims_product(x->dims, 0, a);
        ret->length = (size_t) x->dims[a];
        ret->inner = ref_dims_product(x->dims, a + 1, x->ndim);
        return 0;
}

int ref_softmax_infer(CvoptGraph *g, CvoptNode *n) {
        SoftmaxShape s;
        CvoptTensor *x;
        int r;

        r = ref_check_arity(n, 1, 1, 1, 1);
        if (r >= 0)
                r = ref_input(g, n, 0, &x);
        if (r >= 0)
                r = ref_check_dtype(n, x, CVOPT_DTYPE_FLOAT32, "input");
        if (r >= 0)
                r = softmax_shape(n, x, &s);
        if (r < 0)
                return r;
        return ref_set_output(g, n, 0, CVOPT_DTYPE_FLOAT32, x->ndim, x->dims);
}

int ref_softmax_run(const CvoptNode *n, const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        const CvoptTensor *x = inputs[0];
        CvoptTensor *y = outputs[0];
        SoftmaxShape s;
        int r;

        r = softmax_shape(n, x, &s);
        if (r >= 0)
                r = ref_check_output_shape(n, y, CVOPT_DTYPE_FLOAT32, x->ndim, x->dims);
        if (r < 0)
                return r;
        for (size_t o = 0; o < s.outer; o++)
                for (size_t i = 0; i < s.inner; i++) {
                        const float *src = (const float *) x->data + o * s.length * s.inner + i;
                        float *dst = (float *) y->data + o * s.length * s.inner + i;
                        float max = -INFINITY;
                        double sum = 0;

                        /* Subtracting the max keeps exp() from overflowing. */
                        for (size_t j = 0; j < s.length; j++)
                                max = src[j * s.inner] > max ? src[j * s.inner] : max;
                        for (size_t j = 0; j < s.length; j++) {
                                float e = expf(src[j * s.inner] - max);

                                dst[j * s.inner] = e;
                                sum += e;
                        }
                        for (size_t j = 0; j < s.length; j++)
                                dst[j * s.inner] = (float) (dst[j * s.inner] / sum);
                }
        return 0;
}

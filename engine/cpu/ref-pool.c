/* SPDX-License-Identifier: MIT */
/* MaxPool, AveragePool (1-D to 3-D, pads, strides, dilations, ceil_mode,
 * count_include_pad, auto_pad) and GlobalAveragePool/GlobalMaxPool. */
#include <math.h>

#include "ref-internal.h"

typedef struct PoolParams {
        RefWindow window;
        bool count_include_pad;
} PoolParams;

static int pool_params(const CvoptNode *n, const CvoptTensor *x, PoolParams *ret) {
        int64_t kernel[CVOPT_MAX_DIMS], include_pad = 0, storage_order = 0;
        PoolParams p = { 0 };
        bool has_kernel;
        int count, r;

        if (x->ndim < 3 || x->ndim > 5)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "input '%s' has %u dims; 1 to 3 spatial dims are supported",
                                x->name, x->ndim);
        count = ref_attr_ints(n, "kernel_shape", CVOPT_MAX_DIMS, kernel, &has_kernel);
        if (count < 0)
                return count;
        if (!has_kernel || (uint32_t) count != x->ndim - 2)
                return ref_fail(-CVOPT_E_SHAPE, n, "kernel_shape must have %u values", x->ndim - 2);
        if (n->op == CVOPT_OP_AVERAGE_POOL) {
                r = ref_attr_int(n, "count_include_pad", 0, &include_pad);
                if (r < 0)
                        return r;
                if (include_pad != 0 && include_pad != 1)
                        return ref_fail(-CVOPT_E_UNSUPPORTED, n, "count_include_pad %lld", (long long) include_pad);
        } else {
                /* storage_order only changes the Indices output, which is
                 * not supported; still refuse values ONNX does not define. */
                r = ref_attr_int(n, "storage_order", 0, &storage_order);
                if (r < 0)
                        return r;
                if (storage_order != 0 && storage_order != 1)
                        return ref_fail(-CVOPT_E_UNSUPPORTED, n, "storage_order %lld", (long long) storage_order);
        }
        r = ref_window_params(n, x, kernel, true, true, &p.window);
        if (r < 0)
                return r;
        p.count_include_pad = include_pad;
        *ret = p;
        return 0;
}

static void pool_output_dims(const CvoptTensor *x, const RefWindow *w, int64_t *dims) {
        dims[0] = x->dims[0];
        dims[1] = x->dims[1];
        for (uint32_t i = 0; i < w->spatial; i++)
                dims[2 + i] = w->out[3 - w->spatial + i];
}

int ref_pool_infer(CvoptGraph *g, CvoptNode *n) {
        int64_t dims[CVOPT_MAX_DIMS];
        PoolParams p;
        CvoptTensor *x;
        int r;

        r = ref_check_arity(n, 1, 1, 1, 2);
        if (r >= 0)
                r = ref_check_single_output(n);
        if (r >= 0)
                r = ref_input(g, n, 0, &x);
        if (r >= 0)
                r = ref_check_dtype(n, x, CVOPT_DTYPE_FLOAT32, "input");
        if (r >= 0)
                r = pool_params(n, x, &p);
        if (r < 0)
                return r;
        pool_output_dims(x, &p.window, dims);
        return ref_set_output(g, n, 0, CVOPT_DTYPE_FLOAT32, x->ndim, dims);
}

/* The positions p = start + i * dilation (i < kernel) of one window along
 * one dim that fall inside [lo, hi). */
static int64_t window_count(int64_t start, int64_t kernel, int64_t dilation, int64_t lo, int64_t hi) {
        int64_t count = 0;

        for (int64_t i = 0; i < kernel; i++) {
                int64_t pos = start + i * dilation;

                count += pos >= lo && pos < hi;
        }
        return count;
}

static void pool_plane(const PoolParams *p, bool is_max, const float *x, float *y) {
        const RefWindow *w = &p->window;
        const int64_t *in = w->in, *k = w->kernel, *s = w->stride, *d = w->dilation, *pb = w->pad_begin;

        for (int64_t od = 0; od < w->out[0]; od++)
                for (int64_t oh = 0; oh < w->out[1]; oh++)
                        for (int64_t ow = 0; ow < w->out[2]; ow++) {
                                int64_t start[3] = { od * s[0] - pb[0], oh * s[1] - pb[1], ow * s[2] - pb[2] };
                                float acc = is_max ? -INFINITY : 0.0f;
                                int64_t valid = 0;

                                for (int64_t kd = 0; kd < k[0]; kd++) {
                                        int64_t id = start[0] + kd * d[0];

                                        if (id < 0 || id >= in[0])
                                                continue;
                                        for (int64_t kh = 0; kh < k[1]; kh++) {
                                                int64_t ih = start[1] + kh * d[1];

                                                if (ih < 0 || ih >= in[1])
                                                        continue;
                                                const float *row = x + (id * in[1] + ih) * in[2];

                                                for (int64_t kw = 0; kw < k[2]; kw++) {
                                                        int64_t iw = start[2] + kw * d[2];

                                                        if (iw < 0 || iw >= in[2])
                                                                continue;
                                                        /* NaN propagates through max, as in numpy. */
                                                        if (is_max)
                                                                acc = row[iw] > acc || isnan(row[iw]) ? row[iw] : acc;
                                                        else
                                                                acc += row[iw];
                                                        valid++;
                                                }
                                        }
                                }
                                if (!is_max) {
                                        int64_t divisor = valid;

                                        if (p->count_include_pad) {
                                                /* Padding counts, but not the
                                                 * part of a ceil_mode window past
                                                 * the end padding (as PyTorch and
                                                 * ONNX's reference do). */
                                                divisor = 1;
                                                for (uint32_t a = 0; a < 3; a++)
                                                        divisor *= window_count(start[a], k[a], d[a], -pb[a],
                                                                                in[a] + w->pad_end[a]);
                                        }
                                        acc = divisor > 0 ? acc / (float) divisor : NAN;
                                }
                                *y++ = acc;
                        }
}

int ref_pool_run(const CvoptNode *n, const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        const CvoptTensor *x = inputs[0];
        CvoptTensor *y = outputs[0];
        int64_t dims[CVOPT_MAX_DIMS];
        size_t planes, in_plane, out_plane;
        PoolParams p;
        int r;

        r = pool_params(n, x, &p);
        if (r < 0)
                return r;
        pool_output_dims(x, &p.window, dims);
        r = ref_check_output_shape(n, y, CVOPT_DTYPE_FLOAT32, x->ndim, dims);
        if (r < 0)
                return r;
        planes = (size_t) (x->dims[0] * x->dims[1]);
        in_plane = ref_dims_product(p.window.in, 0, 3);
        out_plane = ref_dims_product(p.window.out, 0, 3);
        for (size_t i = 0; i < planes; i++)
                pool_plane(&p, n->op == CVOPT_OP_MAX_POOL, (const float *) x->data + i * in_plane,
                           (float *) y->data + i * out_plane);
        return 0;
}

/* Global pools: one value per (image, channel) over all spatial dims. */

int ref_global_pool_infer(CvoptGraph *g, CvoptNode *n) {
        int64_t dims[CVOPT_MAX_DIMS];
        CvoptTensor *x;
        int r;

        r = ref_check_arity(n, 1, 1, 1, 1);
        if (r >= 0)
                r = ref_input(g, n, 0, &x);
        if (r >= 0)
                r = ref_check_dtype(n, x, CVOPT_DTYPE_FLOAT32, "input");
        if (r < 0)
                return r;
        if (x->ndim < 2)
                return ref_fail(-CVOPT_E_SHAPE, n, "input '%s' needs at least 2 dims", x->name);
        for (uint32_t i = 0; i < x->ndim; i++)
                dims[i] = i < 2 ? x->dims[i] : 1;
        return ref_set_output(g, n, 0, CVOPT_DTYPE_FLOAT32, x->ndim, dims);
}

int ref_global_pool_run(const CvoptNode *n, const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        const CvoptTensor *x = inputs[0];
        CvoptTensor *y = outputs[0];
        int64_t dims[CVOPT_MAX_DIMS];
        size_t planes, plane;
        int r;

        if (x->ndim < 2)
                return ref_fail(-CVOPT_E_SHAPE, n, "input needs at least 2 dims");
        for (uint32_t i = 0; i < x->ndim; i++)
                dims[i] = i < 2 ? x->dims[i] : 1;
        r = ref_check_output_shape(n, y, CVOPT_DTYPE_FLOAT32, x->ndim, dims);
        if (r < 0)
                return r;
        planes = ref_dims_product(x->dims, 0, 2);
        plane = ref_dims_product(x->dims, 2, x->ndim);
        for (size_t i = 0; i < planes; i++) {
                const float *src = (const float *) x->data + i * plane;
                float acc;

                if (n->op == CVOPT_OP_GLOBAL_MAX_POOL) {
                        acc = -INFINITY;
                        for (size_t j = 0; j < plane; j++)
                                acc = src[j] > acc || isnan(src[j]) ? src[j] : acc;
                } else {
                        /* Summed in double: a 56x56 plane in float would lose
                         * low bits against the other backends' tree sums. */
                        double sum = 0;

                        for (size_t j = 0; j < plane; j++)
                                sum += src[j];
                        acc = plane > 0 ? (float) (sum / (double) plane) : NAN;
                }
                ((float *) y->data)[i] = acc;
        }
        return 0;
}

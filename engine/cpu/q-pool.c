/* SPDX-License-Identifier: MIT */
/* Quantized pooling. Max pools keep the input's scale and zero point (max
 * commutes with a monotonic affine map), so they only compare bytes.
 * Average pools sum (x - zero_point) and requantize with a multiplier
 * chosen per window size, precomputed by the optimizer, so border windows
 * that count fewer elements need no division at run time. */
#include "cvopt/errors.h"
#include "macro.h"
#include "q-ops.h"

static int check_same_quant(const CvoptNode *n, const CvoptTensor *x, const CvoptTensor *y) {
        int r;

        if ((r = q_check_activation(n, x, "input")) < 0 || (r = q_check_activation(n, y, "output")) < 0)
                return r;
        if (x->quant.scale[0] != y->quant.scale[0] || x->quant.zero_point[0] != y->quant.zero_point[0])
                return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (%s): input and output quantization differ",
                                       n->name, cvopt_op_name(n->op));
        return 0;
}

static int pool_infer(CvoptGraph *g, CvoptNode *n) {
        CvoptTensor *x = cvopt_node_input(g, n, 0), *y = cvopt_node_output(g, n, 0);
        bool is_max = n->op == CVOPT_OP_QMAX_POOL;
        QWindow win;
        int r;

        r = is_max ? check_same_quant(n, x, y) : q_check_activation(n, x, "input");
        if (r < 0)
                return r;
        if ((r = q_check_activation(n, y, "output")) < 0)
                return r;
        if (x->ndim != 4 || !cvopt_node_attr(n, "kernel_shape"))
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "node '%s' (%s): needs NCHW input and kernel_shape",
                                       n->name, cvopt_op_name(n->op));
        r = q_window_init(n, x->dims[2], x->dims[3], 0, 0, cvopt_node_get_int(n, "ceil_mode", 0) != 0, &win);
        if (r < 0)
                return r;
        if (!is_max) {
                QRequantParams params;
                uint32_t counts = (uint32_t) (win.kernel_h * win.kernel_w) + 1;

                if (win.kernel_h * win.kernel_w > 65536)
                        return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "node '%s': pool window too large", n->name);
                r = q_requant_params(n, counts, false, &params);
                if (r < 0)
                        return r;
        }
        return q_copy_dims(y, 4, (int64_t[]) { x->dims[0], x->dims[1], win.out_h, win.out_w });
}

static int pool_run(const CvoptNode *n, const CvoptTensor *const *in, CvoptTensor *const *out) {
        const CvoptTensor *x = in[0];
        CvoptTensor *y = out[0];
        const bool is_max = n->op == CVOPT_OP_QMAX_POOL;
        const bool count_pad = cvopt_node_get_int(n, "count_include_pad", 0) != 0;
        const uint8_t *xd = x->data;
        uint8_t *yd = y->data;
        QRequantParams params = {};
        QWindow win;
        int r;

        r = q_window_init(n, x->dims[2], x->dims[3], 0, 0, cvopt_node_get_int(n, "ceil_mode", 0) != 0, &win);
        if (r < 0)
                return r;
        if (!is_max && (r = q_requant_params(n, (uint32_t) (win.kernel_h * win.kernel_w) + 1, false, &params)) < 0)
                return r;

        const int64_t planes = x->dims[0] * x->dims[1], in_h = x->dims[2], in_w = x->dims[3];
        const int32_t zx = q_zero_point(x), zy = q_zero_point(y);
        for (int64_t p = 0; p < planes; p++)
                for (int64_t oy = 0; oy < win.out_h; oy++)
                        for (int64_t ox = 0; ox < win.out_w; ox++) {
                                const uint8_t *plane = xd + p * in_h * in_w;
                                int32_t best = -1, sum = 0, count = 0;

                                for (int64_t kh = 0; kh < win.kernel_h; kh++)
                                        for (int64_t kw = 0; kw < win.kernel_w; kw++) {
                                                int64_t iy = oy * win.stride_h - win.pad_top + kh * win.dilation_h;
                                                int64_t ix = ox * win.stride_w - win.pad_left + kw * win.dilation_w;

                                                if (iy < 0 || iy >= in_h || ix < 0 || ix >= in_w) {
                                                        /* Padding counts as 0 (the zero point) for
                                                         * count_include_pad, but only inside the
                                                         * padded extent, as ONNX defines it. */
                                                        if (count_pad && iy < in_h + win.pad_bottom &&
                                                            ix < in_w + win.pad_right)
                                                                count++;
                                                        continue;
                                                }
                                                int32_t v = plane[iy * in_w + ix];
                                                best = MAX(best, v);
                                                sum += v - zx;
                                                count++;
                                        }
                                size_t index = (size_t) ((p * win.out_h + oy) * win.out_w + ox);
                                if (is_max)
                                        yd[index] = (uint8_t) (best < 0 ? zx : best);
                                else
                                        yd[index] = cvopt_requantize(sum, (int32_t) params.multiplier[count],
                                                                 (int32_t) params.shift[count], zy, params.out_min,
                                                                 params.out_max);
                        }
        return 0;
}

static int global_infer(CvoptGraph *g, CvoptNode *n) {
        CvoptTensor *x = cvopt_node_input(g, n, 0), *y = cvopt_node_output(g, n, 0);
        int r;

        if (n->op == CVOPT_OP_QGLOBAL_MAX_POOL)
                r = check_same_quant(n, x, y);
        else {
                QRequantParams params;

                if ((r = q_check_activation(n, x, "input")) < 0 || (r = q_check_activation(n, y, "output")) < 0 ||
                    (r = q_requant_params(n, 1, false, &params)) < 0)
                        return r;
        }
        if (r < 0)
                return r;
        if (x->ndim != 4)
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "node '%s' (%s): needs NCHW input", n->name,
                                       cvopt_op_name(n->op));
        if (x->dims[2] * x->dims[3] > (1 << 23))
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "node '%s': plane too large", n->name);
        return q_copy_dims(y, 4, (int64_t[]) { x->dims[0], x->dims[1], 1, 1 });
}

static int global_run(const CvoptNode *n, const CvoptTensor *const *in, CvoptTensor *const *out) {
        const CvoptTensor *x = in[0];
        CvoptTensor *y = out[0];
        const int64_t planes = x->dims[0] * x->dims[1], size = x->dims[2] * x->dims[3];
        const int32_t zx = q_zero_point(x), zy = q_zero_point(y);
        const uint8_t *xd = x->data;
        uint8_t *yd = y->data;
        QRequantParams params = {};
        int r;

        if (n->op == CVOPT_OP_QGLOBAL_AVERAGE_POOL && (r = q_requant_params(n, 1, false, &params)) < 0)
                return r;
        for (int64_t p = 0; p < planes; p++) {
                const uint8_t *plane = xd + p * size;
                int32_t best = 0, sum = 0;

                for (int64_t i = 0; i < size; i++) {
                        best = MAX(best, (int32_t) plane[i]);
                        sum += (int32_t) plane[i] - zx;
                }
                if (n->op == CVOPT_OP_QGLOBAL_MAX_POOL)
                        yd[p] = (uint8_t) best;
                else
                        yd[p] = cvopt_requantize(sum, (int32_t) params.multiplier[0], (int32_t) params.shift[0], zy,
                                             params.out_min, params.out_max);
        }
        return 0;
}

const RefOp q_op_pool = { .infer = pool_infer, .run = pool_run };
const RefOp q_op_global_pool = { .infer = global_infer, .run = global_run };

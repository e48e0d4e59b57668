/* SPDX-License-Identifier: MIT */
/* QConv and QGemm: u8 activations x s8 weights, int32 accumulation, then
 * requantization (or a float output for the last layer). The bias already
 * holds -zero_point_x * sum(w), so padding reads zero_point_x and the inner
 * loops are plain u8 x s8 products — the shape SIMD kernels will have. */
#include "cvopt/errors.h"
#include "macro.h"
#include "q-ops.h"

static int check_weights(const CvoptNode *n, const CvoptTensor *w, const CvoptTensor *b, int64_t out_channels) {
        if (!w || w->dtype != CVOPT_DTYPE_INT8 || !w->is_constant)
                return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (%s): weights must be constant int8", n->name,
                                       cvopt_op_name(n->op));
        if (b && (b->dtype != CVOPT_DTYPE_INT32 || !b->is_constant || cvopt_tensor_count(b) != out_channels))
                return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (%s): bias must be %lld constant int32 values",
                                       n->name, cvopt_op_name(n->op), (long long) out_channels);
        return 0;
}

static int qconv_geometry(const CvoptNode *n, const CvoptTensor *x, const CvoptTensor *w, QWindow *ret_window,
                          int64_t *ret_group) {
        int64_t group = cvopt_node_get_int(n, "group", 1);

        if (x->ndim != 4 || w->ndim != 4)
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "node '%s' (QConv): only 2-D convolution", n->name);
        if (group < 1 || x->dims[1] % group != 0 || w->dims[0] % group != 0 || w->dims[1] * group != x->dims[1])
                return cvopt_error_set(-CVOPT_E_SHAPE, "node '%s' (QConv): channels %lld, weights %lldx%lld, group %lld",
                                       n->name, (long long) x->dims[1], (long long) w->dims[0],
                                       (long long) w->dims[1], (long long) group);
        *ret_group = group;
        return q_window_init(n, x->dims[2], x->dims[3], w->dims[2], w->dims[3], false, ret_window);
}

static int qconv_infer(CvoptGraph *g, CvoptNode *n) {
        CvoptTensor *x = cvopt_node_input(g, n, 0), *w = cvopt_node_input(g, n, 1), *b = cvopt_node_input(g, n, 2);
        CvoptTensor *y = cvopt_node_output(g, n, 0);
        QRequantParams params;
        QWindow win;
        int64_t group;
        int r;

        if ((r = q_check_activation(n, x, "input")) < 0 || (r = check_weights(n, w, b, w ? w->dims[0] : 0)) < 0)
                return r;
        if (!y)
                return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (QConv): no output", n->name);
        if ((r = qconv_geometry(n, x, w, &win, &group)) < 0)
                return r;
        if (y->dtype != CVOPT_DTYPE_FLOAT32 && (r = q_check_activation(n, y, "output")) < 0)
                return r;
        r = q_requant_params(n, (uint32_t) w->dims[0], y->dtype == CVOPT_DTYPE_FLOAT32, &params);
        if (r < 0)
                return r;
        return q_copy_dims(y, 4, (int64_t[]) { x->dims[0], w->dims[0], win.out_h, win.out_w });
}

static int qconv_run(const CvoptNode *n, const CvoptTensor *const *in, CvoptTensor *const *out) {
        const CvoptTensor *x = in[0], *w = in[1], *b = n->n_inputs > 2 ? in[2] : NULL;
        CvoptTensor *y = out[0];
        const uint8_t *xd = x->data;
        const int8_t *wd = w->data;
        const int32_t *bd = b ? b->data : NULL;
        QRequantParams params;
        QWindow win;
        int64_t group;
        int r;

        if ((r = qconv_geometry(n, x, w, &win, &group)) < 0 ||
            (r = q_requant_params(n, (uint32_t) w->dims[0], y->dtype == CVOPT_DTYPE_FLOAT32, &params)) < 0)
                return r;

        const int64_t batch = x->dims[0], in_c = x->dims[1], in_h = x->dims[2], in_w = x->dims[3];
        const int64_t out_c = w->dims[0], group_in = in_c / group, group_out = out_c / group;
        const int64_t kernel = group_in * win.kernel_h * win.kernel_w, pixels = win.out_h * win.out_w;
        const uint8_t pad = (uint8_t) q_zero_point(x);
        _cleanup_free_ uint8_t *col = malloc((size_t) (kernel * pixels));
        _cleanup_free_ int32_t *acc = malloc((size_t) pixels * sizeof(int32_t));

        if (!col || !acc)
                return -ENOMEM;
        for (int64_t nb = 0; nb < batch; nb++)
                for (int64_t gi = 0; gi < group; gi++) {
                        /* im2col of this group's input channels, padding with the
                         * input zero point (real value 0). */
                        for (int64_t c = 0; c < group_in; c++)
                                for (int64_t kh = 0; kh < win.kernel_h; kh++)
                                        for (int64_t kw = 0; kw < win.kernel_w; kw++) {
                                                const uint8_t *plane = xd + ((nb * in_c) + gi * group_in + c) * in_h * in_w;
                                                uint8_t *row = col + ((c * win.kernel_h + kh) * win.kernel_w + kw) * pixels;

                                                for (int64_t oy = 0; oy < win.out_h; oy++) {
                                                        int64_t iy = oy * win.stride_h - win.pad_top + kh * win.dilation_h;
                                                        for (int64_t ox = 0; ox < win.out_w; ox++) {
                                                                int64_t ix = ox * win.stride_w - win.pad_left +
                                                                             kw * win.dilation_w;
                                                                bool inside = iy >= 0 && iy < in_h && ix >= 0 && ix < in_w;
                                                                row[oy * win.out_w + ox] = inside ? plane[iy * in_w + ix] : pad;
                                                        }
                                                }
                                        }
                        for (int64_t oc = gi * group_out; oc < (gi + 1) * group_out; oc++) {
                                const int8_t *wrow = wd + oc * kernel;
                                int32_t start = bd ? bd[oc] : 0;

                                for (int64_t p = 0; p < pixels; p++)
                                        acc[p] = start;
                                for (int64_t k = 0; k < kernel; k++) {
                                        const int32_t weight = wrow[k];
                                        const uint8_t *row = col + k * pixels;

                                        for (int64_t p = 0; p < pixels; p++)
                                                acc[p] += weight * (int32_t) row[p];
                                }
                                for (int64_t p = 0; p < pixels; p++)
                                        q_store(&params, y, (uint32_t) oc, acc[p], y->data,
                                                (size_t) ((nb * out_c + oc) * pixels + p));
                        }
                }
        return 0;
}

/* QGemm: X [M, K] u8, W [N, K] s8 (the optimizer stores weights
 * transposed this way whatever the float Gemm's transB was), B [N]. */
static int qgemm_infer(CvoptGraph *g, CvoptNode *n) {
        CvoptTensor *x = cvopt_node_input(g, n, 0), *w = cvopt_node_input(g, n, 1), *b = cvopt_node_input(g, n, 2);
        CvoptTensor *y = cvopt_node_output(g, n, 0);
        QRequantParams params;
        int r;

        if ((r = q_check_activation(n, x, "input")) < 0 || (r = check_weights(n, w, b, w ? w->dims[0] : 0)) < 0)
                return r;
        if (!y || x->ndim != 2 || w->ndim != 2 || x->dims[1] != w->dims[1])
                return cvopt_error_set(-CVOPT_E_SHAPE, "node '%s' (QGemm): needs X [M,K] and W [N,K]", n->name);
        if (y->dtype != CVOPT_DTYPE_FLOAT32 && (r = q_check_activation(n, y, "output")) < 0)
                return r;
        r = q_requant_params(n, (uint32_t) w->dims[0], y->dtype == CVOPT_DTYPE_FLOAT32, &params);
        if (r < 0)
                return r;
        return q_copy_dims(y, 2, (int64_t[]) { x->dims[0], w->dims[0] });
}

static int qgemm_run(const CvoptNode *n, const CvoptTensor *const *in, CvoptTensor *const *out) {
        const CvoptTensor *x = in[0], *w = in[1], *b = n->n_inputs > 2 ? in[2] : NULL;
        CvoptTensor *y = out[0];
        const int64_t rows = x->dims[0], depth = x->dims[1], cols = w->dims[0];
        const uint8_t *xd = x->data;
        const int8_t *wd = w->data;
        const int32_t *bd = b ? b->data : NULL;
        QRequantParams params;
        int r;

        r = q_requant_params(n, (uint32_t) cols, y->dtype == CVOPT_DTYPE_FLOAT32, &params);
        if (r < 0)
                return r;
        for (int64_t i = 0; i < rows; i++)
                for (int64_t j = 0; j < cols; j++) {
                        const uint8_t *xr = xd + i * depth;
                        const int8_t *wr = wd + j * depth;
                        int32_t acc = bd ? bd[j] : 0;

                        for (int64_t k = 0; k < depth; k++)
                                acc += (int32_t) xr[k] * (int32_t) wr[k];
                        q_store(&params, y, (uint32_t) j, acc, y->data, (size_t) (i * cols + j));
                }
        return 0;
}

const RefOp q_op_conv = { .infer = qconv_infer, .run = qconv_run };
const RefOp q_op_gemm = { .infer = qgemm_infer, .run = qgemm_run };

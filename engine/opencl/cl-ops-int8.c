/* SPDX-License-Identifier: MIT */
/* Preparing the int8 operators (docs/quantization.md) for the kernels of
 * cl_kernels/q-*.cl: parameters are checked and expanded here, once, with
 * the same helpers the scalar reference uses (engine/cpu/q-common.c), so
 * both read a model's attributes identically. */
#include <stdlib.h>
#include <string.h>

#include "cpu/q-ops.h"
#include "cvopt/errors.h"
#include "layout.h"
#include "macro.h"
#include "opencl/cl-backend.h"

/* Work-group size of the one-item-per-element kernels: 64 is a multiple of
 * every GPU's SIMD width (32 or 64) and small enough for any device. */
#define ELEMENT_GROUP 64
#define GLOBAL_POOL_GROUP 64 /* as in q-pool.cl */
/* Below this many output channels per group the tiled conv (Q_TILE_OC =
 * 16) idles most of its work-items: depthwise and narrow groups go direct. */
#define TILED_MIN_GROUP_OUT 8


int cl_window_params(const CvoptNode *n, const CvoptTensor *x, const QWindow *win, int32_t *params) {
        if (!cl_window_fits_int(x->dims[2], x->dims[3], win->pad_top + win->pad_bottom, win->pad_left + win->pad_right,
                                win->dilation_h * win->kernel_h, win->dilation_w * win->kernel_w))
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "node '%s': window too large for OpenCL", n->name);
        params[P_IN_H] = (int32_t) x->dims[2];
        params[P_IN_W] = (int32_t) x->dims[3];
        params[P_OUT_H] = (int32_t) win->out_h;
        params[P_OUT_W] = (int32_t) win->out_w;
        params[P_KERNEL_H] = (int32_t) win->kernel_h;
        params[P_KERNEL_W] = (int32_t) win->kernel_w;
        params[P_STRIDE_H] = (int32_t) win->stride_h;
        params[P_STRIDE_W] = (int32_t) win->stride_w;
        params[P_PAD_TOP] = (int32_t) win->pad_top;
        params[P_PAD_LEFT] = (int32_t) win->pad_left;
        params[P_PAD_BOTTOM] = (int32_t) win->pad_bottom;
        params[P_PAD_RIGHT] = (int32_t) win->pad_right;
        params[P_DILATION_H] = (int32_t) win->dilation_h;
        params[P_DILATION_W] = (int32_t) win->dilation_w;
        return 0;
}
static bool is_u8(const CvoptTensor *t) {
        return t && t->dtype == CVOPT_DTYPE_UINT8 && t->quant.count == 1;
}

static bool is_const(const CvoptTensor *t, CvoptDType dtype) {
        return t && t->is_constant && t->dtype == dtype && t->data;
}

bool cl_int8_supports(const CvoptGraph *g, const CvoptNode *n) {
        const CvoptTensor *x = cvopt_node_input(g, n, 0), *y = cvopt_node_output(g, n, 0);
        const CvoptTensor *w = cvopt_node_input(g, n, 1), *b = cvopt_node_input(g, n, 2);

        if (!x || !y || n->n_outputs != 1)
                return false;
        switch (n->op) {
        case CVOPT_OP_QCONV:
                return is_u8(x) && x->ndim == 4 && is_const(w, CVOPT_DTYPE_INT8) && w->ndim == 4 &&
                       (!b || is_const(b, CVOPT_DTYPE_INT32)) && (y->dtype == CVOPT_DTYPE_FLOAT32 || is_u8(y));
        case CVOPT_OP_QGEMM:
                return is_u8(x) && x->ndim == 2 && is_const(w, CVOPT_DTYPE_INT8) && w->ndim == 2 &&
                       (!b || is_const(b, CVOPT_DTYPE_INT32)) && (y->dtype == CVOPT_DTYPE_FLOAT32 || is_u8(y));
        case CVOPT_OP_QMAX_POOL:
        case CVOPT_OP_QAVERAGE_POOL:
        case CVOPT_OP_QGLOBAL_MAX_POOL:
        case CVOPT_OP_QGLOBAL_AVERAGE_POOL:
                return is_u8(x) && is_u8(y) && x->ndim == 4;
        case CVOPT_OP_QADD:
                return n->n_inputs == 2 && is_u8(x) && is_u8(w) && is_u8(y) &&
                       cvopt_tensor_count(x) == cvopt_tensor_count(w);
        case CVOPT_OP_QCONCAT:
                for (uint32_t i = 0; i < n->n_inputs; i++)
                        if (!is_u8(cvopt_node_input(g, n, i)))
                                return false;
                return is_u8(y) && n->n_inputs <= CL_NODE_MAX_LAUNCHES;
        case CVOPT_OP_QLUT:
                return is_u8(x) && is_u8(y);
        case CVOPT_OP_QUANTIZE:
                return x->dtype == CVOPT_DTYPE_FLOAT32 && is_u8(y);
        case CVOPT_OP_DEQUANTIZE:
                return is_u8(x) && y->dtype == CVOPT_DTYPE_FLOAT32;
        default:
                return false;
        }
}

/* The per-channel requantization of a conv/gemm, expanded to one entry per
 * channel, and its four buffers (multiplier, shift, out_scale, lut). */
static int requant_buffers(ClContext *c, ClNode *node, const CvoptNode *n, uint32_t channels, bool float_output,
                           int32_t *params, cl_mem ret_mem[4]) {
        _cleanup_free_ int32_t *multiplier = calloc(channels, sizeof(int32_t));
        _cleanup_free_ int32_t *shift = calloc(channels, sizeof(int32_t));
        _cleanup_free_ float *out_scale = calloc(channels, sizeof(float));
        uint8_t lut[256] = { 0 };
        QRequantParams rp;
        int r;

        if (!multiplier || !shift || !out_scale)
                return -ENOMEM;
        r = q_requant_params(n, channels, float_output, &rp);
        if (r < 0)
                return r;
        for (uint32_t i = 0; i < channels; i++) {
                if (float_output)
                        out_scale[i] = rp.out_scale[rp.out_scale_count == 1 ? 0 : i];
                else {
                        multiplier[i] = (int32_t) rp.multiplier[rp.count == 1 ? 0 : i];
                        shift[i] = (int32_t) rp.shift[rp.count == 1 ? 0 : i];
                }
        }
        if (rp.lut)
                for (size_t i = 0; i < 256; i++)
                        lut[i] = (uint8_t) rp.lut[i];
        params[P_MODE] = float_output ? OUT_MODE_F32 : rp.lut ? OUT_MODE_U8_LUT : OUT_MODE_U8;
        params[P_OUT_MIN] = rp.out_min;
        params[P_OUT_MAX] = rp.out_max;
        if ((r = cl_node_buffer(c, node, multiplier, channels * sizeof(int32_t), &ret_mem[0])) < 0 ||
            (r = cl_node_buffer(c, node, shift, channels * sizeof(int32_t), &ret_mem[1])) < 0 ||
            (r = cl_node_buffer(c, node, out_scale, channels * sizeof(float), &ret_mem[2])) < 0 ||
            (r = cl_node_buffer(c, node, lut, sizeof(lut), &ret_mem[3])) < 0)
                return r;
        return 0;
}

static int prepare_conv_gemm(ClContext *c, const CvoptNode *n, ClNode *node) {
        const CvoptGraph *g = c->graph;
        const CvoptTensor *x = cvopt_node_input(g, n, 0), *w = cvopt_node_input(g, n, 1), *b = cvopt_node_input(g, n, 2);
        const CvoptTensor *y = cvopt_node_output(g, n, 0);
        const bool is_conv = n->op == CVOPT_OP_QCONV, float_output = y->dtype == CVOPT_DTYPE_FLOAT32;
        const int64_t channels = w->dims[0], depth = cvopt_tensor_count(w) / MAX(channels, 1);
        int32_t params[P_COUNT] = { 0 };
        _cleanup_free_ int32_t *bias = calloc((size_t) MAX(channels, 1), sizeof(int32_t));
        cl_mem xm, ym, pm, wm, bm, requant[4];
        int64_t group = 1;
        QWindow win = { 0 };
        int r;

        if (!bias)
                return -ENOMEM;
        if (is_conv) {
                group = cvopt_node_get_int(n, "group", 1);
                if (group < 1 || x->dims[1] % group != 0 || channels % group != 0 || w->dims[1] * group != x->dims[1])
                        return cvopt_error_set(-CVOPT_E_SHAPE, "node '%s' (QConv): bad group", n->name);
                r = q_window_init(n, x->dims[2], x->dims[3], w->dims[2], w->dims[3], false, &win);
                if (r < 0)
                        return r;
                r = cl_window_params(n, x, &win, params);
                if (r < 0)
                        return r;
                params[P_BATCH] = (int32_t) x->dims[0];
                params[P_IN_C] = (int32_t) x->dims[1];
                params[P_GROUP_IN] = (int32_t) (x->dims[1] / group);
                params[P_GROUP_OUT] = (int32_t) (channels / group);
        } else {
                if (x->dims[1] != w->dims[1])
                        return cvopt_error_set(-CVOPT_E_SHAPE, "node '%s' (QGemm): depth mismatch", n->name);
                params[P_ROWS] = (int32_t) x->dims[0];
        }
        params[P_OUT_C] = (int32_t) channels;
        params[P_DEPTH] = (int32_t) depth;
        params[P_X_ZERO_POINT] = q_zero_point(x);
        params[P_Y_ZERO_POINT] = float_output ? 0 : q_zero_point(y);
        if (b)
                memcpy(bias, b->data, (size_t) channels * sizeof(int32_t));

        if ((r = requant_buffers(c, node, n, (uint32_t) channels, float_output, params, requant)) < 0 ||
            (r = cl_node_buffer(c, node, params, sizeof(params), &pm)) < 0 ||
            (r = cl_node_buffer(c, node, w->data, cvopt_tensor_bytes(w), &wm)) < 0 ||
            (r = cl_node_buffer(c, node, bias, (size_t) channels * sizeof(int32_t), &bm)) < 0 ||
            (r = cl_tensor_buffer(c, n->inputs[0], &xm)) < 0 || (r = cl_tensor_buffer(c, n->outputs[0], &ym)) < 0)
                return r;
        node->activation_inputs = 1;

        const ClArg args[] = {
                CL_ARG_MEM(xm), CL_ARG_MEM(wm), CL_ARG_MEM(bm), CL_ARG_MEM(pm), CL_ARG_MEM(requant[0]),
                CL_ARG_MEM(requant[1]), CL_ARG_MEM(requant[2]), CL_ARG_MEM(requant[3]), CL_ARG_MEM(ym), CL_ARG_MEM(ym),
        };
        if (!is_conv)
                return cl_node_launch(c, node, "q_gemm", 2,
                                      (size_t[]) { cl_round_up((size_t) channels, GEMM_N), (size_t) x->dims[0] },
                                      (size_t[]) { GEMM_N, 1 }, ELEMENTSOF(args), args);
        const size_t pixels = (size_t) (win.out_h * win.out_w), group_out = (size_t) (channels / group);
        if (group_out >= TILED_MIN_GROUP_OUT)
                return cl_node_launch(c, node, "q_conv_tiled", 3,
                                      (size_t[]) { cl_round_up(pixels, Q_TILE_P) / Q_PIX_PER_ITEM,
                                                   cl_round_up(group_out, Q_TILE_OC) / Q_OC_PER_ITEM,
                                                   (size_t) (x->dims[0] * group) },
                                      (size_t[]) { Q_ITEMS_P, Q_ITEMS_OC, 1 }, ELEMENTSOF(args), args);
        r = cl_node_launch(c, node, "q_conv_direct", 3,
                           (size_t[]) { cl_round_up(pixels, ELEMENT_GROUP), (size_t) channels, (size_t) x->dims[0] },
                           (size_t[]) { ELEMENT_GROUP, 1, 1 }, ELEMENTSOF(args), args);
        return r < 0 ? r : cl_node_tune_last(c, node, pixels);
}

static int prepare_pool(ClContext *c, const CvoptNode *n, ClNode *node) {
        const CvoptGraph *g = c->graph;
        const CvoptTensor *x = cvopt_node_input(g, n, 0), *y = cvopt_node_output(g, n, 0);
        const bool is_global = n->op == CVOPT_OP_QGLOBAL_MAX_POOL || n->op == CVOPT_OP_QGLOBAL_AVERAGE_POOL;
        const bool is_max = n->op == CVOPT_OP_QMAX_POOL || n->op == CVOPT_OP_QGLOBAL_MAX_POOL;
        int32_t params[P_COUNT] = { 0 };
        _cleanup_free_ int32_t *multiplier = NULL, *shift = NULL;
        uint32_t counts = 1;
        QWindow win = { .kernel_h = 1, .kernel_w = 1, .out_h = 1, .out_w = 1 };
        cl_mem xm, ym, pm, mm, sm;
        int r;

        if (!is_global) {
                r = q_window_init(n, x->dims[2], x->dims[3], 0, 0, cvopt_node_get_int(n, "ceil_mode", 0) != 0, &win);
                if (r < 0)
                        return r;
                if (win.kernel_h * win.kernel_w > 65536)
                        return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "node '%s': pool window too large", n->name);
                counts = (uint32_t) (win.kernel_h * win.kernel_w) + 1;
        }
        r = cl_window_params(n, x, &win, params);
        if (r < 0)
                return r;
        multiplier = calloc(counts, sizeof(int32_t));
        shift = calloc(counts, sizeof(int32_t));
        if (!multiplier || !shift)
                return -ENOMEM;
        params[P_OUT_MIN] = 0;
        params[P_OUT_MAX] = 255;
        if (!is_max) {
                QRequantParams rp;

                r = q_requant_params(n, counts, false, &rp);
                if (r < 0)
                        return r;
                if (rp.count != counts)
                        return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s': needs %u multipliers", n->name, counts);
                for (uint32_t i = 0; i < counts; i++) {
                        multiplier[i] = (int32_t) rp.multiplier[i];
                        shift[i] = (int32_t) rp.shift[i];
                }
                params[P_OUT_MIN] = rp.out_min;
                params[P_OUT_MAX] = rp.out_max;
        }
        params[P_MODE] = is_max ? 1 : 0;
        params[P_COUNT_PAD] = cvopt_node_get_int(n, "count_include_pad", 0) != 0;
        params[P_X_ZERO_POINT] = q_zero_point(x);
        params[P_Y_ZERO_POINT] = q_zero_point(y);
        if ((r = cl_node_buffer(c, node, params, sizeof(params), &pm)) < 0 ||
            (r = cl_node_buffer(c, node, multiplier, counts * sizeof(int32_t), &mm)) < 0 ||
            (r = cl_node_buffer(c, node, shift, counts * sizeof(int32_t), &sm)) < 0 ||
            (r = cl_tensor_buffer(c, n->inputs[0], &xm)) < 0 || (r = cl_tensor_buffer(c, n->outputs[0], &ym)) < 0)
                return r;
        node->activation_inputs = 1;

        const size_t planes = (size_t) (x->dims[0] * x->dims[1]);
        if (is_global) {
                const ClArg args[] = { CL_ARG_MEM(xm), CL_ARG_MEM(pm), CL_ARG_MEM(mm), CL_ARG_MEM(sm), CL_ARG_MEM(ym) };

                return cl_node_launch(c, node, "q_global_pool", 1, (size_t[]) { planes * GLOBAL_POOL_GROUP },
                                      (size_t[]) { GLOBAL_POOL_GROUP }, ELEMENTSOF(args), args);
        }
        const size_t total = planes * (size_t) (win.out_h * win.out_w);
        const ClArg args[] = { CL_ARG_MEM(xm), CL_ARG_MEM(pm), CL_ARG_MEM(mm), CL_ARG_MEM(sm), CL_ARG_MEM(ym),
                               CL_ARG_INT(total) };
        r = cl_node_launch(c, node, "q_pool", 1, (size_t[]) { cl_round_up(MAX(total, 1u), ELEMENT_GROUP) },
                           (size_t[]) { ELEMENT_GROUP }, ELEMENTSOF(args), args);
        return r < 0 ? r : cl_node_tune_last(c, node, total);
}

static int prepare_eltwise(ClContext *c, const CvoptNode *n, ClNode *node) {
        const CvoptGraph *g = c->graph;
        const CvoptTensor *x = cvopt_node_input(g, n, 0), *y = cvopt_node_output(g, n, 0);
        const int64_t count = cvopt_tensor_count(x);
        const size_t global[1] = { cl_round_up((size_t) MAX(count, 1), ELEMENT_GROUP) }, local[1] = { ELEMENT_GROUP };
        cl_mem xm, ym, bm, lm;
        int r;

        if ((r = cl_tensor_buffer(c, n->inputs[0], &xm)) < 0 || (r = cl_tensor_buffer(c, n->outputs[0], &ym)) < 0)
                return r;
        node->activation_inputs = 1;
        switch (n->op) {
        case CVOPT_OP_QUANTIZE: {
                const ClArg args[] = { CL_ARG_MEM(xm), CL_ARG_MEM(ym),
                                       CL_ARG_FLOAT(cvopt_node_get_float(n, "inv_scale", 1)),
                                       CL_ARG_FLOAT((float) q_zero_point(y)), CL_ARG_INT(count) };
                return cl_node_launch(c, node, "q_quantize", 1, global, local, ELEMENTSOF(args), args);
        }
        case CVOPT_OP_DEQUANTIZE: {
                const ClArg args[] = { CL_ARG_MEM(xm), CL_ARG_MEM(ym), CL_ARG_FLOAT(x->quant.scale[0]),
                                       CL_ARG_INT(q_zero_point(x)), CL_ARG_INT(count) };
                return cl_node_launch(c, node, "q_dequantize", 1, global, local, ELEMENTSOF(args), args);
        }
        case CVOPT_OP_QLUT: {
                const CvoptAttr *a = cvopt_node_attr(n, "lut");
                uint8_t lut[256];

                if (!a || a->type != CVOPT_ATTR_INTS || a->count != 256)
                        return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (QLut): 'lut' must be 256 ints", n->name);
                for (size_t i = 0; i < 256; i++) {
                        if (a->ints[i] < 0 || a->ints[i] > 255)
                                return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (QLut): bad value", n->name);
                        lut[i] = (uint8_t) a->ints[i];
                }
                if ((r = cl_node_buffer(c, node, lut, sizeof(lut), &lm)) < 0)
                        return r;
                const ClArg args[] = { CL_ARG_MEM(xm), CL_ARG_MEM(ym), CL_ARG_MEM(lm), CL_ARG_INT(count) };
                return cl_node_launch(c, node, "q_lut", 1, global, local, ELEMENTSOF(args), args);
        }
        case CVOPT_OP_QADD: {
                const CvoptTensor *b = cvopt_node_input(g, n, 1);
                const CvoptAttr *m = cvopt_node_attr(n, "multiplier");
                const int64_t shift = cvopt_node_get_int(n, "shift", 0);
                const int64_t lo = cvopt_node_get_int(n, "out_min", 0), hi = cvopt_node_get_int(n, "out_max", 255);

                if (!m || m->type != CVOPT_ATTR_INTS || m->count != 2 || m->ints[0] < 0 || m->ints[0] > INT32_MAX ||
                    m->ints[1] < 0 || m->ints[1] > INT32_MAX || shift < CVOPT_SHIFT_MIN || shift > CVOPT_SHIFT_MAX ||
                    lo < 0 || hi > 255 || lo > hi)
                        return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (QAdd): bad parameters", n->name);
                if ((r = cl_tensor_buffer(c, n->inputs[1], &bm)) < 0)
                        return r;
                node->activation_inputs = 3;
                const ClArg args[] = { CL_ARG_MEM(xm), CL_ARG_MEM(bm), CL_ARG_MEM(ym), CL_ARG_INT(q_zero_point(x)),
                                       CL_ARG_INT(q_zero_point(b)), CL_ARG_INT(q_zero_point(y)), CL_ARG_INT(m->ints[0]),
                                       CL_ARG_INT(m->ints[1]), CL_ARG_INT(shift), CL_ARG_INT(lo), CL_ARG_INT(hi),
                                       CL_ARG_INT(count) };
                return cl_node_launch(c, node, "q_add", 1, global, local, ELEMENTSOF(args), args);
        }
        default:
                return -CVOPT_E_UNSUPPORTED;
        }
}

static int prepare_concat(ClContext *c, const CvoptNode *n, ClNode *node) {
        const CvoptGraph *g = c->graph;
        const CvoptTensor *first = cvopt_node_input(g, n, 0), *y = cvopt_node_output(g, n, 0);
        int64_t axis = cvopt_node_get_int(n, "axis", 1), outer = 1, offset = 0;
        QRequantParams rp;
        cl_mem ym;
        int r;

        if (axis < 0)
                axis += first->ndim;
        if (axis < 0 || axis >= (int64_t) first->ndim)
                return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (QConcat): axis out of range", n->name);
        r = q_requant_params(n, n->n_inputs, false, &rp);
        if (r < 0)
                return r;
        if (rp.count != n->n_inputs)
                return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (QConcat): one multiplier per input", n->name);
        if ((r = cl_tensor_buffer(c, n->outputs[0], &ym)) < 0)
                return r;
        for (int64_t d = 0; d < axis; d++)
                outer *= first->dims[d];
        const int64_t inner_out = cvopt_tensor_count(y) / MAX(outer, 1);
        for (uint32_t i = 0; i < n->n_inputs; i++) {
                const CvoptTensor *x = cvopt_node_input(g, n, i);
                const int64_t count = cvopt_tensor_count(x), inner = count / MAX(outer, 1);
                cl_mem xm;

                if ((r = cl_tensor_buffer(c, n->inputs[i], &xm)) < 0)
                        return r;
                node->activation_inputs |= 1u << i;
                if (count == 0)
                        continue;
                const ClArg args[] = { CL_ARG_MEM(xm), CL_ARG_MEM(ym), CL_ARG_INT(inner), CL_ARG_INT(inner_out),
                                       CL_ARG_INT(offset), CL_ARG_INT(q_zero_point(x)), CL_ARG_INT(q_zero_point(y)),
                                       CL_ARG_INT(rp.multiplier[i]), CL_ARG_INT(rp.shift[i]), CL_ARG_INT(rp.out_min),
                                       CL_ARG_INT(rp.out_max), CL_ARG_INT(count) };
                r = cl_node_launch(c, node, "q_concat", 1, (size_t[]) { cl_round_up((size_t) count, ELEMENT_GROUP) },
                                   (size_t[]) { ELEMENT_GROUP }, ELEMENTSOF(args), args);
                if (r < 0)
                        return r;
                offset += inner;
        }
        return 0;
}

int cl_int8_prepare(ClContext *c, const CvoptNode *n, ClNode *node) {
        switch (n->op) {
        case CVOPT_OP_QCONV:
        case CVOPT_OP_QGEMM:
                return prepare_conv_gemm(c, n, node);
        case CVOPT_OP_QMAX_POOL:
        case CVOPT_OP_QAVERAGE_POOL:
        case CVOPT_OP_QGLOBAL_MAX_POOL:
        case CVOPT_OP_QGLOBAL_AVERAGE_POOL:
                return prepare_pool(c, n, node);
        case CVOPT_OP_QCONCAT:
                return prepare_concat(c, n, node);
        default:
                return prepare_eltwise(c, n, node);
        }
}

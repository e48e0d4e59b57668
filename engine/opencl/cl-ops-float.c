/* SPDX-License-Identifier: MIT */
/* Preparing the float operators for cl_kernels/f-*.cl: what float models
 * and the float islands of int8 models use (conv, gemm/matmul, pools,
 * activations, element-wise arithmetic, softmax). Attributes are parsed by
 * the reference's own helpers, so both backends read a node identically;
 * anything those kernels do not cover (3-D pools, broadcasting other than
 * by a scalar, auto_pad) is declined and runs on the CPU. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/q-ops.h"
#include "cpu/ref-internal.h"
#include "cvopt/errors.h"
#include "layout.h"
#include "macro.h"
#include "opencl/cl-backend.h"

#define ELEMENT_GROUP 64 /* as in cl-ops-int8.c */
#define GEMM_GROUP 16    /* f_gemm: 16 output columns per work-group */

_Static_assert(ACT_TANH == (int) REF_ACTIVATION_TANH && ACT_RELU == (int) REF_ACTIVATION_RELU,
               "layout.h's ACT_* follow RefActivationKind");

static bool is_f32(const CvoptTensor *t) {
        return t && t->dtype == CVOPT_DTYPE_FLOAT32;
}

static bool same_count(const CvoptTensor *a, const CvoptTensor *b) {
        return cvopt_tensor_count(a) == cvopt_tensor_count(b);
}

/* A standalone activation op as a fused one: kind and (min, max, alpha, beta). */
static int standalone_activation(const CvoptNode *n, int *ret_kind, cl_float4 *ret_params) {
        cl_float4 a = { { -INFINITY, INFINITY, 0.01f, 0.5f } };

        switch (n->op) {
        case CVOPT_OP_RELU:
                *ret_kind = ACT_RELU;
                break;
        case CVOPT_OP_SIGMOID:
                *ret_kind = ACT_SIGMOID;
                break;
        case CVOPT_OP_TANH:
                *ret_kind = ACT_TANH;
                break;
        case CVOPT_OP_HARD_SWISH:
                *ret_kind = ACT_HARD_SWISH;
                break;
        case CVOPT_OP_LEAKY_RELU:
                *ret_kind = ACT_LEAKY_RELU;
                a.s[2] = cvopt_node_get_float(n, "alpha", 0.01f);
                break;
        case CVOPT_OP_HARD_SIGMOID:
                *ret_kind = ACT_HARD_SIGMOID;
                a.s[2] = cvopt_node_get_float(n, "alpha", 0.2f);
                a.s[3] = cvopt_node_get_float(n, "beta", 0.5f);
                break;
        default:
                return -CVOPT_E_UNSUPPORTED;
        }
        *ret_params = a;
        return 0;
}

static int fused_activation(const CvoptNode *n, int *ret_kind, cl_float4 *ret_params) {
        RefActivation act;
        int r = ref_fused_activation_parse(n, &act);

        if (r < 0)
                return r;
        *ret_kind = (int) act.kind;
        *ret_params = (cl_float4) { { act.min, act.max, act.alpha, act.beta } };
        return 0;
}

bool cl_float_supports(const CvoptGraph *g, const CvoptNode *n) {
        const CvoptTensor *x = cvopt_node_input(g, n, 0), *w = cvopt_node_input(g, n, 1), *b = cvopt_node_input(g, n, 2);
        const CvoptTensor *y = cvopt_node_output(g, n, 0);
        cl_float4 params;
        int kind;

        if (!is_f32(x) || !is_f32(y) || n->n_outputs != 1)
                return false;
        switch (n->op) {
        case CVOPT_OP_CONV:
                return x->ndim == 4 && w && w->is_constant && is_f32(w) && w->ndim == 4 &&
                       (!b || (b->is_constant && is_f32(b) && cvopt_tensor_count(b) == w->dims[0])) &&
                       fused_activation(n, &kind, &params) >= 0;
        case CVOPT_OP_GEMM:
        case CVOPT_OP_MATMUL:
                return x->ndim == 2 && is_f32(w) && w->ndim == 2 && (n->op == CVOPT_OP_GEMM || n->n_inputs == 2) &&
                       (!b || (is_f32(b) && b->ndim <= 2)) && fused_activation(n, &kind, &params) >= 0;
        case CVOPT_OP_MAX_POOL:
        case CVOPT_OP_AVERAGE_POOL:
                return x->ndim == 4 && cvopt_node_attr(n, "kernel_shape");
        case CVOPT_OP_GLOBAL_MAX_POOL:
        case CVOPT_OP_GLOBAL_AVERAGE_POOL:
                return x->ndim == 4;
        case CVOPT_OP_ADD:
        case CVOPT_OP_SUB:
        case CVOPT_OP_MUL:
        case CVOPT_OP_DIV:
                return n->n_inputs == 2 && is_f32(w) && same_count(x, y) &&
                       (same_count(x, w) || cvopt_tensor_count(w) == 1);
        case CVOPT_OP_SOFTMAX:
                return true;
        default:
                return standalone_activation(n, &kind, &params) >= 0;
        }
}

static int prepare_conv(ClContext *c, const CvoptNode *n, ClNode *node) {
        const CvoptGraph *g = c->graph;
        const CvoptTensor *x = cvopt_node_input(g, n, 0), *w = cvopt_node_input(g, n, 1), *b = cvopt_node_input(g, n, 2);
        const int64_t channels = w->dims[0], depth = cvopt_tensor_count(w) / MAX(channels, 1);
        const int64_t group = cvopt_node_get_int(n, "group", 1);
        _cleanup_free_ float *bias = calloc((size_t) MAX(channels, 1), sizeof(float));
        int32_t params[P_COUNT] = { 0 };
        cl_mem xm, ym, pm, wm, bm;
        cl_float4 act_params;
        QWindow win;
        int act, r;

        if (!bias)
                return -ENOMEM;
        if (group < 1 || x->dims[1] % group != 0 || channels % group != 0 || w->dims[1] * group != x->dims[1])
                return cvopt_error_set(-CVOPT_E_SHAPE, "node '%s' (Conv): bad group", n->name);
        if ((r = q_window_init(n, x->dims[2], x->dims[3], w->dims[2], w->dims[3], false, &win)) < 0 ||
            (r = fused_activation(n, &act, &act_params)) < 0)
                return r;
        r = cl_window_params(n, x, &win, params);
        if (r < 0)
                return r;
        params[P_IN_C] = (int32_t) x->dims[1];
        params[P_OUT_C] = (int32_t) channels;
        params[P_GROUP_IN] = (int32_t) (x->dims[1] / group);
        params[P_GROUP_OUT] = (int32_t) (channels / group);
        params[P_DEPTH] = (int32_t) depth;
        if (b)
                memcpy(bias, b->data, (size_t) channels * sizeof(float));
        if ((r = cl_node_buffer(c, node, params, sizeof(params), &pm)) < 0 ||
            (r = cl_node_buffer(c, node, w->data, cvopt_tensor_bytes(w), &wm)) < 0 ||
            (r = cl_node_buffer(c, node, bias, (size_t) channels * sizeof(float), &bm)) < 0 ||
            (r = cl_tensor_buffer(c, n->inputs[0], &xm)) < 0 || (r = cl_tensor_buffer(c, n->outputs[0], &ym)) < 0)
                return r;
        node->activation_inputs = 1;

        const ClArg args[] = { CL_ARG_MEM(xm), CL_ARG_MEM(wm), CL_ARG_MEM(bm), CL_ARG_MEM(pm), CL_ARG_INT(act),
                               { sizeof(cl_float4), &act_params }, CL_ARG_MEM(ym) };
        const size_t pixels = (size_t) (win.out_h * win.out_w), group_out = (size_t) (channels / group);
        if (group_out >= 4)
                return cl_node_launch(c, node, "f_conv_tiled", 3,
                                      (size_t[]) { cl_round_up(pixels, TILE_P), cl_round_up(group_out, TILE_OC),
                                                   (size_t) (x->dims[0] * group) },
                                      (size_t[]) { TILE_P, TILE_OC, 1 }, ELEMENTSOF(args), args);
        r = cl_node_launch(c, node, "f_conv_direct", 3,
                           (size_t[]) { cl_round_up(pixels, ELEMENT_GROUP), (size_t) channels, (size_t) x->dims[0] },
                           (size_t[]) { ELEMENT_GROUP, 1, 1 }, ELEMENTSOF(args), args);
        return r < 0 ? r : cl_node_tune_last(c, node, pixels);
}

static int prepare_gemm(ClContext *c, const CvoptNode *n, ClNode *node) {
        const CvoptGraph *g = c->graph;
        const CvoptTensor *a = cvopt_node_input(g, n, 0), *b = cvopt_node_input(g, n, 1);
        const CvoptTensor *cc = n->op == CVOPT_OP_GEMM ? cvopt_node_input(g, n, 2) : NULL;
        const bool gemm = n->op == CVOPT_OP_GEMM;
        const int64_t trans_a = gemm ? cvopt_node_get_int(n, "transA", 0) : 0;
        const int64_t trans_b = gemm ? cvopt_node_get_int(n, "transB", 0) : 0;
        const float alpha = gemm ? cvopt_node_get_float(n, "alpha", 1.0f) : 1.0f;
        const float beta = gemm ? cvopt_node_get_float(n, "beta", 1.0f) : 1.0f;
        const int64_t m = a->dims[trans_a ? 1 : 0], k = a->dims[trans_a ? 0 : 1], nn = b->dims[trans_b ? 0 : 1];
        int64_t c_row = 0, c_col = 0;
        cl_mem am, bm, cm, ym;
        cl_float4 act_params;
        int act, r;

        if (b->dims[trans_b ? 1 : 0] != k)
                return cvopt_error_set(-CVOPT_E_SHAPE, "node '%s': inner dimensions differ", n->name);
        if ((r = fused_activation(n, &act, &act_params)) < 0)
                return r;
        if (cc) {
                /* As the reference: C broadcasts unidirectionally to M x N. */
                c_row = cc->ndim == 2 && cc->dims[0] != 1 ? cc->dims[cc->ndim - 1] : 0;
                c_col = cc->ndim >= 1 && cc->dims[cc->ndim - 1] != 1 ? 1 : 0;
        }
        if ((r = cl_tensor_buffer(c, n->inputs[0], &am)) < 0 || (r = cl_tensor_buffer(c, n->inputs[1], &bm)) < 0 ||
            (r = cl_tensor_buffer(c, cc ? n->inputs[2] : n->inputs[0], &cm)) < 0 ||
            (r = cl_tensor_buffer(c, n->outputs[0], &ym)) < 0)
                return r;
        node->activation_inputs = cc ? 7 : 3;

        const ClArg args[] = {
                CL_ARG_MEM(am), CL_ARG_MEM(bm), CL_ARG_MEM(cm), CL_ARG_INT(m), CL_ARG_INT(nn), CL_ARG_INT(k),
                CL_ARG_INT(trans_a ? 1 : k), CL_ARG_INT(trans_a ? m : 1), CL_ARG_INT(trans_b ? 1 : nn),
                CL_ARG_INT(trans_b ? k : 1), CL_ARG_INT(c_row), CL_ARG_INT(c_col), CL_ARG_INT(cc && beta != 0),
                CL_ARG_FLOAT(alpha), CL_ARG_FLOAT(beta), CL_ARG_INT(act), { sizeof(cl_float4), &act_params },
                CL_ARG_MEM(ym),
        };
        return cl_node_launch(c, node, "f_gemm", 2,
                              (size_t[]) { cl_round_up((size_t) MAX(nn, 1), GEMM_GROUP), (size_t) MAX(m, 1) },
                              (size_t[]) { GEMM_GROUP, 1 }, ELEMENTSOF(args), args);
}

static int prepare_pool(ClContext *c, const CvoptNode *n, ClNode *node) {
        const CvoptGraph *g = c->graph;
        const CvoptTensor *x = cvopt_node_input(g, n, 0);
        const bool global = n->op == CVOPT_OP_GLOBAL_MAX_POOL || n->op == CVOPT_OP_GLOBAL_AVERAGE_POOL;
        int32_t params[P_COUNT] = { 0 };
        QWindow win = { .kernel_h = 1, .kernel_w = 1, .out_h = 1, .out_w = 1 };
        cl_mem xm, ym, pm;
        int r;

        if (!global) {
                r = q_window_init(n, x->dims[2], x->dims[3], 0, 0, cvopt_node_get_int(n, "ceil_mode", 0) != 0, &win);
                if (r < 0)
                        return r;
        }
        r = cl_window_params(n, x, &win, params);
        if (r < 0)
                return r;
        params[P_MODE] = n->op == CVOPT_OP_MAX_POOL || n->op == CVOPT_OP_GLOBAL_MAX_POOL;
        params[P_COUNT_PAD] = cvopt_node_get_int(n, "count_include_pad", 0) != 0;
        if ((r = cl_node_buffer(c, node, params, sizeof(params), &pm)) < 0 ||
            (r = cl_tensor_buffer(c, n->inputs[0], &xm)) < 0 || (r = cl_tensor_buffer(c, n->outputs[0], &ym)) < 0)
                return r;
        node->activation_inputs = 1;

        const size_t planes = (size_t) (x->dims[0] * x->dims[1]);
        const size_t total = global ? planes : planes * (size_t) (win.out_h * win.out_w);
        const ClArg args[] = { CL_ARG_MEM(xm), CL_ARG_MEM(pm), CL_ARG_MEM(ym), CL_ARG_INT(total) };
        r = cl_node_launch(c, node, global ? "f_global_pool" : "f_pool", 1,
                           (size_t[]) { cl_round_up(MAX(total, 1u), ELEMENT_GROUP) }, (size_t[]) { ELEMENT_GROUP },
                           ELEMENTSOF(args), args);
        return r < 0 ? r : cl_node_tune_last(c, node, total);
}

static int prepare_softmax(ClContext *c, const CvoptNode *n, ClNode *node) {
        const CvoptTensor *x = cvopt_node_input(c->graph, n, 0);
        const int64_t coerce = cvopt_node_get_int(n, "coerce_2d", 0);
        int64_t axis = cvopt_node_get_int(n, "axis", coerce ? 1 : -1), outer = 1, length = 1, inner = 1;
        cl_mem xm, ym;
        int r;

        if (axis < 0)
                axis += x->ndim;
        if (x->ndim == 0 || axis < 0 || axis > (int64_t) x->ndim || (!coerce && axis == (int64_t) x->ndim))
                return cvopt_error_set(-CVOPT_E_SHAPE, "node '%s' (Softmax): axis out of range", n->name);
        for (int64_t d = 0; d < (int64_t) x->ndim; d++) {
                if (d < axis)
                        outer *= x->dims[d];
                else if (d == axis || coerce)
                        length *= x->dims[d];
                else
                        inner *= x->dims[d];
        }
        if ((r = cl_tensor_buffer(c, n->inputs[0], &xm)) < 0 || (r = cl_tensor_buffer(c, n->outputs[0], &ym)) < 0)
                return r;
        node->activation_inputs = 1;
        const ClArg args[] = { CL_ARG_MEM(xm), CL_ARG_MEM(ym), CL_ARG_INT(outer), CL_ARG_INT(length),
                               CL_ARG_INT(inner) };
        return cl_node_launch(c, node, "f_softmax", 1,
                              (size_t[]) { cl_round_up((size_t) MAX(outer * inner, 1), ELEMENT_GROUP) },
                              (size_t[]) { ELEMENT_GROUP }, ELEMENTSOF(args), args);
}

static int prepare_eltwise(ClContext *c, const CvoptNode *n, ClNode *node) {
        const CvoptGraph *g = c->graph;
        const int64_t count = cvopt_tensor_count(cvopt_node_output(g, n, 0));
        const size_t global[1] = { cl_round_up((size_t) MAX(count, 1), ELEMENT_GROUP) }, local[1] = { ELEMENT_GROUP };
        cl_mem xm, ym, bm;
        cl_float4 act_params;
        int act, r;

        if ((r = cl_tensor_buffer(c, n->inputs[0], &xm)) < 0 || (r = cl_tensor_buffer(c, n->outputs[0], &ym)) < 0)
                return r;
        node->activation_inputs = 1;
        if (n->op == CVOPT_OP_ADD || n->op == CVOPT_OP_SUB || n->op == CVOPT_OP_MUL || n->op == CVOPT_OP_DIV) {
                const int op = n->op == CVOPT_OP_ADD ? BINARY_ADD : n->op == CVOPT_OP_SUB ? BINARY_SUB :
                               n->op == CVOPT_OP_MUL ? BINARY_MUL : BINARY_DIV;

                if ((r = cl_tensor_buffer(c, n->inputs[1], &bm)) < 0)
                        return r;
                node->activation_inputs = 3;
                const ClArg args[] = { CL_ARG_MEM(xm), CL_ARG_MEM(bm), CL_ARG_MEM(ym), CL_ARG_INT(op),
                                       CL_ARG_INT(cvopt_tensor_count(cvopt_node_input(g, n, 1))), CL_ARG_INT(count) };
                return cl_node_launch(c, node, "f_binary", 1, global, local, ELEMENTSOF(args), args);
        }
        if ((r = standalone_activation(n, &act, &act_params)) < 0)
                return r;
        const ClArg args[] = { CL_ARG_MEM(xm), CL_ARG_MEM(ym), CL_ARG_INT(act), { sizeof(cl_float4), &act_params },
                               CL_ARG_INT(count) };
        return cl_node_launch(c, node, "f_activation", 1, global, local, ELEMENTSOF(args), args);
}

int cl_float_prepare(ClContext *c, const CvoptNode *n, ClNode *node) {
        switch (n->op) {
        case CVOPT_OP_CONV:
                return prepare_conv(c, n, node);
        case CVOPT_OP_GEMM:
        case CVOPT_OP_MATMUL:
                return prepare_gemm(c, n, node);
        case CVOPT_OP_MAX_POOL:
        case CVOPT_OP_AVERAGE_POOL:
        case CVOPT_OP_GLOBAL_MAX_POOL:
        case CVOPT_OP_GLOBAL_AVERAGE_POOL:
                return prepare_pool(c, n, node);
        case CVOPT_OP_SOFTMAX:
                return prepare_softmax(c, n, node);
        default:
                return prepare_eltwise(c, n, node);
        }
}

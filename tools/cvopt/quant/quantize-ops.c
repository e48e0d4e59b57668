/* SPDX-License-Identifier: MIT */
/* Quantizing the unweighted operators: pools, residual adds, concats,
 * element-wise activations (as 256-entry tables) and the data-movement ops
 * that only reorder bytes. Each runs quantized only when its input is
 * already uint8 — quantizing just to pool and dequantizing again would
 * cost accuracy and time for nothing. */
#include <math.h>

#include "cvopt/quant.h"
#include "macro.h"
#include "quantize-internal.h"

static int add_node(Builder *b, const CvoptNode *n, CvoptOp op, uint32_t n_inputs, const int32_t *inputs, int32_t output,
                    CvoptNode **ret) {
        int32_t index;
        int r = cvopt_graph_add_node(b->q, n->name, op, n_inputs, inputs, 1, &output, &index);

        if (r < 0)
                return r;
        *ret = &b->q->nodes[index];
        return 0;
}

static int set_multiplier(CvoptNode *qn, double real) {
        int32_t m, s;
        int64_t mult, shift;
        int r = cvopt_quantize_multiplier(real, &m, &s);

        if (r < 0)
                return r;
        mult = m;
        shift = s;
        if ((r = cvopt_node_set_ints(qn, "multiplier", 1, &mult)) < 0)
                return r;
        return cvopt_node_set_ints(qn, "shift", 1, &shift);
}

static int emit_pool(Builder *b, const CvoptNode *n) {
        const CvoptTensor *x = &b->f->tensors[n->inputs[0]];
        int32_t xq = b->as_quant[n->inputs[0]], yq;
        bool is_max = n->op == CVOPT_OP_MAX_POOL || n->op == CVOPT_OP_GLOBAL_MAX_POOL;
        bool global = n->op == CVOPT_OP_GLOBAL_MAX_POOL || n->op == CVOPT_OP_GLOBAL_AVERAGE_POOL;
        CvoptNode *qn;
        int r;

        if (xq < 0 || x->ndim != 4 || n->n_outputs != 1)
                return 0;
        if (!global && (!cvopt_node_attr(n, "kernel_shape") || cvopt_node_attr(n, "kernel_shape")->count != 2 ||
                        cvopt_node_get_int(n, "storage_order", 0) != 0))
                return 0;
        r = builder_quant_output(b, n->outputs[0], is_max ? xq : -1, &yq);
        if (r < 0)
                return r;
        CvoptOp op = n->op == CVOPT_OP_MAX_POOL           ? CVOPT_OP_QMAX_POOL
                     : n->op == CVOPT_OP_AVERAGE_POOL     ? CVOPT_OP_QAVERAGE_POOL
                     : n->op == CVOPT_OP_GLOBAL_MAX_POOL  ? CVOPT_OP_QGLOBAL_MAX_POOL
                                                          : CVOPT_OP_QGLOBAL_AVERAGE_POOL;
        if ((r = add_node(b, n, op, 1, &xq, yq, &qn)) < 0)
                return r;
        const float sx = b->q->tensors[xq].quant.scale[0], sy = b->q->tensors[yq].quant.scale[0];
        if (global) {
                if (is_max)
                        return 1;
                r = set_multiplier(qn, (double) sx / ((double) sy * (double) (x->dims[2] * x->dims[3])));
                return r < 0 ? r : 1;
        }
        const CvoptAttr *kernel = cvopt_node_attr(n, "kernel_shape");
        int64_t pads[4];
        if ((r = quantize_resolve_pads(n, x, kernel->ints[0], kernel->ints[1], pads)) < 0)
                return r == -CVOPT_E_UNSUPPORTED ? 0 : r;
        if ((r = cvopt_node_set_ints(qn, "kernel_shape", 2, kernel->ints)) < 0 ||
            (r = cvopt_node_set_ints(qn, "pads", 4, pads)) < 0)
                return r;
        static const char *const copied[] = { "strides", "dilations", "ceil_mode", "count_include_pad" };
        for (size_t i = 0; i < ELEMENTSOF(copied); i++) {
                const CvoptAttr *a = cvopt_node_attr(n, copied[i]);

                if (!a)
                        continue;
                r = a->type == CVOPT_ATTR_INT ? cvopt_node_set_int(qn, copied[i], a->i)
                                              : cvopt_node_set_ints(qn, copied[i], a->count, a->ints);
                if (r < 0)
                        return r;
        }
        if (is_max)
                return 1;
        /* One multiplier per possible window count, so border windows that
         * see fewer elements divide exactly without a division at run time. */
        const int64_t window = kernel->ints[0] * kernel->ints[1];
        if (window < 1 || window > 65536)
                return 0;
        _cleanup_free_ int64_t *mult = calloc((size_t) window + 1, sizeof(int64_t));
        _cleanup_free_ int64_t *shift = calloc((size_t) window + 1, sizeof(int64_t));
        if (!mult || !shift)
                return -ENOMEM;
        shift[0] = 1;
        for (int64_t c = 1; c <= window; c++) {
                int32_t m, s;

                if ((r = cvopt_quantize_multiplier((double) sx / ((double) sy * (double) c), &m, &s)) < 0)
                        return r;
                mult[c] = m;
                shift[c] = s;
        }
        if ((r = cvopt_node_set_ints(qn, "multiplier", (uint32_t) window + 1, mult)) < 0 ||
            (r = cvopt_node_set_ints(qn, "shift", (uint32_t) window + 1, shift)) < 0)
                return r;
        return 1;
}

static bool same_shape(const CvoptTensor *a, const CvoptTensor *b) {
        return a->ndim == b->ndim && memcmp(a->dims, b->dims, a->ndim * sizeof(int64_t)) == 0;
}

static int emit_add(Builder *b, const CvoptNode *n) {
        const CvoptTensor *a = &b->f->tensors[n->inputs[0]], *c = &b->f->tensors[n->inputs[1]];
        int32_t inputs[2], yq;
        CvoptNode *qn;
        int r;

        if (a->is_constant || c->is_constant || !same_shape(a, c) ||
            (b->as_quant[n->inputs[0]] < 0 && b->as_quant[n->inputs[1]] < 0))
                return 0;
        if ((r = builder_quant_version(b, n->inputs[0], &inputs[0])) < 0 ||
            (r = builder_quant_version(b, n->inputs[1], &inputs[1])) < 0 ||
            (r = builder_quant_output(b, n->outputs[0], -1, &yq)) < 0 || (r = add_node(b, n, CVOPT_OP_QADD, 2, inputs, yq, &qn)) < 0)
                return r;
        /* Both inputs share one shift, chosen for the larger ratio so it
         * fills 31 bits; the smaller one keeps proportionally fewer. */
        const double sy = b->q->tensors[yq].quant.scale[0];
        const double ra = b->q->tensors[inputs[0]].quant.scale[0] / sy, rb = b->q->tensors[inputs[1]].quant.scale[0] / sy;
        int32_t m, s;
        if ((r = cvopt_quantize_multiplier(MAX(ra, rb), &m, &s)) < 0)
                return r;
        int64_t mult[2] = { llround(ldexp(ra, s)), llround(ldexp(rb, s)) };
        if ((r = cvopt_node_set_ints(qn, "multiplier", 2, mult)) < 0 || (r = cvopt_node_set_int(qn, "shift", s)) < 0)
                return r;
        return 1;
}

static int emit_concat(Builder *b, const CvoptNode *n) {
        _cleanup_free_ int32_t *inputs = calloc(MAX(n->n_inputs, 1u), sizeof(int32_t));
        _cleanup_free_ int64_t *mult = calloc(MAX(n->n_inputs, 1u), sizeof(int64_t));
        _cleanup_free_ int64_t *shift = calloc(MAX(n->n_inputs, 1u), sizeof(int64_t));
        bool any_quantized = false;
        int32_t yq;
        CvoptNode *qn;
        int r;

        if (!inputs || !mult || !shift)
                return -ENOMEM;
        for (uint32_t i = 0; i < n->n_inputs; i++) {
                if (n->inputs[i] < 0 || b->f->tensors[n->inputs[i]].is_constant)
                        return 0;
                any_quantized |= b->as_quant[n->inputs[i]] >= 0;
        }
        if (!any_quantized)
                return 0;
        for (uint32_t i = 0; i < n->n_inputs; i++)
                if ((r = builder_quant_version(b, n->inputs[i], &inputs[i])) < 0)
                        return r;
        if ((r = builder_quant_output(b, n->outputs[0], -1, &yq)) < 0 ||
            (r = add_node(b, n, CVOPT_OP_QCONCAT, n->n_inputs, inputs, yq, &qn)) < 0)
                return r;
        for (uint32_t i = 0; i < n->n_inputs; i++) {
                int32_t m, s;

                r = cvopt_quantize_multiplier((double) b->q->tensors[inputs[i]].quant.scale[0] / b->q->tensors[yq].quant.scale[0],
                                          &m, &s);
                if (r < 0)
                        return r;
                mult[i] = m;
                shift[i] = s;
        }
        if ((r = cvopt_node_set_int(qn, "axis", cvopt_node_get_int(n, "axis", 1))) < 0 ||
            (r = cvopt_node_set_ints(qn, "multiplier", n->n_inputs, mult)) < 0 ||
            (r = cvopt_node_set_ints(qn, "shift", n->n_inputs, shift)) < 0)
                return r;
        return 1;
}

static float activation(const CvoptNode *n, float x) {
        switch (n->op) {
        case CVOPT_OP_RELU:
                return MAX(x, 0.0f);
        case CVOPT_OP_CLIP:
                return CLAMP(x, cvopt_node_get_float(n, "min", -INFINITY), cvopt_node_get_float(n, "max", INFINITY));
        case CVOPT_OP_LEAKY_RELU:
                return x >= 0 ? x : x * cvopt_node_get_float(n, "alpha", 0.01f);
        case CVOPT_OP_SIGMOID:
                return 1.0f / (1.0f + expf(-x));
        case CVOPT_OP_HARD_SIGMOID:
                return CLAMP(cvopt_node_get_float(n, "alpha", 0.2f) * x + cvopt_node_get_float(n, "beta", 0.5f), 0.0f, 1.0f);
        case CVOPT_OP_HARD_SWISH:
                return x * CLAMP(x / 6.0f + 0.5f, 0.0f, 1.0f);
        case CVOPT_OP_TANH:
                return tanhf(x);
        default:
                return x;
        }
}

/* Any element-wise activation of a uint8 tensor is exactly a table of 256
 * entries: computed here once, in float, and looked up at run time. */
static int emit_lut(Builder *b, const CvoptNode *n) {
        int32_t xq = b->as_quant[n->inputs[0]], yq;
        int64_t lut[256];
        CvoptNode *qn;
        int r;

        if (xq < 0 || n->n_outputs != 1)
                return 0;
        if ((r = builder_quant_output(b, n->outputs[0], -1, &yq)) < 0)
                return r;
        const float sx = b->q->tensors[xq].quant.scale[0], sy = b->q->tensors[yq].quant.scale[0];
        const int32_t zx = b->q->tensors[xq].quant.zero_point[0], zy = b->q->tensors[yq].quant.zero_point[0];
        for (int v = 0; v < 256; v++)
                lut[v] = CLAMP(lroundf(activation(n, (float) (v - zx) * sx) / sy) + zy, 0, 255);
        if ((r = add_node(b, n, CVOPT_OP_QLUT, 1, &xq, yq, &qn)) < 0 || (r = cvopt_node_set_ints(qn, "lut", 256, lut)) < 0)
                return r;
        return 1;
}

/* Ops that only move bytes run on uint8 unchanged, keeping the input's
 * quantization. */
static int emit_data_movement(Builder *b, const CvoptNode *n) {
        int32_t xq = b->as_quant[n->inputs[0]], yq, inputs[8];
        CvoptNode *qn;
        int r;

        if (xq < 0 || n->n_outputs != 1 || n->n_inputs > ELEMENTSOF(inputs))
                return 0;
        inputs[0] = xq;
        for (uint32_t i = 1; i < n->n_inputs; i++) {
                inputs[i] = -1;
                if (n->inputs[i] >= 0 && (r = builder_float_version(b, n->inputs[i], &inputs[i])) < 0)
                        return r;
        }
        if ((r = builder_quant_output(b, n->outputs[0], xq, &yq)) < 0 ||
            (r = add_node(b, n, n->op, n->n_inputs, inputs, yq, &qn)) < 0 || (r = builder_copy_attrs(n, qn)) < 0)
                return r;
        return 1;
}

int builder_emit_quantized(Builder *b, uint32_t node_index) {
        const CvoptNode *n = &b->f->nodes[node_index];

        if (n->n_inputs == 0 || n->inputs[0] < 0)
                return 0;
        switch (n->op) {
        case CVOPT_OP_CONV:
        case CVOPT_OP_GEMM:
        case CVOPT_OP_MATMUL:
                return quantize_is_layer(b->f, n) ? quantize_emit_layer(b, node_index) : 0;
        case CVOPT_OP_MAX_POOL:
        case CVOPT_OP_AVERAGE_POOL:
        case CVOPT_OP_GLOBAL_MAX_POOL:
        case CVOPT_OP_GLOBAL_AVERAGE_POOL:
                return emit_pool(b, n);
        case CVOPT_OP_ADD:
                return emit_add(b, n);
        case CVOPT_OP_CONCAT:
                return emit_concat(b, n);
        case CVOPT_OP_RELU:
        case CVOPT_OP_CLIP:
        case CVOPT_OP_LEAKY_RELU:
        case CVOPT_OP_SIGMOID:
        case CVOPT_OP_HARD_SIGMOID:
        case CVOPT_OP_HARD_SWISH:
        case CVOPT_OP_TANH:
                return emit_lut(b, n);
        case CVOPT_OP_FLATTEN:
        case CVOPT_OP_RESHAPE:
        case CVOPT_OP_SQUEEZE:
        case CVOPT_OP_UNSQUEEZE:
        case CVOPT_OP_TRANSPOSE:
        case CVOPT_OP_SLICE:
        case CVOPT_OP_IDENTITY:
        case CVOPT_OP_DROPOUT:
                return emit_data_movement(b, n);
        default:
                return 0;
        }
}

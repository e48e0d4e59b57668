/* SPDX-License-Identifier: MIT */
/* Builds the quantized graph from the float one, node by node. Each float
 * tensor may get a float and/or a uint8 version in the new graph; a node
 * runs quantized when it has an int8 kernel and its parameters fit the
 * numerics contract, and otherwise stays in float, with Dequantize /
 * Quantize nodes added at the borders of such islands on demand. */
#include <math.h>
#include <stdio.h>

#include "cvopt/quant.h"
#include "macro.h"
#include "quantize-internal.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptGraph *, cvopt_graph_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(QuantizeReport *, quantize_report_free);

QuantizeReport *quantize_report_free(QuantizeReport *r) {
        if (!r)
                return NULL;
        for (uint32_t i = 0; i < r->n_layers; i++) {
                free(r->layers[i].name);
                free(r->layers[i].note);
        }
        free(r->layers);
        free(r->float_ops);
        free(r);
        return NULL;
}

void quantize_weights_per_channel(const float *w, int64_t channels, int64_t depth, unsigned bits, int8_t *ret_q,
                                  float *ret_scale) {
        const int qmax = (1 << (bits - 1)) - 1;

        for (int64_t c = 0; c < channels; c++) {
                const float *row = w + c * depth;
                float amax = 0;

                for (int64_t k = 0; k < depth; k++)
                        amax = MAX(amax, fabsf(row[k]));
                /* An all-zero channel (pruned) quantizes to zeros with any scale. */
                ret_scale[c] = amax > 0 ? amax / (float) qmax : 1.0f;
                for (int64_t k = 0; k < depth; k++)
                        ret_q[c * depth + k] = (int8_t) CLAMP(lroundf(row[k] / ret_scale[c]), -qmax, qmax);
        }
}

int builder_activation_quant(Builder *b, int32_t ft, float *ret_scale, int32_t *ret_zero_point) {
        float lo, hi;
        int r;

        if (b->scale[ft] > 0) {
                *ret_scale = b->scale[ft];
                *ret_zero_point = b->zero_point[ft];
                return 0;
        }
        if ((uint32_t) ft >= b->stats->n_tensors)
                return -EINVAL;
        r = calibration_choose_range(&b->stats->tensors[ft], b->options->calibration, &lo, &hi);
        if (r < 0)
                return cvopt_error_prefix(r, "tensor '%s'", b->f->tensors[ft].name);
        calibration_range_to_quant(lo, hi, &b->scale[ft], &b->zero_point[ft]);
        *ret_scale = b->scale[ft];
        *ret_zero_point = b->zero_point[ft];
        return 0;
}

int builder_set_quant(CvoptTensor *t, float scale, int32_t zero_point) {
        free(t->quant.scale);
        free(t->quant.zero_point);
        t->quant.scale = malloc(sizeof(float));
        t->quant.zero_point = malloc(sizeof(int32_t));
        if (!t->quant.scale || !t->quant.zero_point)
                return -ENOMEM;
        t->quant.axis = -1;
        t->quant.count = 1;
        t->quant.scale[0] = scale;
        t->quant.zero_point[0] = zero_point;
        return 0;
}

/* A new tensor in the quantized graph with f's shape; the name gets a
 * suffix when taken. */
int builder_add_tensor(Builder *b, int32_t ft, const char *suffix, CvoptDType dtype, int32_t *ret) {
        const CvoptTensor *t = &b->f->tensors[ft];
        char name[512];
        int r;

        for (unsigned attempt = 0;; attempt++) {
                if (attempt == 0)
                        snprintf(name, sizeof(name), "%s%s", t->name, suffix);
                else
                        snprintf(name, sizeof(name), "%s%s~%u", t->name, suffix, attempt);
                if (cvopt_graph_find_tensor(b->q, name) < 0)
                        break;
                if (attempt > 1000)
                        return -EEXIST;
        }
        r = cvopt_graph_add_tensor(b->q, name, dtype, t->ndim, t->dims, ret);
        return r;
}

int builder_float_version(Builder *b, int32_t ft, int32_t *ret) {
        const CvoptTensor *t = &b->f->tensors[ft];
        int32_t index, node;
        int r;

        if (b->as_float[ft] >= 0) {
                *ret = b->as_float[ft];
                return 0;
        }
        if (t->is_constant) {
                size_t bytes = cvopt_tensor_bytes(t);
                void *copy = malloc(MAX(bytes, 1u));

                if (!copy)
                        return -ENOMEM;
                if (bytes)
                        memcpy(copy, t->data, bytes);
                r = cvopt_graph_add_constant(b->q, t->name, t->dtype, t->ndim, t->dims, copy, true, &index);
                if (r < 0) {
                        free(copy);
                        return r;
                }
        } else if (b->as_quant[ft] >= 0) {
                char node_name[600];

                r = builder_add_tensor(b, ft, "", CVOPT_DTYPE_FLOAT32, &index);
                if (r < 0)
                        return r;
                snprintf(node_name, sizeof(node_name), "dequantize:%s", t->name);
                r = cvopt_graph_add_node(b->q, node_name, CVOPT_OP_DEQUANTIZE, 1, &b->as_quant[ft], 1, &index, &node);
                if (r < 0)
                        return r;
        } else
                return cvopt_error_set(-EINVAL, "tensor '%s' used before it is computed", t->name);
        b->as_float[ft] = index;
        *ret = index;
        return 0;
}

int builder_quant_version(Builder *b, int32_t ft, int32_t *ret) {
        const CvoptTensor *t = &b->f->tensors[ft];
        char node_name[600];
        int32_t source, index, node;
        float scale;
        int32_t zero_point;
        int r;

        if (b->as_quant[ft] >= 0) {
                *ret = b->as_quant[ft];
                return 0;
        }
        if (t->is_constant || t->dtype != CVOPT_DTYPE_FLOAT32)
                return -CVOPT_E_UNSUPPORTED;
        if ((r = builder_activation_quant(b, ft, &scale, &zero_point)) < 0 ||
            (r = builder_float_version(b, ft, &source)) < 0 ||
            (r = builder_add_tensor(b, ft, ".q", CVOPT_DTYPE_UINT8, &index)) < 0 ||
            (r = builder_set_quant(&b->q->tensors[index], scale, zero_point)) < 0)
                return r;
        snprintf(node_name, sizeof(node_name), "quantize:%s", t->name);
        r = cvopt_graph_add_node(b->q, node_name, CVOPT_OP_QUANTIZE, 1, &source, 1, &index, &node);
        if (r < 0)
                return r;
        r = cvopt_node_set_float(&b->q->nodes[node], "inv_scale", 1.0f / scale);
        if (r < 0)
                return r;
        b->as_quant[ft] = index;
        *ret = index;
        return 0;
}

/* The uint8 output of a quantized node: a calibrated range of its own, or
 * (same_as >= 0) exactly the quantization of another q-graph tensor. */
int builder_quant_output(Builder *b, int32_t ft, int32_t same_as, int32_t *ret) {
        float scale;
        int32_t zero_point, index;
        int r;

        if (same_as >= 0) {
                scale = b->q->tensors[same_as].quant.scale[0];
                zero_point = b->q->tensors[same_as].quant.zero_point[0];
                b->scale[ft] = scale;
                b->zero_point[ft] = zero_point;
        } else if ((r = builder_activation_quant(b, ft, &scale, &zero_point)) < 0)
                return r;
        if ((r = builder_add_tensor(b, ft, ".q", CVOPT_DTYPE_UINT8, &index)) < 0 ||
            (r = builder_set_quant(&b->q->tensors[index], scale, zero_point)) < 0)
                return r;
        b->as_quant[ft] = index;
        *ret = index;
        return 0;
}

int builder_copy_attrs(const CvoptNode *from, CvoptNode *to) {
        int r = 0;

        for (uint32_t a = 0; a < from->n_attrs && r >= 0; a++) {
                const CvoptAttr *at = &from->attrs[a];

                switch (at->type) {
                case CVOPT_ATTR_INT:
                        r = cvopt_node_set_int(to, at->name, at->i);
                        break;
                case CVOPT_ATTR_FLOAT:
                        r = cvopt_node_set_float(to, at->name, at->f);
                        break;
                case CVOPT_ATTR_STRING:
                        r = cvopt_node_set_string(to, at->name, at->s);
                        break;
                case CVOPT_ATTR_INTS:
                        r = cvopt_node_set_ints(to, at->name, at->count, at->ints);
                        break;
                case CVOPT_ATTR_FLOATS:
                        r = cvopt_node_set_floats(to, at->name, at->count, at->floats);
                        break;
                }
        }
        return r;
}

/* The node as it was, in float. */
static int emit_float(Builder *b, const CvoptNode *n) {
        int32_t inputs[64], outputs[64], node;
        int r;

        if (n->n_inputs > ELEMENTSOF(inputs) || n->n_outputs > ELEMENTSOF(outputs))
                return -E2BIG;
        for (uint32_t i = 0; i < n->n_inputs; i++) {
                inputs[i] = -1;
                if (n->inputs[i] >= 0 && (r = builder_float_version(b, n->inputs[i], &inputs[i])) < 0)
                        return r;
        }
        for (uint32_t i = 0; i < n->n_outputs; i++) {
                r = builder_add_tensor(b, n->outputs[i], "", b->f->tensors[n->outputs[i]].dtype, &outputs[i]);
                if (r < 0)
                        return r;
                b->as_float[n->outputs[i]] = outputs[i];
        }
        r = cvopt_graph_add_node(b->q, n->name, n->op, n->n_inputs, inputs, n->n_outputs, outputs, &node);
        if (r < 0)
                return r;
        b->n_float_nodes[n->op]++;
        return builder_copy_attrs(n, &b->q->nodes[node]);
}

static int report_float_ops(Builder *b) {
        char text[1024] = "";
        size_t used = 0;

        for (int op = 0; op < _CVOPT_OP_MAX; op++) {
                if (!b->n_float_nodes[op])
                        continue;
                b->report->n_float_ops += b->n_float_nodes[op];
                used += snprintf(text + used, sizeof(text) - MIN(used, sizeof(text)), "%s%s x%u", used ? ", " : "",
                                 cvopt_op_name(op), b->n_float_nodes[op]);
                if (used >= sizeof(text))
                        break;
        }
        b->report->float_ops = strdup(text);
        return b->report->float_ops ? 0 : -ENOMEM;
}

int quantize_graph(const CvoptGraph *float_graph, const CalibrationStats *stats, const QuantizeOptions *options,
                   CvoptGraph **ret_graph, QuantizeReport **ret_report) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *q = NULL;
        _cleanup_(quantize_report_freep) QuantizeReport *report = NULL;
        _cleanup_free_ int32_t *as_float = NULL, *as_quant = NULL, *zero_point = NULL;
        _cleanup_free_ float *scale = NULL;
        _cleanup_free_ int32_t *outputs = NULL;
        Builder b;
        int r;

        if (stats->n_tensors != float_graph->n_tensors)
                return cvopt_error_set(-EINVAL, "calibration statistics are for another graph");
        if (options->weight_bits < 2 || options->weight_bits > 8)
                return cvopt_error_set(-EINVAL, "weight bits must be 2..8");
        r = cvopt_graph_new(&q);
        if (r < 0)
                return r;
        report = calloc(1, sizeof(*report));
        as_float = malloc(MAX(float_graph->n_tensors, 1u) * sizeof(int32_t));
        as_quant = malloc(MAX(float_graph->n_tensors, 1u) * sizeof(int32_t));
        zero_point = calloc(MAX(float_graph->n_tensors, 1u), sizeof(int32_t));
        scale = calloc(MAX(float_graph->n_tensors, 1u), sizeof(float));
        outputs = calloc(MAX(MAX(float_graph->n_outputs, float_graph->n_inputs), 1u), sizeof(int32_t));
        if (!report || !as_float || !as_quant || !zero_point || !scale || !outputs)
                return -ENOMEM;
        for (uint32_t i = 0; i < float_graph->n_tensors; i++)
                as_float[i] = as_quant[i] = -1;

        b = (Builder) {
                .f = float_graph, .stats = stats, .options = options, .q = q, .as_float = as_float,
                .as_quant = as_quant, .scale = scale, .zero_point = zero_point, .report = report,
        };

        for (uint32_t i = 0; i < float_graph->n_inputs; i++) {
                int32_t ft = float_graph->inputs[i];

                r = builder_add_tensor(&b, ft, "", float_graph->tensors[ft].dtype, &as_float[ft]);
                if (r < 0)
                        return r;
        }
        for (uint32_t i = 0; i < float_graph->n_inputs; i++)
                outputs[i] = as_float[float_graph->inputs[i]];
        r = cvopt_graph_set_inputs(q, float_graph->n_inputs, outputs);
        if (r < 0)
                return r;

        for (uint32_t k = 0; k < float_graph->n_nodes; k++) {
                const CvoptNode *n = &float_graph->nodes[k];

                r = builder_emit_quantized(&b, k);
                if (r < 0)
                        return cvopt_error_prefix(r, "quantizing node '%s' (%s)", n->name, cvopt_op_name(n->op));
                if (r == 0 && (r = emit_float(&b, n)) < 0)
                        return cvopt_error_prefix(r, "node '%s' (%s)", n->name, cvopt_op_name(n->op));
        }
        for (uint32_t i = 0; i < float_graph->n_outputs; i++) {
                r = builder_float_version(&b, float_graph->outputs[i], &outputs[i]);
                if (r < 0)
                        return r;
        }
        r = cvopt_graph_set_outputs(q, float_graph->n_outputs, outputs);
        if (r < 0)
                return r;
        r = cvopt_graph_prune_unused(q);
        if (r < 0)
                return r;
        r = report_float_ops(&b);
        if (r < 0)
                return r;
        r = cvopt_graph_validate(q);
        if (r < 0)
                return cvopt_error_prefix(r, "quantized graph");
        *ret_graph = TAKE_PTR(q);
        if (ret_report)
                *ret_report = TAKE_PTR(report);
        return 0;
}

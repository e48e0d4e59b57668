/* SPDX-License-Identifier: MIT */
/* Quantizing the weighted layers: Conv, Gemm and MatMul with constant
 * weights become QConv/QGemm with per-channel int8 (or int4) weights,
 * int32 biases that absorb the input zero point, and per-channel
 * requantization multipliers. */
#include <math.h>
#include <stdio.h>

#include "cvopt/quant.h"
#include "macro.h"
#include "quantize-internal.h"

/* The int32 accumulator holds depth products of at most 255 * 127 plus the
 * bias: 2^31 / (255 * 127) / 2 leaves room for a bias of the same size. */
#define MAX_DEPTH 32768

typedef struct Layer {
        int64_t channels, depth;
        const float *weights; /* [channels][depth] */
        float *owned_weights; /* a transposed copy, when needed */
        float *bias;          /* [channels], owned */
} Layer;

static void layer_done(Layer *l) {
        free(l->owned_weights);
        free(l->bias);
}

bool quantize_is_layer(const CvoptGraph *g, const CvoptNode *n) {
        const CvoptTensor *w = cvopt_node_input(g, n, 1);

        if (n->op != CVOPT_OP_CONV && n->op != CVOPT_OP_GEMM && n->op != CVOPT_OP_MATMUL)
                return false;
        return w && w->is_constant && w->dtype == CVOPT_DTYPE_FLOAT32;
}

static int add_layer_report(Builder *b, const CvoptNode *n, unsigned bits, uint64_t params, uint64_t bytes,
                            double sqnr, double sparsity, const char *note) {
        QuantizeReport *r = b->report;
        LayerReport *p = reallocarray(r->layers, r->n_layers + 1, sizeof(LayerReport));

        if (!p)
                return -ENOMEM;
        r->layers = p;
        p = &r->layers[r->n_layers++];
        *p = (LayerReport) { .name = strdup(n->name), .op = cvopt_op_name(n->op), .bits = bits, .params = params,
                             .bytes = bytes, .weight_sqnr_db = sqnr, .sparsity = sparsity, .note = note ? strdup(note) : NULL };
        return p->name ? 0 : -ENOMEM;
}

/* Keeps the layer in float with a reason in the report. */
static int keep_float(Builder *b, const CvoptNode *n, const char *why) {
        const CvoptTensor *w = cvopt_node_input(b->f, n, 1), *bias = cvopt_node_input(b->f, n, 2);
        uint64_t params = (uint64_t) cvopt_tensor_count(w) + (bias ? (uint64_t) cvopt_tensor_count(bias) : 0);
        uint64_t zeros = 0;
        int r;

        for (int64_t i = 0; i < cvopt_tensor_count(w); i++)
                zeros += ((const float *) w->data)[i] == 0;
        r = add_layer_report(b, n, 32, params, params * 4, INFINITY, (double) zeros / (double) MAX(cvopt_tensor_count(w), 1), why);

        return r < 0 ? r : 0;
}

static int layer_read(Builder *b, const CvoptNode *n, Layer *l, const char **ret_why) {
        const CvoptTensor *x = cvopt_node_input(b->f, n, 0), *w = cvopt_node_input(b->f, n, 1);
        const CvoptTensor *c = cvopt_node_input(b->f, n, 2);
        bool transpose = false;

        if (n->op == CVOPT_OP_CONV) {
                if (x->ndim != 4 || w->ndim != 4) {
                        *ret_why = "only 2-D convolutions have an int8 kernel";
                        return 0;
                }
                l->channels = w->dims[0];
                l->depth = w->dims[1] * w->dims[2] * w->dims[3];
        } else {
                if (x->ndim != 2 || w->ndim != 2) {
                        *ret_why = "only 2-D matrix products have an int8 kernel";
                        return 0;
                }
                if (n->op == CVOPT_OP_GEMM &&
                    (cvopt_node_get_int(n, "transA", 0) != 0 || cvopt_node_get_float(n, "alpha", 1.0f) != 1.0f ||
                     (c && cvopt_node_get_float(n, "beta", 1.0f) != 1.0f))) {
                        *ret_why = "Gemm with transA, alpha or beta other than 1";
                        return 0;
                }
                transpose = n->op == CVOPT_OP_MATMUL || cvopt_node_get_int(n, "transB", 0) == 0;
                l->channels = transpose ? w->dims[1] : w->dims[0];
                l->depth = transpose ? w->dims[0] : w->dims[1];
        }
        if (l->depth > MAX_DEPTH) {
                *ret_why = "too deep for an int32 accumulator";
                return 0;
        }
        l->weights = w->data;
        if (transpose) {
                const float *src = w->data;

                l->owned_weights = malloc((size_t) (l->channels * l->depth) * sizeof(float));
                if (!l->owned_weights)
                        return -ENOMEM;
                for (int64_t k = 0; k < l->depth; k++)
                        for (int64_t j = 0; j < l->channels; j++)
                                l->owned_weights[j * l->depth + k] = src[k * l->channels + j];
                l->weights = l->owned_weights;
        }
        l->bias = calloc((size_t) l->channels, sizeof(float));
        if (!l->bias)
                return -ENOMEM;
        if (n->op != CVOPT_OP_MATMUL && c) {
                int64_t count = cvopt_tensor_count(c);

                if (!c->is_constant || c->dtype != CVOPT_DTYPE_FLOAT32 || (count != 1 && count != l->channels)) {
                        *ret_why = "bias is not a constant per-channel vector";
                        return 0;
                }
                for (int64_t j = 0; j < l->channels; j++)
                        l->bias[j] = ((const float *) c->data)[count == 1 ? 0 : j];
        }
        return 1;
}

static bool is_depthwise(const CvoptGraph *g, const CvoptNode *n) {
        const CvoptTensor *x = cvopt_node_input(g, n, 0), *w = cvopt_node_input(g, n, 1);
        int64_t group = cvopt_node_get_int(n, "group", 1);

        return n->op == CVOPT_OP_CONV && group > 1 && x && w && x->ndim == 4 && w->ndim == 4 && group == x->dims[1] &&
               w->dims[1] == 1;
}

unsigned quantize_layer_bits(const CvoptGraph *g, const QuantizeOptions *o, uint32_t k) {
        int32_t first = -1, last = -1;

        if (o->node_bits && o->node_bits[k])
                return o->node_bits[k];
        if (o->weight_bits >= 8 || !o->keep_edges_8bit)
                return o->weight_bits;
        for (uint32_t i = 0; i < g->n_nodes; i++)
                if (quantize_is_layer(g, &g->nodes[i])) {
                        if (first < 0)
                                first = (int32_t) i;
                        last = (int32_t) i;
                }
        if ((int32_t) k == first || (int32_t) k == last || is_depthwise(g, &g->nodes[k]))
                return 8;
        return o->weight_bits;
}

/* True when every consumer of f tensor ft runs in float, or it is a graph
 * output: then the layer writes float directly instead of uint8. */
static bool feeds_only_float(Builder *b, int32_t ft) {
        static const CvoptOp float_consumers[] = { CVOPT_OP_SOFTMAX, CVOPT_OP_SIGMOID, CVOPT_OP_TANH, CVOPT_OP_DIV,
                                                   CVOPT_OP_MUL, CVOPT_OP_SUB };
        bool consumed = false;

        for (uint32_t i = 0; i < b->f->n_outputs; i++)
                if (b->f->outputs[i] == ft)
                        return true;
        for (uint32_t k = 0; k < b->f->n_nodes; k++) {
                const CvoptNode *n = &b->f->nodes[k];

                for (uint32_t s = 0; s < n->n_inputs; s++) {
                        bool is_float = false;

                        if (n->inputs[s] != ft)
                                continue;
                        consumed = true;
                        for (size_t i = 0; i < ELEMENTSOF(float_consumers); i++)
                                is_float |= n->op == float_consumers[i];
                        if (!is_float)
                                return false;
                }
        }
        return consumed;
}

/* Bias correction (Nagel et al., 2019, "Data-Free Quantization"): the
 * rounded weights shift each output's expectation by
 * sum_k (w_q - w)[c][k] * E[x_k]; subtracting it from the bias removes the
 * systematic part of the weight error. */
static void layer_bias_correction(Builder *b, const CvoptNode *n, const Layer *l, const int8_t *q,
                                  const float *scale) {
        const TensorStats *s = &b->stats->tensors[n->inputs[0]];
        const CvoptTensor *w = cvopt_node_input(b->f, n, 1);
        int64_t group_in = l->depth, window = 1, per_group = l->channels;

        if (n->op == CVOPT_OP_CONV) {
                group_in = w->dims[1];
                window = w->dims[2] * w->dims[3];
                per_group = l->channels / cvopt_node_get_int(n, "group", 1);
        }
        if (!s->channel_sum || !s->channel_count || per_group <= 0 ||
            (int64_t) s->channels < (l->channels / per_group) * group_in)
                return;
        for (int64_t c = 0; c < l->channels; c++) {
                const int64_t first_input = (c / per_group) * group_in;
                double shift = 0;

                for (int64_t ic = 0; ic < group_in; ic++) {
                        double mean = s->channel_sum[first_input + ic] / (double) s->channel_count;

                        for (int64_t i = 0; i < window; i++) {
                                int64_t k = c * l->depth + ic * window + i;

                                shift += ((double) q[k] * scale[c] - l->weights[k]) * mean;
                        }
                }
                l->bias[c] -= (float) shift;
        }
}

/* Conv pads resolved from auto_pad, so the int8 kernels see explicit pads. */
int quantize_resolve_pads(const CvoptNode *n, const CvoptTensor *x, int64_t kernel_h, int64_t kernel_w,
                          int64_t ret_pads[4]) {
        const char *auto_pad = cvopt_node_get_string(n, "auto_pad", "NOTSET");
        const CvoptAttr *pads = cvopt_node_attr(n, "pads"), *strides = cvopt_node_attr(n, "strides");
        const CvoptAttr *dilations = cvopt_node_attr(n, "dilations");
        int64_t kernel[2] = { kernel_h, kernel_w }, size[2] = { x->dims[2], x->dims[3] };

        memset(ret_pads, 0, 4 * sizeof(int64_t));
        if (streq(auto_pad, "NOTSET")) {
                if (pads && pads->count == 4)
                        memcpy(ret_pads, pads->ints, 4 * sizeof(int64_t));
                else if (pads)
                        return -CVOPT_E_UNSUPPORTED;
                return 0;
        }
        if (streq(auto_pad, "VALID"))
                return 0;
        for (int d = 0; d < 2; d++) {
                int64_t stride = strides && strides->count == 2 ? strides->ints[d] : 1;
                int64_t dilation = dilations && dilations->count == 2 ? dilations->ints[d] : 1;
                int64_t out = (size[d] + stride - 1) / stride;
                int64_t total = MAX((out - 1) * stride + (kernel[d] - 1) * dilation + 1 - size[d], 0);
                bool upper = streq(auto_pad, "SAME_UPPER");

                ret_pads[d] = upper ? total / 2 : total - total / 2;
                ret_pads[d + 2] = total - ret_pads[d];
        }
        return 0;
}

static int add_constant(Builder *b, const char *name, CvoptDType dtype, uint32_t ndim, const int64_t *dims, void *data,
                        int32_t *ret) {
        char unique[600];
        int r;

        snprintf(unique, sizeof(unique), "%s", name);
        for (unsigned i = 1; cvopt_graph_find_tensor(b->q, unique) >= 0; i++)
                snprintf(unique, sizeof(unique), "%s~%u", name, i);
        r = cvopt_graph_add_constant(b->q, unique, dtype, ndim, dims, data, true, ret);
        if (r < 0)
                free(data);
        return r;
}

int quantize_emit_layer(Builder *b, uint32_t k) {
        const CvoptNode *n = &b->f->nodes[k];
        const char *activation = cvopt_node_get_string(n, "activation", NULL);
        const char *why = NULL;
        _cleanup_(layer_done) Layer l = {};
        int32_t xq, yq, wq, bq, node;
        float sx, sy = 0;
        int32_t zx, zy = 0;
        int r;

        if (activation && !streq(activation, "Relu") && !streq(activation, "Clip"))
                return keep_float(b, n, "fused activation has no int8 form here (kept in float)");
        r = layer_read(b, n, &l, &why);
        if (r <= 0)
                return r < 0 ? r : keep_float(b, n, why);

        const unsigned bits = quantize_layer_bits(b->f, b->options, k);
        if (bits >= 32)
                return keep_float(b, n, "kept in float by request");
        if ((r = builder_quant_version(b, n->inputs[0], &xq)) < 0)
                return r == -CVOPT_E_UNSUPPORTED ? keep_float(b, n, "input cannot be quantized") : r;
        sx = b->q->tensors[xq].quant.scale[0];
        zx = b->q->tensors[xq].quant.zero_point[0];

        const int64_t channels = l.channels, depth = l.depth;
        int8_t *q = malloc((size_t) (channels * depth));
        _cleanup_free_ float *scale = malloc((size_t) channels * sizeof(float));
        _cleanup_free_ int64_t *multiplier = calloc((size_t) channels, sizeof(int64_t));
        _cleanup_free_ int64_t *shift = calloc((size_t) channels, sizeof(int64_t));
        _cleanup_free_ float *out_scale = malloc((size_t) channels * sizeof(float));
        int32_t *bias = malloc((size_t) channels * sizeof(int32_t));
        double signal = 0, noise = 0;

        if (!q || !scale || !multiplier || !shift || !out_scale || !bias) {
                free(q);
                free(bias);
                return -ENOMEM;
        }
        quantize_weights_per_channel(l.weights, channels, depth, bits, q, scale);
        if (b->options->node_weights && b->options->node_weights[k]) {
                /* Error-compensated weights already lie on each channel's grid. */
                const float *w = b->options->node_weights[k];
                const int qmax = (1 << (bits - 1)) - 1;

                for (int64_t c = 0; c < channels; c++)
                        for (int64_t i = 0; i < depth; i++)
                                q[c * depth + i] = (int8_t) CLAMP(lroundf(w[c * depth + i] / scale[c]), -qmax, qmax);
        }
        for (int64_t i = 0; i < channels * depth; i++) {
                double w = l.weights[i], e = (double) q[i] * scale[i / depth] - w;

                signal += w * w;
                noise += e * e;
        }
        if (b->options->bias_correction)
                layer_bias_correction(b, n, &l, q, scale);

        bool float_output = !activation && feeds_only_float(b, n->outputs[0]);
        if (float_output) {
                r = builder_add_tensor(b, n->outputs[0], "", CVOPT_DTYPE_FLOAT32, &yq);
                if (r >= 0)
                        b->as_float[n->outputs[0]] = yq;
        } else {
                r = builder_quant_output(b, n->outputs[0], -1, &yq);
                if (r >= 0) {
                        sy = b->q->tensors[yq].quant.scale[0];
                        zy = b->q->tensors[yq].quant.zero_point[0];
                }
        }
        if (r < 0) {
                free(q);
                free(bias);
                return r;
        }
        for (int64_t c = 0; c < channels; c++) {
                int64_t sum = 0, value;

                for (int64_t i = 0; i < depth; i++)
                        sum += q[c * depth + i];
                value = llround((double) l.bias[c] / ((double) sx * scale[c])) - (int64_t) zx * sum;
                if (value < INT32_MIN / 2 || value > INT32_MAX / 2) {
                        free(q);
                        free(bias);
                        return cvopt_error_set(-ERANGE, "bias of channel %lld does not fit int32", (long long) c);
                }
                bias[c] = (int32_t) value;
                out_scale[c] = sx * scale[c];
                if (!float_output) {
                        int32_t m, s;

                        r = cvopt_quantize_multiplier((double) sx * scale[c] / sy, &m, &s);
                        if (r < 0) {
                                free(q);
                                free(bias);
                                return cvopt_error_set(r, "requantization multiplier out of range");
                        }
                        multiplier[c] = m;
                        shift[c] = s;
                }
        }

        const CvoptTensor *fw = cvopt_node_input(b->f, n, 1);
        int64_t wdims[4] = { channels, depth, 1, 1 };
        uint32_t wndim = 2;
        if (n->op == CVOPT_OP_CONV) {
                memcpy(wdims, fw->dims, sizeof(wdims));
                wndim = 4;
        }
        char bias_name[600];
        snprintf(bias_name, sizeof(bias_name), "%s.bias", n->name);
        if ((r = add_constant(b, fw->name, CVOPT_DTYPE_INT8, wndim, wdims, q, &wq)) < 0) {
                free(bias);
                return r;
        }
        if ((r = add_constant(b, bias_name, CVOPT_DTYPE_INT32, 1, &channels, bias, &bq)) < 0)
                return r;
        CvoptTensor *wt = &b->q->tensors[wq];
        wt->quant.axis = 0;
        wt->quant.count = (uint32_t) channels;
        wt->quant.scale = malloc((size_t) channels * sizeof(float));
        wt->quant.zero_point = calloc((size_t) channels, sizeof(int32_t));
        if (!wt->quant.scale || !wt->quant.zero_point)
                return -ENOMEM;
        memcpy(wt->quant.scale, scale, (size_t) channels * sizeof(float));
        wt->pack_int4 = bits <= 4;

        r = cvopt_graph_add_node(b->q, n->name, n->op == CVOPT_OP_CONV ? CVOPT_OP_QCONV : CVOPT_OP_QGEMM, 3,
                                 (int32_t[]) { xq, wq, bq }, 1, &yq, &node);
        if (r < 0)
                return r;
        CvoptNode *qn = &b->q->nodes[node];
        if (n->op == CVOPT_OP_CONV) {
                const CvoptTensor *x = cvopt_node_input(b->f, n, 0);
                int64_t pads[4], ones[2] = { 1, 1 };
                const CvoptAttr *strides = cvopt_node_attr(n, "strides"), *dilations = cvopt_node_attr(n, "dilations");

                r = quantize_resolve_pads(n, x, fw->dims[2], fw->dims[3], pads);
                if (r < 0)
                        return r;
                if ((r = cvopt_node_set_ints(qn, "pads", 4, pads)) < 0 ||
                    (r = cvopt_node_set_ints(qn, "strides", 2, strides ? strides->ints : ones)) < 0 ||
                    (r = cvopt_node_set_ints(qn, "dilations", 2, dilations ? dilations->ints : ones)) < 0 ||
                    (r = cvopt_node_set_int(qn, "group", cvopt_node_get_int(n, "group", 1))) < 0)
                        return r;
        }
        if (float_output)
                r = cvopt_node_set_floats(qn, "out_scale", (uint32_t) channels, out_scale);
        else {
                int64_t lo = 0, hi = 255;

                if (activation && streq(activation, "Relu"))
                        lo = zy;
                else if (activation && streq(activation, "Clip")) {
                        float amin = cvopt_node_get_float(n, "activation_min", -INFINITY);
                        float amax = cvopt_node_get_float(n, "activation_max", INFINITY);

                        if (isfinite(amin))
                                lo = CLAMP(zy + lroundf(amin / sy), 0, 255);
                        if (isfinite(amax))
                                hi = CLAMP(zy + lroundf(amax / sy), 0, 255);
                }
                if ((r = cvopt_node_set_ints(qn, "multiplier", (uint32_t) channels, multiplier)) < 0 ||
                    (r = cvopt_node_set_ints(qn, "shift", (uint32_t) channels, shift)) < 0 ||
                    (r = cvopt_node_set_int(qn, "out_min", lo)) < 0)
                        return r;
                r = cvopt_node_set_int(qn, "out_max", MAX(lo, hi));
        }
        if (r < 0)
                return r;

        uint64_t weight_bytes = (uint64_t) (channels * depth) * bits / 8, zeros = 0;
        for (int64_t i = 0; i < channels * depth; i++)
                zeros += q[i] == 0;
        r = add_layer_report(b, n, bits, (uint64_t) (channels * depth + channels),
                             weight_bytes + (uint64_t) channels * 8, noise > 0 ? 10.0 * log10(signal / noise) : INFINITY,
                             (double) zeros / (double) (channels * depth), NULL);
        return r < 0 ? r : 1;
}

int quantize_layer_weights(const CvoptGraph *g, uint32_t node_index, float **ret_weights, int64_t *ret_channels,
                           int64_t *ret_depth) {
        Builder b = { .f = g };
        _cleanup_(layer_done) Layer l = {};
        const char *why = NULL;
        float *copy;
        int r;

        if (node_index >= g->n_nodes || !quantize_is_layer(g, &g->nodes[node_index]))
                return -EINVAL;
        r = layer_read(&b, &g->nodes[node_index], &l, &why);
        if (r < 0)
                return r;
        if (r == 0)
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "%s", why);
        copy = malloc((size_t) (l.channels * l.depth) * sizeof(float));
        if (!copy)
                return -ENOMEM;
        memcpy(copy, l.weights, (size_t) (l.channels * l.depth) * sizeof(float));
        *ret_weights = copy;
        *ret_channels = l.channels;
        *ret_depth = l.depth;
        return 0;
}

int quantize_layer_replace_weights(CvoptGraph *g, uint32_t node_index, const float *weights, int64_t channels,
                                   int64_t depth) {
        const CvoptNode *n;
        CvoptTensor *t;
        bool transposed;
        float *copy;

        if (node_index >= g->n_nodes || !quantize_is_layer(g, &g->nodes[node_index]) || channels < 1 || depth < 1)
                return -EINVAL;
        n = &g->nodes[node_index];
        t = cvopt_node_input(g, n, 1);
        if (n->op == CVOPT_OP_CONV && depth % (t->dims[2] * t->dims[3]) != 0)
                return -EINVAL;
        transposed = n->op == CVOPT_OP_MATMUL || (n->op == CVOPT_OP_GEMM && cvopt_node_get_int(n, "transB", 0) == 0);
        copy = malloc((size_t) (channels * depth) * sizeof(float));
        if (!copy)
                return -ENOMEM;
        for (int64_t c = 0; c < channels; c++)
                for (int64_t k = 0; k < depth; k++)
                        copy[transposed ? k * channels + c : c * depth + k] = weights[c * depth + k];
        /* A new buffer: the old one may be a read-only mapping of a file. */
        if (t->owns_data)
                free(t->data);
        t->data = copy;
        t->owns_data = true;
        if (n->op == CVOPT_OP_CONV) {
                t->dims[1] = depth / (t->dims[2] * t->dims[3]);
                t->dims[0] = channels;
        } else {
                t->dims[transposed ? 0 : 1] = depth;
                t->dims[transposed ? 1 : 0] = channels;
        }
        return 0;
}

int quantize_layer_store_weights(CvoptGraph *g, uint32_t node_index, const float *weights) {
        float *current;
        int64_t channels, depth;
        int r;

        r = quantize_layer_weights(g, node_index, &current, &channels, &depth);
        if (r < 0)
                return r;
        free(current);
        return quantize_layer_replace_weights(g, node_index, weights, channels, depth);
}

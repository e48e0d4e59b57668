/* SPDX-License-Identifier: MIT */
/* Folds inference BatchNormalization into the Conv or Gemm before it:
 *   y = scale * (x - mean) / sqrt(var + eps) + shift
 * is per output channel c an affine map y = s[c] * x + t[c], so with
 *   s = scale / sqrt(var + eps),  t = shift - s * mean
 * the producer's weights of channel c are multiplied by s[c] and its bias
 * becomes s[c] * bias[c] + t[c]. The arithmetic is done in double so the
 * folded model differs from the unfolded one by float rounding of the final
 * products only. New weight and bias tensors are made (the old ones may be
 * shared with another node, or point into a read-only mapped file). */
#include <math.h>
#include <stdio.h>

#include "cvopt/engine.h"
#include "cvopt/errors.h"
#include "exec/graph-util.h"
#include "macro.h"

static const CvoptTensor *constant_fp32(const CvoptGraph *g, int32_t index) {
        const CvoptTensor *t;

        if (index < 0 || (uint32_t) index >= g->n_tensors)
                return NULL;
        t = &g->tensors[index];
        if (!t->is_constant || !t->data || t->dtype != CVOPT_DTYPE_FLOAT32 || t->quant.count > 0)
                return NULL;
        return t;
}

/* Per-channel s and t of a BatchNormalization node with channels channels,
 * or -ENOENT when its parameters are not constant fp32 vectors of that
 * length. */
static int batchnorm_affine(const CvoptGraph *g, const CvoptNode *bn, int64_t channels, double *s, double *t) {
        const CvoptTensor *params[4];
        double epsilon = cvopt_node_get_float(bn, "epsilon", 1e-5f);

        if (bn->n_inputs != 5)
                return -ENOENT;
        for (unsigned i = 0; i < 4; i++) {
                params[i] = constant_fp32(g, bn->inputs[i + 1]);
                if (!params[i] || cvopt_tensor_count(params[i]) != channels)
                        return -ENOENT;
        }
        for (int64_t c = 0; c < channels; c++) {
                double scale = ((const float *) params[0]->data)[c];
                double shift = ((const float *) params[1]->data)[c];
                double mean = ((const float *) params[2]->data)[c];
                double var = ((const float *) params[3]->data)[c];

                if (var + epsilon <= 0)
                        return -ENOENT; /* leave a broken BN for the run to show, not us to hide */
                s[c] = scale / sqrt(var + epsilon);
                t[c] = shift - s[c] * mean;
        }
        return 0;
}

/* The scaled copy of weight w: channel c is the c-th slice along axis 0
 * (Conv [M, C/g, kh, kw], Gemm transB=1 [N, K]) or the c-th column (Gemm
 * transB=0 [K, N]). */
static float *weight_scale(const CvoptTensor *w, int64_t channels, bool channel_is_column, const double *s) {
        int64_t count = cvopt_tensor_count(w);
        const float *src = w->data;
        float *dst;

        if (count <= 0 || count % channels != 0)
                return NULL;
        dst = malloc(count * sizeof(float));
        if (!dst)
                return NULL;
        for (int64_t i = 0; i < count; i++) {
                int64_t c = channel_is_column ? i % channels : i / (count / channels);

                dst[i] = (float) ((double) src[i] * s[c]);
        }
        return dst;
}

/* Folds bn into producer p; 1 if done, 0 if this pair does not qualify. */
static int fold_pair(CvoptGraph *g, CvoptNode *p, CvoptNode *bn) {
        _cleanup_free_ double *s = NULL, *t = NULL;
        _cleanup_free_ float *new_weight = NULL, *new_bias = NULL;
        const CvoptTensor *w, *bias = NULL;
        bool is_gemm = p->op == CVOPT_OP_GEMM, channel_is_column = false;
        int64_t channels;
        uint32_t bias_slot = 2;
        double gemm_beta = 1.0;
        int32_t w_index, b_index;
        int64_t w_dims[CVOPT_MAX_DIMS];
        uint32_t w_ndim;
        char base[300];
        int r;

        if (p->n_inputs < 2 || p->n_outputs != 1 || cvopt_node_attr(p, "activation"))
                return 0;
        w = constant_fp32(g, p->inputs[1]);
        if (!w || w->ndim < 2)
                return 0;
        if (is_gemm) {
                if (w->ndim != 2)
                        return 0;
                channel_is_column = cvopt_node_get_int(p, "transB", 0) == 0;
                channels = channel_is_column ? w->dims[1] : w->dims[0];
                gemm_beta = cvopt_node_get_float(p, "beta", 1.0f);
        } else {
                if (cvopt_node_get_int(p, "group", 1) < 1)
                        return 0;
                channels = w->dims[0];
        }
        if (channels <= 0)
                return 0;
        if (p->n_inputs > bias_slot && p->inputs[bias_slot] >= 0) {
                bias = constant_fp32(g, p->inputs[bias_slot]);
                /* Gemm's C broadcasts; only a per-column vector (or one
                 * value) has the per-channel meaning folding needs. */
                if (!bias || (cvopt_tensor_count(bias) != channels && cvopt_tensor_count(bias) != 1))
                        return 0;
                if (bias->ndim > 2 || (bias->ndim == 2 && bias->dims[0] != 1))
                        return 0;
                if (!is_gemm && cvopt_tensor_count(bias) != channels)
                        return 0;
        }

        s = calloc(channels, sizeof(double));
        t = calloc(channels, sizeof(double));
        if (!s || !t)
                return -ENOMEM;
        if (batchnorm_affine(g, bn, channels, s, t) < 0)
                return 0;

        new_weight = weight_scale(w, channels, channel_is_column, s);
        new_bias = malloc(channels * sizeof(float));
        if (!new_weight || !new_bias)
                return -ENOMEM;
        for (int64_t c = 0; c < channels; c++) {
                double b = 0;

                /* Gemm adds beta * C; with beta 0 the old C never mattered. */
                if (bias && gemm_beta != 0)
                        b = gemm_beta * ((const float *) bias->data)[cvopt_tensor_count(bias) == 1 ? 0 : c];
                new_bias[c] = (float) (s[c] * b + t[c]);
        }

        /* Make room for a bias input first: once the new constants are in,
         * nothing may fail half-way. */
        if (p->n_inputs <= bias_slot) {
                int32_t *inputs = reallocarray(p->inputs, bias_slot + 1, sizeof(int32_t));

                if (!inputs)
                        return -ENOMEM;
                p->inputs = inputs;
                for (uint32_t i = p->n_inputs; i <= bias_slot; i++)
                        p->inputs[i] = -1;
                p->n_inputs = bias_slot + 1;
        }

        /* Adding tensors may move the tensor array: copy what is still needed. */
        w_ndim = w->ndim;
        memcpy(w_dims, w->dims, sizeof(w_dims));
        w = bias = NULL;

        snprintf(base, sizeof(base), "%s.weight_bnfold", p->name);
        r = graph_add_constant_unique(g, base, CVOPT_DTYPE_FLOAT32, w_ndim, w_dims, new_weight, &w_index);
        if (r < 0)
                return r;
        TAKE_PTR(new_weight);
        snprintf(base, sizeof(base), "%s.bias_bnfold", p->name);
        r = graph_add_constant_unique(g, base, CVOPT_DTYPE_FLOAT32, 1, &channels, new_bias, &b_index);
        if (r < 0)
                return r;
        TAKE_PTR(new_bias);
        /* The last step that can fail, and it leaves only orphans behind. */
        if (is_gemm && gemm_beta != 1.0) {
                r = cvopt_node_set_float(p, "beta", 1.0f);
                if (r < 0)
                        return r;
        }

        p->inputs[1] = w_index;
        p->inputs[bias_slot] = b_index;
        p->outputs[0] = bn->outputs[0];
        return 1;
}

int cvopt_graph_fold_batchnorm(CvoptGraph *g) {
        _cleanup_free_ bool *removed = calloc(MAX(g->n_nodes, 1u), sizeof(bool));
        bool any = false;

        if (!removed)
                return -ENOMEM;
        for (uint32_t k = 0; k < g->n_nodes; k++) {
                CvoptNode *bn = &g->nodes[k], *p;
                int32_t x, producer;
                int r;

                if (bn->op != CVOPT_OP_BATCH_NORMALIZATION || bn->n_inputs < 1 || bn->n_outputs < 1)
                        continue;
                /* Training-mode outputs (running mean/var) must not be in use. */
                for (uint32_t s = 1; s < bn->n_outputs; s++)
                        if (bn->outputs[s] >= 0 && (graph_tensor_n_uses(g, bn->outputs[s]) > 0 ||
                                                    graph_tensor_is_output(g, bn->outputs[s])))
                                goto next;
                x = bn->inputs[0];
                producer = graph_tensor_producer(g, x);
                if (producer < 0)
                        continue;
                p = &g->nodes[producer];
                if (p->op != CVOPT_OP_CONV && p->op != CVOPT_OP_GEMM)
                        continue;
                if (graph_tensor_n_uses(g, x) != 1 || graph_tensor_is_output(g, x))
                        continue;
                if (g->tensors[x].dtype != CVOPT_DTYPE_FLOAT32)
                        continue;
                r = fold_pair(g, p, bn);
                if (r < 0)
                        return cvopt_error_prefix(r, "folding '%s' into '%s'", bn->name, p->name);
                if (r > 0) {
                        removed[k] = true;
                        any = true;
                }
        next:;
        }
        if (any)
                graph_remove_nodes(g, removed);
        return 0;
}

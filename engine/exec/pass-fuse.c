/* SPDX-License-Identifier: MIT */
/* Activation fusion, identity removal, and the pass pipeline. Fusing an
 * activation into the Conv/Gemm/MatMul before it saves one full pass over
 * the activation tensor (the kernel applies it while the value is still in
 * a register) and, for int8, lets the requantization clamp do the Relu. */
#include <math.h>
#include <stdio.h>

#include "cvopt/engine.h"
#include "cvopt/errors.h"
#include "exec/graph-util.h"
#include "macro.h"

static bool op_is_fusable_activation(CvoptOp op) {
        switch (op) {
        case CVOPT_OP_RELU:
        case CVOPT_OP_CLIP:
        case CVOPT_OP_LEAKY_RELU:
        case CVOPT_OP_HARD_SWISH:
        case CVOPT_OP_SIGMOID:
        case CVOPT_OP_HARD_SIGMOID:
        case CVOPT_OP_TANH:
                return true;
        default:
                return false;
        }
}

/* A scalar fp32 constant in input slot of n, for Clip (opset >= 11 passes
 * min/max as inputs). 1 and *ret set; 0 when the slot is absent; -ENOENT
 * when present but not a constant fp32 scalar. */
static int clip_bound_input(const CvoptGraph *g, const CvoptNode *n, uint32_t slot, float *ret) {
        const CvoptTensor *t = cvopt_node_input(g, n, slot);

        if (!t)
                return 0;
        if (!t->is_constant || !t->data || t->dtype != CVOPT_DTYPE_FLOAT32 || cvopt_tensor_count(t) != 1)
                return -ENOENT;
        *ret = *(const float *) t->data;
        return 1;
}

/* Sets the fused-activation attributes of act on p. 1 if done; 0 if act
 * has parameters that cannot be attributes (a computed Clip bound). */
static int producer_set_activation(const CvoptGraph *g, CvoptNode *p, const CvoptNode *act) {
        float min = -INFINITY, max = INFINITY, alpha, beta;
        int r;

        switch (act->op) {
        case CVOPT_OP_CLIP:
                min = cvopt_node_get_float(act, "min", -INFINITY);
                max = cvopt_node_get_float(act, "max", INFINITY);
                if (clip_bound_input(g, act, 1, &min) < 0 || clip_bound_input(g, act, 2, &max) < 0)
                        return 0;
                r = cvopt_node_set_float(p, "activation_min", min);
                if (r >= 0)
                        r = cvopt_node_set_float(p, "activation_max", max);
                break;
        case CVOPT_OP_LEAKY_RELU:
                /* ONNX defaults, written out so kernels need not know them. */
                alpha = cvopt_node_get_float(act, "alpha", 0.01f);
                r = cvopt_node_set_float(p, "activation_alpha", alpha);
                break;
        case CVOPT_OP_HARD_SIGMOID:
                alpha = cvopt_node_get_float(act, "alpha", 0.2f);
                beta = cvopt_node_get_float(act, "beta", 0.5f);
                r = cvopt_node_set_float(p, "activation_alpha", alpha);
                if (r >= 0)
                        r = cvopt_node_set_float(p, "activation_beta", beta);
                break;
        default:
                r = 0;
        }
        if (r >= 0)
                r = cvopt_node_set_string(p, "activation", graph_op_name(act->op));
        if (r < 0) {
                /* Leave p as it was: a half-set activation would change meaning. */
                (void) cvopt_node_remove_attr(p, "activation");
                (void) cvopt_node_remove_attr(p, "activation_min");
                (void) cvopt_node_remove_attr(p, "activation_max");
                (void) cvopt_node_remove_attr(p, "activation_alpha");
                (void) cvopt_node_remove_attr(p, "activation_beta");
                return r;
        }
        return 1;
}

int cvopt_graph_fuse_activations(CvoptGraph *g) {
        _cleanup_free_ bool *removed = calloc(MAX(g->n_nodes, 1u), sizeof(bool));
        bool any = false;

        if (!removed)
                return -ENOMEM;
        for (uint32_t k = 0; k < g->n_nodes; k++) {
                CvoptNode *act = &g->nodes[k], *p;
                int32_t x, producer;
                int r;

                if (!op_is_fusable_activation(act->op) || act->n_inputs < 1 || act->n_outputs != 1)
                        continue;
                x = act->inputs[0];
                producer = graph_tensor_producer(g, x);
                if (producer < 0)
                        continue;
                p = &g->nodes[producer];
                if (p->op != CVOPT_OP_CONV && p->op != CVOPT_OP_GEMM && p->op != CVOPT_OP_MATMUL)
                        continue;
                /* One activation per node, applied to p's only output. */
                if (p->n_outputs != 1 || cvopt_node_attr(p, "activation"))
                        continue;
                /* Anyone else reading x wants the value before the activation. */
                if (graph_tensor_n_uses(g, x) != 1 || graph_tensor_is_output(g, x))
                        continue;
                /* Fused activations are applied to float values. */
                if (g->tensors[x].dtype != CVOPT_DTYPE_FLOAT32)
                        continue;
                r = producer_set_activation(g, p, act);
                if (r < 0)
                        return cvopt_error_prefix(r, "fusing '%s' into '%s'", act->name, p->name);
                if (r == 0)
                        continue;
                /* p takes over the activation's output tensor, so consumers
                 * and graph outputs keep their names. */
                p->outputs[0] = act->outputs[0];
                removed[k] = true;
                any = true;
        }
        if (any)
                graph_remove_nodes(g, removed);
        return 0;
}

/* Whether n passes its input through unchanged at inference time. Dropout's
 * optional mask output must be unused, since removing the node removes it. */
static bool node_is_identity(const CvoptGraph *g, const CvoptNode *n) {
        if (n->op != CVOPT_OP_IDENTITY && n->op != CVOPT_OP_DROPOUT)
                return false;
        if (n->n_inputs < 1 || n->inputs[0] < 0 || n->n_outputs < 1)
                return false;
        for (uint32_t s = 1; s < n->n_outputs; s++)
                if (n->outputs[s] >= 0 &&
                    (graph_tensor_n_uses(g, n->outputs[s]) > 0 || graph_tensor_is_output(g, n->outputs[s])))
                        return false;
        return true;
}

int cvopt_graph_remove_identities(CvoptGraph *g) {
        _cleanup_free_ bool *removed = calloc(MAX(g->n_nodes, 1u), sizeof(bool));
        bool any = false;

        if (!removed)
                return -ENOMEM;
        for (uint32_t k = 0; k < g->n_nodes; k++) {
                CvoptNode *n = &g->nodes[k];
                int32_t x, y, producer;

                if (!node_is_identity(g, n))
                        continue;
                x = n->inputs[0];
                y = n->outputs[0];
                if (!graph_tensor_is_output(g, y)) {
                        graph_replace_uses(g, y, x);
                } else {
                        /* y is what the caller asks for by name, so keep y and
                         * drop x instead: x's producer writes y directly. When
                         * x is a graph input or a constant (or itself a graph
                         * output) there is no producer to retarget, and the
                         * copy is what the graph means: keep the node. */
                        producer = graph_tensor_producer(g, x);
                        if (producer < 0 || graph_tensor_is_output(g, x))
                                continue;
                        for (uint32_t s = 0; s < g->nodes[producer].n_outputs; s++)
                                if (g->nodes[producer].outputs[s] == x)
                                        g->nodes[producer].outputs[s] = y;
                        /* This makes the identity read y too; it is removed below. */
                        graph_replace_uses(g, x, y);
                        /* y's shape and dtype are x's, by definition. */
                        if (g->tensors[x].has_shape && !g->tensors[y].has_shape) {
                                g->tensors[y].ndim = g->tensors[x].ndim;
                                memcpy(g->tensors[y].dims, g->tensors[x].dims, sizeof(g->tensors[y].dims));
                                g->tensors[y].has_shape = true;
                        }
                        if (g->tensors[y].dtype == CVOPT_DTYPE_UNDEFINED)
                                g->tensors[y].dtype = g->tensors[x].dtype;
                }
                removed[k] = true;
                any = true;
        }
        if (any)
                graph_remove_nodes(g, removed);
        return 0;
}

int cvopt_graph_optimize(CvoptGraph *g) {
        int r;

        r = cvopt_graph_remove_identities(g);
        if (r < 0)
                return r;
        r = cvopt_graph_infer_shapes(g);
        if (r < 0)
                return r;
        r = cvopt_graph_fold_batchnorm(g);
        if (r < 0)
                return r;
        r = cvopt_graph_fuse_activations(g);
        if (r < 0)
                return r;
        r = cvopt_graph_prune_unused(g);
        if (r < 0)
                return r;
        return cvopt_graph_validate(g);
}

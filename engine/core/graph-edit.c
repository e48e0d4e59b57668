/* SPDX-License-Identifier: MIT */
/* Whole-graph operations: validation, pruning and cloning. */
#include <stdio.h>

#include "cvopt/errors.h"
#include "cvopt/graph.h"
#include "macro.h"

static bool index_ok(const CvoptGraph *g, int32_t i) {
        return i >= 0 && (uint32_t) i < g->n_tensors;
}

int cvopt_graph_validate(const CvoptGraph *g) {
        _cleanup_free_ uint8_t *defined = calloc(MAX(g->n_tensors, 1u), 1);

        if (!defined)
                return -ENOMEM;
        for (uint32_t i = 0; i < g->n_tensors; i++) {
                const CvoptTensor *t = &g->tensors[i];

                if (!t->name)
                        return cvopt_error_set(-CVOPT_E_FORMAT, "tensor %u has no name", i);
                if (t->ndim > CVOPT_MAX_DIMS)
                        return cvopt_error_set(-CVOPT_E_FORMAT, "tensor '%s': %u dims (max %d)", t->name,
                                               t->ndim, CVOPT_MAX_DIMS);
                if ((unsigned) t->dtype >= _CVOPT_DTYPE_MAX || t->dtype == CVOPT_DTYPE_UNDEFINED)
                        return cvopt_error_set(-CVOPT_E_FORMAT, "tensor '%s': invalid dtype %d", t->name,
                                               (int) t->dtype);
                if (t->is_constant) {
                        if (!t->data && cvopt_tensor_count(t) != 0)
                                return cvopt_error_set(-CVOPT_E_FORMAT, "constant '%s' has no data", t->name);
                        defined[i] = 1;
                }
        }
        for (uint32_t i = 0; i < g->n_inputs; i++) {
                if (!index_ok(g, g->inputs[i]))
                        return cvopt_error_set(-CVOPT_E_FORMAT, "graph input %u: index out of range", i);
                defined[g->inputs[i]] = 1;
        }
        for (uint32_t k = 0; k < g->n_nodes; k++) {
                const CvoptNode *n = &g->nodes[k];

                if ((unsigned) n->op >= _CVOPT_OP_MAX)
                        return cvopt_error_set(-CVOPT_E_FORMAT, "node %u: invalid op %d", k, (int) n->op);
                for (uint32_t s = 0; s < n->n_inputs; s++) {
                        int32_t i = n->inputs[s];

                        if (i == -1)
                                continue;
                        if (!index_ok(g, i))
                                return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s': input %u out of range",
                                                       n->name, s);
                        if (!defined[i])
                                return cvopt_error_set(-CVOPT_E_FORMAT,
                                                       "node '%s': input '%s' is used before it is computed",
                                                       n->name, g->tensors[i].name);
                }
                for (uint32_t s = 0; s < n->n_outputs; s++) {
                        int32_t i = n->outputs[s];

                        if (!index_ok(g, i))
                                return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s': output %u out of range",
                                                       n->name, s);
                        if (defined[i])
                                return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s': tensor '%s' is produced twice",
                                                       n->name, g->tensors[i].name);
                        defined[i] = 1;
                }
        }
        for (uint32_t i = 0; i < g->n_outputs; i++) {
                if (!index_ok(g, g->outputs[i]))
                        return cvopt_error_set(-CVOPT_E_FORMAT, "graph output %u: index out of range", i);
                if (!defined[g->outputs[i]])
                        return cvopt_error_set(-CVOPT_E_FORMAT, "graph output '%s' is never computed",
                                               g->tensors[g->outputs[i]].name);
        }
        return 0;
}

int cvopt_graph_prune_unused(CvoptGraph *g) {
        _cleanup_free_ uint8_t *used = calloc(MAX(g->n_tensors, 1u), 1);
        _cleanup_free_ int32_t *remap = calloc(MAX(g->n_tensors, 1u), sizeof(int32_t));
        uint32_t kept_nodes = 0, kept_tensors = 0;

        if (!used || !remap)
                return -ENOMEM;
        for (uint32_t i = 0; i < g->n_outputs; i++)
                if (index_ok(g, g->outputs[i]))
                        used[g->outputs[i]] = 1;

        /* Backwards: a node lives if any of its outputs is used. */
        for (uint32_t k = g->n_nodes; k-- > 0;) {
                CvoptNode *n = &g->nodes[k];
                bool live = false;

                for (uint32_t s = 0; s < n->n_outputs; s++)
                        if (index_ok(g, n->outputs[s]) && used[n->outputs[s]])
                                live = true;
                if (!live) {
                        n->n_outputs = UINT32_MAX; /* mark dead */
                        continue;
                }
                for (uint32_t s = 0; s < n->n_inputs; s++)
                        if (index_ok(g, n->inputs[s]))
                                used[n->inputs[s]] = 1;
                for (uint32_t s = 0; s < n->n_outputs; s++)
                        if (index_ok(g, n->outputs[s]))
                                used[n->outputs[s]] = 1;
        }
        for (uint32_t i = 0; i < g->n_inputs; i++)
                if (index_ok(g, g->inputs[i]))
                        used[g->inputs[i]] = 1;

        for (uint32_t k = 0; k < g->n_nodes; k++) {
                CvoptNode *n = &g->nodes[k];

                if (n->n_outputs == UINT32_MAX) {
                        n->n_outputs = 0;
                        free(n->name);
                        free(n->inputs);
                        free(n->outputs);
                        for (uint32_t a = 0; a < n->n_attrs; a++) {
                                free(n->attrs[a].name);
                                free(n->attrs[a].s);
                                free(n->attrs[a].ints);
                                free(n->attrs[a].floats);
                        }
                        free(n->attrs);
                        continue;
                }
                g->nodes[kept_nodes++] = *n;
        }
        g->n_nodes = kept_nodes;

        for (uint32_t i = 0; i < g->n_tensors; i++) {
                CvoptTensor *t = &g->tensors[i];

                if (!used[i]) {
                        remap[i] = -1;
                        free(t->name);
                        if (t->owns_data)
                                free(t->data);
                        free(t->quant.scale);
                        free(t->quant.zero_point);
                        continue;
                }
                remap[i] = (int32_t) kept_tensors;
                g->tensors[kept_tensors++] = *t;
        }
        g->n_tensors = kept_tensors;

        for (uint32_t k = 0; k < g->n_nodes; k++) {
                CvoptNode *n = &g->nodes[k];

                for (uint32_t s = 0; s < n->n_inputs; s++)
                        if (n->inputs[s] >= 0)
                                n->inputs[s] = remap[n->inputs[s]];
                for (uint32_t s = 0; s < n->n_outputs; s++)
                        n->outputs[s] = remap[n->outputs[s]];
        }
        for (uint32_t i = 0; i < g->n_inputs; i++)
                g->inputs[i] = remap[g->inputs[i]];
        for (uint32_t i = 0; i < g->n_outputs; i++)
                g->outputs[i] = remap[g->outputs[i]];
        return 0;
}

static void *memdup(const void *p, size_t size) {
        void *copy;

        if (!p)
                return NULL;
        copy = malloc(MAX(size, 1u));
        if (copy && size)
                memcpy(copy, p, size);
        return copy;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptGraph *, cvopt_graph_free);

int cvopt_graph_clone(const CvoptGraph *g, CvoptGraph **ret_copy) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *c = NULL;
        int r;

        r = cvopt_graph_new(&c);
        if (r < 0)
                return r;
        for (uint32_t i = 0; i < g->n_tensors; i++) {
                const CvoptTensor *t = &g->tensors[i];
                CvoptTensor *u;
                int32_t index;

                r = cvopt_graph_add_tensor(c, t->name, t->dtype, t->ndim, t->dims, &index);
                if (r < 0)
                        return r;
                u = &c->tensors[index];
                u->is_constant = t->is_constant;
                u->has_shape = t->has_shape;
                u->pack_int4 = t->pack_int4;
                if (t->data) {
                        u->data = memdup(t->data, cvopt_tensor_bytes(t));
                        if (!u->data)
                                return -ENOMEM;
                        u->owns_data = true;
                }
                u->quant.axis = t->quant.axis;
                if (t->quant.count) {
                        u->quant.scale = memdup(t->quant.scale, t->quant.count * sizeof(float));
                        u->quant.zero_point = memdup(t->quant.zero_point, t->quant.count * sizeof(int32_t));
                        if (!u->quant.scale || !u->quant.zero_point)
                                return -ENOMEM;
                        u->quant.count = t->quant.count;
                }
        }
        for (uint32_t k = 0; k < g->n_nodes; k++) {
                const CvoptNode *n = &g->nodes[k];
                CvoptNode *m;
                int32_t index;

                r = cvopt_graph_add_node(c, n->name, n->op, n->n_inputs, n->inputs, n->n_outputs, n->outputs,
                                         &index);
                if (r < 0)
                        return r;
                m = &c->nodes[index];
                for (uint32_t a = 0; a < n->n_attrs; a++) {
                        const CvoptAttr *at = &n->attrs[a];

                        switch (at->type) {
                        case CVOPT_ATTR_INT:
                                r = cvopt_node_set_int(m, at->name, at->i);
                                break;
                        case CVOPT_ATTR_FLOAT:
                                r = cvopt_node_set_float(m, at->name, at->f);
                                break;
                        case CVOPT_ATTR_STRING:
                                r = cvopt_node_set_string(m, at->name, at->s);
                                break;
                        case CVOPT_ATTR_INTS:
                                r = cvopt_node_set_ints(m, at->name, at->count, at->ints);
                                break;
                        case CVOPT_ATTR_FLOATS:
                                r = cvopt_node_set_floats(m, at->name, at->count, at->floats);
                                break;
                        default:
                                r = -EINVAL;
                        }
                        if (r < 0)
                                return r;
                }
        }
        r = cvopt_graph_set_inputs(c, g->n_inputs, g->inputs);
        if (r < 0)
                return r;
        r = cvopt_graph_set_outputs(c, g->n_outputs, g->outputs);
        if (r < 0)
                return r;
        *ret_copy = TAKE_PTR(c);
        return 0;
}

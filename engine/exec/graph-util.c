/* SPDX-License-Identifier: MIT */
#include <stdio.h>

#include "cvopt/errors.h"
#include "exec/graph-util.h"
#include "macro.h"

int32_t graph_tensor_producer(const CvoptGraph *g, int32_t t) {
        for (uint32_t k = 0; k < g->n_nodes; k++)
                for (uint32_t s = 0; s < g->nodes[k].n_outputs; s++)
                        if (g->nodes[k].outputs[s] == t)
                                return (int32_t) k;
        return -1;
}

uint32_t graph_tensor_n_uses(const CvoptGraph *g, int32_t t) {
        uint32_t count = 0;

        for (uint32_t k = 0; k < g->n_nodes; k++)
                for (uint32_t s = 0; s < g->nodes[k].n_inputs; s++)
                        if (g->nodes[k].inputs[s] == t)
                                count++;
        return count;
}

bool graph_tensor_is_output(const CvoptGraph *g, int32_t t) {
        for (uint32_t i = 0; i < g->n_outputs; i++)
                if (g->outputs[i] == t)
                        return true;
        return false;
}

bool graph_tensor_is_input(const CvoptGraph *g, int32_t t) {
        for (uint32_t i = 0; i < g->n_inputs; i++)
                if (g->inputs[i] == t)
                        return true;
        return false;
}

void graph_replace_uses(CvoptGraph *g, int32_t from, int32_t to) {
        for (uint32_t k = 0; k < g->n_nodes; k++)
                for (uint32_t s = 0; s < g->nodes[k].n_inputs; s++)
                        if (g->nodes[k].inputs[s] == from)
                                g->nodes[k].inputs[s] = to;
}

static void node_clear(CvoptNode *n) {
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
        memset(n, 0, sizeof(*n));
}

void graph_remove_nodes(CvoptGraph *g, const bool *remove) {
        uint32_t kept = 0;

        for (uint32_t k = 0; k < g->n_nodes; k++) {
                if (remove[k]) {
                        node_clear(&g->nodes[k]);
                        continue;
                }
                if (kept != k)
                        g->nodes[kept] = g->nodes[k];
                kept++;
        }
        /* Slots past the end must not alias the moved nodes' arrays. */
        if (kept < g->n_nodes)
                memset(&g->nodes[kept], 0, (g->n_nodes - kept) * sizeof(CvoptNode));
        g->n_nodes = kept;
}

int graph_add_constant_unique(CvoptGraph *g, const char *base, CvoptDType dtype, uint32_t ndim,
                              const int64_t *dims, void *data, int32_t *ret_index) {
        char name[512];

        snprintf(name, sizeof(name), "%s", base);
        /* 1000 tries: a graph with that many tensors named base.N was made
         * on purpose to defeat us, and failing is then the right answer. */
        for (unsigned attempt = 1; attempt <= 1000; attempt++) {
                if (cvopt_graph_find_tensor(g, name) < 0)
                        return cvopt_graph_add_constant(g, name, dtype, ndim, dims, data, true, ret_index);
                snprintf(name, sizeof(name), "%s.%u", base, attempt);
        }
        return cvopt_error_set(-EEXIST, "cannot find a free tensor name for '%s'", base);
}

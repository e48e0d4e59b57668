/* SPDX-License-Identifier: MIT */
#pragma once

/* Small graph queries and edits shared by the passes in engine/exec/. The
 * graph refers to tensors by index, so these scan the node list; graphs are
 * a few hundred nodes, and passes run once per model, so a linear scan per
 * query is cheaper to get right than keeping use lists up to date. */

#include <stdbool.h>
#include <stdint.h>

#include "cvopt/graph.h"

/* Index of the node that produces tensor t, or -1 (graph input, constant,
 * or nobody). */
int32_t graph_tensor_producer(const CvoptGraph *g, int32_t t);

/* How many node input slots read tensor t. */
uint32_t graph_tensor_n_uses(const CvoptGraph *g, int32_t t);

bool graph_tensor_is_output(const CvoptGraph *g, int32_t t);
bool graph_tensor_is_input(const CvoptGraph *g, int32_t t);

/* Makes every node input slot that reads from read to instead. */
void graph_replace_uses(CvoptGraph *g, int32_t from, int32_t to);

/* Removes the nodes whose remove[k] is set, keeping the order of the rest.
 * Tensors stay (cvopt_graph_prune_unused() drops the orphans). */
void graph_remove_nodes(CvoptGraph *g, const bool *remove);

/* Adds a constant named after base ("base", else "base.1", "base.2"...) so
 * that a pass can make a new tensor without a name clash. Takes ownership
 * of data on success only. */
int graph_add_constant_unique(CvoptGraph *g, const char *base, CvoptDType dtype, uint32_t ndim,
                              const int64_t *dims, void *data, int32_t *ret_index);

/* "node 'conv1' (op Conv)" style prefix pieces, for detail messages. */
static inline const char *graph_op_name(CvoptOp op) {
        const char *name = cvopt_op_name(op);

        return name ? name : "invalid";
}

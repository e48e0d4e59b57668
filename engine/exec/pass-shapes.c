/* SPDX-License-Identifier: MIT */
/* Shape inference and constant folding: one walk in execution order, so
 * that every node sees its inputs' shapes (and, for folded producers, their
 * values) before its own shape function runs. Folding is what lets an
 * exported "x.view(x.size(0), -1)" (Shape -> Gather -> Unsqueeze -> Concat
 * -> Reshape) become a plain Reshape with a constant shape. */
#include <stdio.h>

#include "cpu/ref-ops.h"
#include "cvopt/engine.h"
#include "cvopt/errors.h"
#include "exec/graph-util.h"
#include "macro.h"

static int check_graph_inputs(const CvoptGraph *g) {
        for (uint32_t i = 0; i < g->n_inputs; i++) {
                const CvoptTensor *t;

                if (g->inputs[i] < 0 || (uint32_t) g->inputs[i] >= g->n_tensors)
                        return cvopt_error_set(-CVOPT_E_FORMAT, "graph input %u: index out of range", i);
                t = &g->tensors[g->inputs[i]];
                if (!t->has_shape)
                        return cvopt_error_set(-CVOPT_E_SHAPE, "graph input '%s' has no known shape", t->name);
                if (cvopt_tensor_count(t) < 0) {
                        char shape[128];

                        return cvopt_error_set(-CVOPT_E_SHAPE,
                                               "graph input '%s' has shape %s: every dimension must be fixed",
                                               t->name, cvopt_tensor_shape_str(t, shape, sizeof(shape)));
                }
        }
        return 0;
}

/* ONNX Shape (opset 15) may slice the dims with start/end. The reference
 * run function needs input data, which a run-time tensor does not have, so
 * the dims are copied here; the shape function has already sized the
 * output, and start is normalized the same way ONNX does. */
static int shape_fill_output(const CvoptNode *n, const CvoptTensor *in, CvoptTensor *out) {
        int64_t start = cvopt_node_get_int(n, "start", 0), count;
        int64_t *values;

        if (out->dtype != CVOPT_DTYPE_INT64 || out->ndim != 1)
                return cvopt_error_set(-CVOPT_E_SHAPE, "node '%s' (op Shape): output is not a 1-D int64 tensor",
                                       n->name);
        count = out->dims[0];
        if (start < 0)
                start += in->ndim;
        start = CLAMP(start, 0, (int64_t) in->ndim);
        if (count < 0 || start + count > (int64_t) in->ndim)
                return cvopt_error_set(-CVOPT_E_SHAPE, "node '%s' (op Shape): output length %lld out of range",
                                       n->name, (long long) count);
        values = calloc(MAX(count, 1), sizeof(int64_t));
        if (!values)
                return -ENOMEM;
        for (int64_t i = 0; i < count; i++)
                values[i] = in->dims[start + i];
        out->data = values;
        out->owns_data = true;
        out->is_constant = true;
        return 0;
}

/* Evaluates node n, whose inputs are all constant, and makes its outputs
 * constants that own their data. */
static int node_fold(CvoptGraph *g, const CvoptNode *n, const RefOp *ref) {
        const CvoptTensor *inputs[n->n_inputs + 1];
        CvoptTensor *outputs[n->n_outputs + 1];
        int r;

        for (uint32_t s = 0; s < n->n_inputs; s++)
                inputs[s] = cvopt_node_input(g, n, s);
        for (uint32_t s = 0; s < n->n_outputs; s++) {
                CvoptTensor *t = cvopt_node_output(g, n, s);
                size_t bytes = cvopt_tensor_bytes(t);

                if (!t)
                        return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s': output %u out of range", n->name, s);
                if (bytes == 0 && cvopt_tensor_count(t) != 0)
                        return cvopt_error_set(-CVOPT_E_SHAPE, "node '%s' (op %s): output '%s' has no size",
                                               n->name, graph_op_name(n->op), t->name);
                /* The run function writes the buffer fully; calloc keeps a
                 * buggy kernel's result deterministic rather than random. */
                t->data = calloc(1, MAX(bytes, 1u));
                if (!t->data)
                        return -ENOMEM;
                t->owns_data = true;
                outputs[s] = t;
        }
        r = ref->run(n, inputs, outputs);
        if (r < 0) {
                for (uint32_t s = 0; s < n->n_outputs; s++) {
                        free(outputs[s]->data);
                        outputs[s]->data = NULL;
                        outputs[s]->owns_data = false;
                }
                return cvopt_error_prefix(r, "node '%s' (op %s): folding", n->name, graph_op_name(n->op));
        }
        for (uint32_t s = 0; s < n->n_outputs; s++)
                outputs[s]->is_constant = true;
        return 0;
}

/* Whether n can be evaluated now: every present input is constant (a node
 * with no inputs, like Constant, qualifies), or it is a Shape of a tensor
 * whose shape is known. */
static bool node_is_foldable(const CvoptGraph *g, const CvoptNode *n) {
        if (n->op == CVOPT_OP_SHAPE)
                return true; /* inputs' shapes were checked before infer */
        for (uint32_t s = 0; s < n->n_inputs; s++) {
                const CvoptTensor *t = cvopt_node_input(g, n, s);

                if (t && !t->is_constant)
                        return false;
        }
        return true;
}

/* Infers node n's output shapes and folds it when it can; 1 if folded. */
static int node_infer(CvoptGraph *g, CvoptNode *n) {
        const RefOp *ref = ref_op_lookup(n->op);
        int r;

        if (!ref || !ref->infer)
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "node '%s' (op %s): no implementation", n->name,
                                       graph_op_name(n->op));
        for (uint32_t s = 0; s < n->n_inputs; s++) {
                const CvoptTensor *t;

                if (n->inputs[s] == -1)
                        continue;
                t = cvopt_node_input(g, n, s);
                if (!t)
                        return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s': input %u out of range", n->name, s);
                if (!t->has_shape)
                        return cvopt_error_set(-CVOPT_E_SHAPE, "node '%s' (op %s): input '%s' has no known shape",
                                               n->name, graph_op_name(n->op), t->name);
        }
        for (uint32_t s = 0; s < n->n_outputs; s++) {
                CvoptTensor *t = cvopt_node_output(g, n, s);

                if (!t)
                        return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s': output %u out of range", n->name, s);
                if (t->is_constant)
                        return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s': output '%s' is a constant", n->name,
                                               t->name);
        }

        r = ref->infer(g, n);
        if (r < 0)
                return r;
        for (uint32_t s = 0; s < n->n_outputs; s++) {
                const CvoptTensor *t = cvopt_node_output(g, n, s);

                if (!t->has_shape || cvopt_tensor_count(t) < 0)
                        return cvopt_error_set(-CVOPT_E_SHAPE, "node '%s' (op %s): cannot know the shape of '%s'",
                                               n->name, graph_op_name(n->op), t->name);
        }

        if (!node_is_foldable(g, n))
                return 0;
        if (n->op == CVOPT_OP_SHAPE) {
                const CvoptTensor *in = cvopt_node_input(g, n, 0);

                if (!in || n->n_outputs != 1)
                        return cvopt_error_set(-CVOPT_E_FORMAT, "node '%s' (op Shape): needs one input and one output",
                                               n->name);
                r = shape_fill_output(n, in, cvopt_node_output(g, n, 0));
        } else if (ref->run)
                r = node_fold(g, n, ref);
        else
                return 0;
        return r < 0 ? r : 1;
}

int cvopt_graph_infer_shapes(CvoptGraph *g) {
        _cleanup_free_ bool *folded = NULL;
        bool any_folded = false;
        int r;

        r = check_graph_inputs(g);
        if (r < 0)
                return r;
        folded = calloc(MAX(g->n_nodes, 1u), sizeof(bool));
        if (!folded)
                return -ENOMEM;

        for (uint32_t k = 0; k < g->n_nodes; k++) {
                r = node_infer(g, &g->nodes[k]);
                if (r < 0)
                        break;
                if (r > 0)
                        folded[k] = any_folded = true;
        }
        /* Also on failure: a folded node's outputs are constants now, and a
         * node still producing them would make the graph invalid. */
        if (any_folded)
                graph_remove_nodes(g, folded);
        return r < 0 ? r : 0;
}

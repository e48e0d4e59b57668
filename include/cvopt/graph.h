/* SPDX-License-Identifier: MIT */
#pragma once

/* The graph IR shared by the ONNX importer, the optimizer passes, the .cvm
 * reader/writer and the executor. Tensors and nodes live in arrays owned by
 * the graph and refer to each other by index (never by pointer, since the
 * arrays grow). Node operators carry ONNX names and ONNX semantics;
 * attributes are a typed key/value list, so the file format and the passes
 * need not know every operator's parameters. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvopt/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Stable names: the .cvm file stores the name, not the number. */
typedef enum CvoptOp {
        CVOPT_OP_CONV,
        CVOPT_OP_GEMM,
        CVOPT_OP_MATMUL,
        CVOPT_OP_RELU,
        CVOPT_OP_CLIP,
        CVOPT_OP_LEAKY_RELU,
        CVOPT_OP_PRELU,
        CVOPT_OP_SIGMOID,
        CVOPT_OP_HARD_SIGMOID,
        CVOPT_OP_HARD_SWISH,
        CVOPT_OP_TANH,
        CVOPT_OP_MAX_POOL,
        CVOPT_OP_AVERAGE_POOL,
        CVOPT_OP_GLOBAL_AVERAGE_POOL,
        CVOPT_OP_GLOBAL_MAX_POOL,
        CVOPT_OP_BATCH_NORMALIZATION,
        CVOPT_OP_ADD,
        CVOPT_OP_SUB,
        CVOPT_OP_MUL,
        CVOPT_OP_DIV,
        CVOPT_OP_CONCAT,
        CVOPT_OP_FLATTEN,
        CVOPT_OP_RESHAPE,
        CVOPT_OP_TRANSPOSE,
        CVOPT_OP_SQUEEZE,
        CVOPT_OP_UNSQUEEZE,
        CVOPT_OP_SOFTMAX,
        CVOPT_OP_DROPOUT,
        CVOPT_OP_IDENTITY,
        CVOPT_OP_CONSTANT,
        CVOPT_OP_SHAPE,
        CVOPT_OP_GATHER,
        CVOPT_OP_SLICE,
        CVOPT_OP_REDUCE_MEAN,
        CVOPT_OP_REDUCE_MAX,
        CVOPT_OP_REDUCE_SUM,
        /* Quantized operators (docs/quantization.md): written by the
         * optimizer, never imported from ONNX. Activations are uint8 with
         * per-tensor scale/zero point in CvoptTensor.quant; weights int8 with
         * per-channel scales; integer requantization parameters are node
         * attributes, computed once by the optimizer. */
        CVOPT_OP_QUANTIZE,
        CVOPT_OP_DEQUANTIZE,
        CVOPT_OP_QCONV,
        CVOPT_OP_QGEMM,
        CVOPT_OP_QADD,
        CVOPT_OP_QCONCAT,
        CVOPT_OP_QAVERAGE_POOL,
        CVOPT_OP_QGLOBAL_AVERAGE_POOL,
        CVOPT_OP_QMAX_POOL,
        CVOPT_OP_QGLOBAL_MAX_POOL,
        CVOPT_OP_QLUT,
        _CVOPT_OP_MAX,
} CvoptOp;

#define CVOPT_OP_FIRST_QUANTIZED CVOPT_OP_QUANTIZE
static inline int cvopt_op_is_quantized(CvoptOp op) {
        return op >= CVOPT_OP_FIRST_QUANTIZED && op < _CVOPT_OP_MAX;
}

const char *cvopt_op_name(CvoptOp op); /* "Conv", ...; NULL if out of range */
int cvopt_op_from_name(const char *name); /* CvoptOp or -ENOENT */

typedef enum CvoptAttrType {
        CVOPT_ATTR_INT = 1,
        CVOPT_ATTR_FLOAT,
        CVOPT_ATTR_STRING,
        CVOPT_ATTR_INTS,
        CVOPT_ATTR_FLOATS,
} CvoptAttrType;

typedef struct CvoptAttr {
        char *name;
        CvoptAttrType type;
        int64_t i;
        float f;
        char *s;
        uint32_t count; /* INTS/FLOATS */
        int64_t *ints;
        float *floats;
} CvoptAttr;

typedef struct CvoptNode {
        char *name;
        CvoptOp op;
        uint32_t n_inputs;
        int32_t *inputs; /* tensor indices; -1 for an absent optional input */
        uint32_t n_outputs;
        int32_t *outputs;
        uint32_t n_attrs;
        CvoptAttr *attrs;
} CvoptNode;

typedef struct CvoptGraph {
        uint32_t n_tensors, cap_tensors;
        CvoptTensor *tensors;
        uint32_t n_nodes, cap_nodes;
        CvoptNode *nodes; /* in execution (topological) order */
        uint32_t n_inputs;
        int32_t *inputs; /* graph inputs (non-constant tensors fed by the caller) */
        uint32_t n_outputs;
        int32_t *outputs;
        /* Memory that constant tensors may point into (a mapped .cvm file):
         * released with the graph through release_backing. */
        void *backing;
        size_t backing_size;
        void (*release_backing)(void *backing, size_t size);
} CvoptGraph;

int cvopt_graph_new(CvoptGraph **ret_graph);
CvoptGraph *cvopt_graph_free(CvoptGraph *g);

/* Adds a tensor with no data; ndim/dims may be 0/NULL when the shape is not
 * known yet. Fails with -EEXIST if a tensor of that name exists. */
int cvopt_graph_add_tensor(CvoptGraph *g, const char *name, CvoptDType dtype, uint32_t ndim,
                           const int64_t *dims, int32_t *ret_index);

/* Adds a constant tensor; takes ownership of data (freed with the graph) when
 * owns_data, else data must outlive the graph (e.g. points into backing). */
int cvopt_graph_add_constant(CvoptGraph *g, const char *name, CvoptDType dtype, uint32_t ndim,
                             const int64_t *dims, void *data, bool owns_data, int32_t *ret_index);

/* Index of the tensor named name, or -ENOENT. */
int cvopt_graph_find_tensor(const CvoptGraph *g, const char *name);

/* Appends a node; inputs/outputs are copied. */
int cvopt_graph_add_node(CvoptGraph *g, const char *name, CvoptOp op, uint32_t n_inputs,
                         const int32_t *inputs, uint32_t n_outputs, const int32_t *outputs,
                         int32_t *ret_index);

int cvopt_graph_set_inputs(CvoptGraph *g, uint32_t n, const int32_t *indices);
int cvopt_graph_set_outputs(CvoptGraph *g, uint32_t n, const int32_t *indices);

/* Removes nodes whose outputs nobody uses and tensors no node or graph
 * input/output refers to, renumbering indices. Keeps node order. */
int cvopt_graph_prune_unused(CvoptGraph *g);

/* Attributes: setters replace an existing attribute of the same name. */
int cvopt_node_set_int(CvoptNode *n, const char *name, int64_t value);
int cvopt_node_set_float(CvoptNode *n, const char *name, float value);
int cvopt_node_set_string(CvoptNode *n, const char *name, const char *value);
int cvopt_node_set_ints(CvoptNode *n, const char *name, uint32_t count, const int64_t *values);
int cvopt_node_set_floats(CvoptNode *n, const char *name, uint32_t count, const float *values);
int cvopt_node_remove_attr(CvoptNode *n, const char *name);

const CvoptAttr *cvopt_node_attr(const CvoptNode *n, const char *name);
int64_t cvopt_node_get_int(const CvoptNode *n, const char *name, int64_t default_value);
float cvopt_node_get_float(const CvoptNode *n, const char *name, float default_value);
const char *cvopt_node_get_string(const CvoptNode *n, const char *name, const char *default_value);

/* The tensor behind a node's input/output slot, or NULL for an absent
 * optional input or a slot past the end. */
CvoptTensor *cvopt_node_input(const CvoptGraph *g, const CvoptNode *n, uint32_t slot);
CvoptTensor *cvopt_node_output(const CvoptGraph *g, const CvoptNode *n, uint32_t slot);

/* Structural check: every index in range, every non-constant node input
 * produced by an earlier node or a graph input, no tensor produced twice.
 * Used by the .cvm reader on hostile files and by tests after each pass. */
int cvopt_graph_validate(const CvoptGraph *g);

/* Deep copy (constant data is copied too, the copy owns everything). */
int cvopt_graph_clone(const CvoptGraph *g, CvoptGraph **ret_copy);

#ifdef __cplusplus
}
#endif

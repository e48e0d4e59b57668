/* SPDX-License-Identifier: MIT */
#include <stdio.h>

#include "cvopt/errors.h"
#include "cvopt/graph.h"
#include "macro.h"

static const char *const op_names[_CVOPT_OP_MAX] = {
        [CVOPT_OP_CONV] = "Conv",
        [CVOPT_OP_GEMM] = "Gemm",
        [CVOPT_OP_MATMUL] = "MatMul",
        [CVOPT_OP_RELU] = "Relu",
        [CVOPT_OP_CLIP] = "Clip",
        [CVOPT_OP_LEAKY_RELU] = "LeakyRelu",
        [CVOPT_OP_PRELU] = "PRelu",
        [CVOPT_OP_SIGMOID] = "Sigmoid",
        [CVOPT_OP_HARD_SIGMOID] = "HardSigmoid",
        [CVOPT_OP_HARD_SWISH] = "HardSwish",
        [CVOPT_OP_TANH] = "Tanh",
        [CVOPT_OP_MAX_POOL] = "MaxPool",
        [CVOPT_OP_AVERAGE_POOL] = "AveragePool",
        [CVOPT_OP_GLOBAL_AVERAGE_POOL] = "GlobalAveragePool",
        [CVOPT_OP_GLOBAL_MAX_POOL] = "GlobalMaxPool",
        [CVOPT_OP_BATCH_NORMALIZATION] = "BatchNormalization",
        [CVOPT_OP_ADD] = "Add",
        [CVOPT_OP_SUB] = "Sub",
        [CVOPT_OP_MUL] = "Mul",
        [CVOPT_OP_DIV] = "Div",
        [CVOPT_OP_CONCAT] = "Concat",
        [CVOPT_OP_FLATTEN] = "Flatten",
        [CVOPT_OP_RESHAPE] = "Reshape",
        [CVOPT_OP_TRANSPOSE] = "Transpose",
        [CVOPT_OP_SQUEEZE] = "Squeeze",
        [CVOPT_OP_UNSQUEEZE] = "Unsqueeze",
        [CVOPT_OP_SOFTMAX] = "Softmax",
        [CVOPT_OP_DROPOUT] = "Dropout",
        [CVOPT_OP_IDENTITY] = "Identity",
        [CVOPT_OP_CONSTANT] = "Constant",
        [CVOPT_OP_SHAPE] = "Shape",
        [CVOPT_OP_GATHER] = "Gather",
        [CVOPT_OP_SLICE] = "Slice",
        [CVOPT_OP_REDUCE_MEAN] = "ReduceMean",
        [CVOPT_OP_REDUCE_MAX] = "ReduceMax",
        [CVOPT_OP_REDUCE_SUM] = "ReduceSum",
        [CVOPT_OP_QUANTIZE] = "Quantize",
        [CVOPT_OP_DEQUANTIZE] = "Dequantize",
        [CVOPT_OP_QCONV] = "QConv",
        [CVOPT_OP_QGEMM] = "QGemm",
        [CVOPT_OP_QADD] = "QAdd",
        [CVOPT_OP_QCONCAT] = "QConcat",
        [CVOPT_OP_QAVERAGE_POOL] = "QAveragePool",
        [CVOPT_OP_QGLOBAL_AVERAGE_POOL] = "QGlobalAveragePool",
        [CVOPT_OP_QMAX_POOL] = "QMaxPool",
        [CVOPT_OP_QGLOBAL_MAX_POOL] = "QGlobalMaxPool",
        [CVOPT_OP_QLUT] = "QLut",
};

const char *cvopt_op_name(CvoptOp op) {
        if ((unsigned) op >= _CVOPT_OP_MAX)
                return NULL;
        return op_names[op];
}

int cvopt_op_from_name(const char *name) {
        for (int i = 0; i < _CVOPT_OP_MAX; i++)
                if (op_names[i] && streq(op_names[i], name))
                        return i;
        return -ENOENT;
}

static void attr_done(CvoptAttr *a) {
        free(a->name);
        free(a->s);
        free(a->ints);
        free(a->floats);
        memset(a, 0, sizeof(*a));
}

static void tensor_done(CvoptTensor *t) {
        free(t->name);
        if (t->owns_data)
                free(t->data);
        free(t->quant.scale);
        free(t->quant.zero_point);
        memset(t, 0, sizeof(*t));
}

static void node_done(CvoptNode *n) {
        free(n->name);
        free(n->inputs);
        free(n->outputs);
        for (uint32_t i = 0; i < n->n_attrs; i++)
                attr_done(&n->attrs[i]);
        free(n->attrs);
        memset(n, 0, sizeof(*n));
}

int cvopt_graph_new(CvoptGraph **ret_graph) {
        CvoptGraph *g = calloc(1, sizeof(*g));

        if (!g)
                return -ENOMEM;
        *ret_graph = g;
        return 0;
}

CvoptGraph *cvopt_graph_free(CvoptGraph *g) {
        if (!g)
                return NULL;
        for (uint32_t i = 0; i < g->n_tensors; i++)
                tensor_done(&g->tensors[i]);
        free(g->tensors);
        for (uint32_t i = 0; i < g->n_nodes; i++)
                node_done(&g->nodes[i]);
        free(g->nodes);
        free(g->inputs);
        free(g->outputs);
        if (g->release_backing)
                g->release_backing(g->backing, g->backing_size);
        free(g);
        return NULL;
}

/* Grows *array (of elem_size items, *cap allocated) to hold one more. */
static int grow(void **array, uint32_t *cap, uint32_t used, size_t elem_size) {
        uint32_t new_cap;
        void *p;

        if (used < *cap)
                return 0;
        if (used >= INT32_MAX / 2)
                return -E2BIG;
        new_cap = *cap ? *cap * 2 : 16;
        p = reallocarray(*array, new_cap, elem_size);
        if (!p)
                return -ENOMEM;
        memset((char *) p + (size_t) *cap * elem_size, 0, (size_t) (new_cap - *cap) * elem_size);
        *array = p;
        *cap = new_cap;
        return 0;
}

int cvopt_graph_find_tensor(const CvoptGraph *g, const char *name) {
        for (uint32_t i = 0; i < g->n_tensors; i++)
                if (g->tensors[i].name && streq(g->tensors[i].name, name))
                        return (int) i;
        return -ENOENT;
}

int cvopt_graph_add_tensor(CvoptGraph *g, const char *name, CvoptDType dtype, uint32_t ndim,
                           const int64_t *dims, int32_t *ret_index) {
        CvoptTensor *t;
        int r;

        if (!name || ndim > CVOPT_MAX_DIMS || (ndim > 0 && !dims))
                return cvopt_error_set(-EINVAL, "tensor '%s': invalid arguments", strempty(name));
        if (cvopt_graph_find_tensor(g, name) >= 0)
                return cvopt_error_set(-EEXIST, "tensor '%s' defined twice", name);
        r = grow((void **) &g->tensors, &g->cap_tensors, g->n_tensors, sizeof(CvoptTensor));
        if (r < 0)
                return r;
        t = &g->tensors[g->n_tensors];
        memset(t, 0, sizeof(*t));
        t->name = strdup(name);
        if (!t->name)
                return -ENOMEM;
        t->dtype = dtype;
        t->ndim = ndim;
        if (ndim > 0)
                memcpy(t->dims, dims, ndim * sizeof(int64_t));
        t->has_shape = dims != NULL || ndim == 0;
        t->quant.axis = -1;
        if (ret_index)
                *ret_index = (int32_t) g->n_tensors;
        g->n_tensors++;
        return 0;
}

int cvopt_graph_add_constant(CvoptGraph *g, const char *name, CvoptDType dtype, uint32_t ndim,
                             const int64_t *dims, void *data, bool owns_data, int32_t *ret_index) {
        int32_t index;
        int r;

        r = cvopt_graph_add_tensor(g, name, dtype, ndim, dims, &index);
        if (r < 0)
                return r;
        g->tensors[index].data = data;
        g->tensors[index].owns_data = owns_data;
        g->tensors[index].is_constant = true;
        g->tensors[index].has_shape = true;
        if (ret_index)
                *ret_index = index;
        return 0;
}

int cvopt_graph_add_node(CvoptGraph *g, const char *name, CvoptOp op, uint32_t n_inputs,
                         const int32_t *inputs, uint32_t n_outputs, const int32_t *outputs,
                         int32_t *ret_index) {
        CvoptNode *n;
        int r;

        if ((unsigned) op >= _CVOPT_OP_MAX || n_inputs > 1024 || n_outputs > 1024)
                return -EINVAL;
        r = grow((void **) &g->nodes, &g->cap_nodes, g->n_nodes, sizeof(CvoptNode));
        if (r < 0)
                return r;
        n = &g->nodes[g->n_nodes];
        memset(n, 0, sizeof(*n));
        n->op = op;
        n->name = strdup(name ? name : "");
        n->inputs = calloc(MAX(n_inputs, 1u), sizeof(int32_t));
        n->outputs = calloc(MAX(n_outputs, 1u), sizeof(int32_t));
        if (!n->name || !n->inputs || !n->outputs) {
                node_done(n);
                return -ENOMEM;
        }
        if (n_inputs)
                memcpy(n->inputs, inputs, n_inputs * sizeof(int32_t));
        if (n_outputs)
                memcpy(n->outputs, outputs, n_outputs * sizeof(int32_t));
        n->n_inputs = n_inputs;
        n->n_outputs = n_outputs;
        if (ret_index)
                *ret_index = (int32_t) g->n_nodes;
        g->n_nodes++;
        return 0;
}

static int set_index_list(int32_t **list, uint32_t *count, uint32_t n, const int32_t *indices) {
        int32_t *copy = calloc(MAX(n, 1u), sizeof(int32_t));

        if (!copy)
                return -ENOMEM;
        if (n)
                memcpy(copy, indices, n * sizeof(int32_t));
        free(*list);
        *list = copy;
        *count = n;
        return 0;
}

int cvopt_graph_set_inputs(CvoptGraph *g, uint32_t n, const int32_t *indices) {
        return set_index_list(&g->inputs, &g->n_inputs, n, indices);
}

int cvopt_graph_set_outputs(CvoptGraph *g, uint32_t n, const int32_t *indices) {
        return set_index_list(&g->outputs, &g->n_outputs, n, indices);
}

CvoptTensor *cvopt_node_input(const CvoptGraph *g, const CvoptNode *n, uint32_t slot) {
        if (slot >= n->n_inputs || n->inputs[slot] < 0 || (uint32_t) n->inputs[slot] >= g->n_tensors)
                return NULL;
        return &g->tensors[n->inputs[slot]];
}

CvoptTensor *cvopt_node_output(const CvoptGraph *g, const CvoptNode *n, uint32_t slot) {
        if (slot >= n->n_outputs || n->outputs[slot] < 0 || (uint32_t) n->outputs[slot] >= g->n_tensors)
                return NULL;
        return &g->tensors[n->outputs[slot]];
}

/* Attributes */

const CvoptAttr *cvopt_node_attr(const CvoptNode *n, const char *name) {
        for (uint32_t i = 0; i < n->n_attrs; i++)
                if (streq(n->attrs[i].name, name))
                        return &n->attrs[i];
        return NULL;
}

/* Returns a cleared slot for attribute name, reusing one of the same name. */
static int attr_slot(CvoptNode *n, const char *name, CvoptAttr **ret) {
        CvoptAttr *a = (CvoptAttr *) cvopt_node_attr(n, name), *p;
        char *copy;

        if (a) {
                copy = a->name;
                a->name = NULL;
                attr_done(a);
                a->name = copy;
                *ret = a;
                return 0;
        }
        copy = strdup(name);
        if (!copy)
                return -ENOMEM;
        p = reallocarray(n->attrs, n->n_attrs + 1, sizeof(CvoptAttr));
        if (!p) {
                free(copy);
                return -ENOMEM;
        }
        n->attrs = p;
        a = &n->attrs[n->n_attrs++];
        memset(a, 0, sizeof(*a));
        a->name = copy;
        *ret = a;
        return 0;
}

int cvopt_node_set_int(CvoptNode *n, const char *name, int64_t value) {
        CvoptAttr *a;
        int r = attr_slot(n, name, &a);

        if (r < 0)
                return r;
        a->type = CVOPT_ATTR_INT;
        a->i = value;
        return 0;
}

int cvopt_node_set_float(CvoptNode *n, const char *name, float value) {
        CvoptAttr *a;
        int r = attr_slot(n, name, &a);

        if (r < 0)
                return r;
        a->type = CVOPT_ATTR_FLOAT;
        a->f = value;
        return 0;
}

int cvopt_node_set_string(CvoptNode *n, const char *name, const char *value) {
        CvoptAttr *a;
        int r = attr_slot(n, name, &a);

        if (r < 0)
                return r;
        a->type = CVOPT_ATTR_STRING;
        a->s = strdup(value);
        return a->s ? 0 : -ENOMEM;
}

int cvopt_node_set_ints(CvoptNode *n, const char *name, uint32_t count, const int64_t *values) {
        CvoptAttr *a;
        int r = attr_slot(n, name, &a);

        if (r < 0)
                return r;
        a->type = CVOPT_ATTR_INTS;
        a->ints = calloc(MAX(count, 1u), sizeof(int64_t));
        if (!a->ints)
                return -ENOMEM;
        if (count)
                memcpy(a->ints, values, count * sizeof(int64_t));
        a->count = count;
        return 0;
}

int cvopt_node_set_floats(CvoptNode *n, const char *name, uint32_t count, const float *values) {
        CvoptAttr *a;
        int r = attr_slot(n, name, &a);

        if (r < 0)
                return r;
        a->type = CVOPT_ATTR_FLOATS;
        a->floats = calloc(MAX(count, 1u), sizeof(float));
        if (!a->floats)
                return -ENOMEM;
        if (count)
                memcpy(a->floats, values, count * sizeof(float));
        a->count = count;
        return 0;
}

int cvopt_node_remove_attr(CvoptNode *n, const char *name) {
        for (uint32_t i = 0; i < n->n_attrs; i++) {
                if (!streq(n->attrs[i].name, name))
                        continue;
                attr_done(&n->attrs[i]);
                memmove(&n->attrs[i], &n->attrs[i + 1], (n->n_attrs - i - 1) * sizeof(CvoptAttr));
                n->n_attrs--;
                return 0;
        }
        return -ENOENT;
}

int64_t cvopt_node_get_int(const CvoptNode *n, const char *name, int64_t default_value) {
        const CvoptAttr *a = cvopt_node_attr(n, name);

        return a && a->type == CVOPT_ATTR_INT ? a->i : default_value;
}

float cvopt_node_get_float(const CvoptNode *n, const char *name, float default_value) {
        const CvoptAttr *a = cvopt_node_attr(n, name);

        return a && a->type == CVOPT_ATTR_FLOAT ? a->f : default_value;
}

const char *cvopt_node_get_string(const CvoptNode *n, const char *name, const char *default_value) {
        const CvoptAttr *a = cvopt_node_attr(n, name);

        return a && a->type == CVOPT_ATTR_STRING ? a->s : default_value;
}

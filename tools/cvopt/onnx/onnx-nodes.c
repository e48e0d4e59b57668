/* SPDX-License-Identifier: MIT */
/* One ONNX node into the IR: input/output checks, attribute copy, and the
 * per-op normalization described at the top of onnx-import.c. */
#include <math.h>
#include <stdio.h>

#include "cvopt/errors.h"
#include "macro.h"
#include "onnx-internal.h"

/* Input counts of each op in opsets 7 to 18 (the widest range; opset
 * specific limits are checked in the op's normalizer). Every supported op
 * has one output in inference; extra ONNX outputs are checked per op. */
typedef struct OpInputs {
        uint8_t min, max;
} OpInputs;

/* Concat takes any number of inputs; 255 keeps it a byte and is far more
 * than a CNN concatenates. */
static const OpInputs op_inputs[_CVOPT_OP_MAX] = {
        [CVOPT_OP_CONV] = { 2, 3 },
        [CVOPT_OP_GEMM] = { 2, 3 },
        [CVOPT_OP_MATMUL] = { 2, 2 },
        [CVOPT_OP_RELU] = { 1, 1 },
        [CVOPT_OP_CLIP] = { 1, 3 },
        [CVOPT_OP_LEAKY_RELU] = { 1, 1 },
        [CVOPT_OP_PRELU] = { 2, 2 },
        [CVOPT_OP_SIGMOID] = { 1, 1 },
        [CVOPT_OP_HARD_SIGMOID] = { 1, 1 },
        [CVOPT_OP_HARD_SWISH] = { 1, 1 },
        [CVOPT_OP_TANH] = { 1, 1 },
        [CVOPT_OP_MAX_POOL] = { 1, 1 },
        [CVOPT_OP_AVERAGE_POOL] = { 1, 1 },
        [CVOPT_OP_GLOBAL_AVERAGE_POOL] = { 1, 1 },
        [CVOPT_OP_GLOBAL_MAX_POOL] = { 1, 1 },
        [CVOPT_OP_BATCH_NORMALIZATION] = { 5, 5 },
        [CVOPT_OP_ADD] = { 2, 2 },
        [CVOPT_OP_SUB] = { 2, 2 },
        [CVOPT_OP_MUL] = { 2, 2 },
        [CVOPT_OP_DIV] = { 2, 2 },
        [CVOPT_OP_CONCAT] = { 1, 255 },
        [CVOPT_OP_FLATTEN] = { 1, 1 },
        [CVOPT_OP_RESHAPE] = { 2, 2 },
        [CVOPT_OP_TRANSPOSE] = { 1, 1 },
        [CVOPT_OP_SQUEEZE] = { 1, 2 },
        [CVOPT_OP_UNSQUEEZE] = { 1, 2 },
        [CVOPT_OP_SOFTMAX] = { 1, 1 },
        [CVOPT_OP_DROPOUT] = { 1, 3 },
        [CVOPT_OP_IDENTITY] = { 1, 1 },
        [CVOPT_OP_CONSTANT] = { 0, 0 },
        [CVOPT_OP_SHAPE] = { 1, 1 },
        [CVOPT_OP_GATHER] = { 2, 2 },
        [CVOPT_OP_SLICE] = { 1, 5 },
        [CVOPT_OP_REDUCE_MEAN] = { 1, 2 },
        [CVOPT_OP_REDUCE_MAX] = { 1, 2 },
        [CVOPT_OP_REDUCE_SUM] = { 1, 2 },
};

/* True if a later node or the graph reads the tensor called name: extra
 * outputs (Dropout's mask, BatchNormalization's running statistics) are
 * only a problem when someone reads them. */
static bool tensor_name_is_read(const OnnxImport *imp, const char *name) {
        const Onnx__GraphProto *gp = imp->proto;

        for (size_t k = 0; k < gp->n_node; k++)
                for (size_t i = 0; i < gp->node[k]->n_input; i++)
                        if (gp->node[k]->input[i] && streq(gp->node[k]->input[i], name))
                                return true;
        for (size_t i = 0; i < gp->n_output; i++)
                if (gp->output[i]->name && streq(gp->output[i]->name, name))
                        return true;
        return false;
}

/* The value of a constant input as a double, for scalar parameters that
 * opset 11+ passes as inputs (Clip's bounds). */
static int constant_scalar(const OnnxNodeRef *ref, const CvoptTensor *t, const char *what, double *ret) {
        if (!t->is_constant || !t->data)
                return onnx_node_error(ref, -CVOPT_E_UNSUPPORTED,
                                       "%s input '%s' is computed at run time, not supported (must be a constant)",
                                       what, t->name);
        if (cvopt_tensor_count(t) != 1)
                return onnx_node_error(ref, -CVOPT_E_FORMAT, "%s input '%s' must have one element", what, t->name);
        switch (t->dtype) {
        case CVOPT_DTYPE_FLOAT32:
                *ret = *(const float *) t->data;
                return 0;
        case CVOPT_DTYPE_INT8:
                *ret = *(const int8_t *) t->data;
                return 0;
        case CVOPT_DTYPE_UINT8:
                *ret = *(const uint8_t *) t->data;
                return 0;
        case CVOPT_DTYPE_INT32:
                *ret = *(const int32_t *) t->data;
                return 0;
        case CVOPT_DTYPE_INT64:
                *ret = (double) *(const int64_t *) t->data;
                return 0;
        default:
                return onnx_node_error(ref, -CVOPT_E_UNSUPPORTED, "%s input '%s' has type %s, not supported", what,
                                       t->name, cvopt_dtype_name(t->dtype));
        }
}

static int normalize_clip(const OnnxNodeRef *ref, CvoptGraph *g, CvoptNode *n) {
        static const char *const names[] = { NULL, "min", "max" };

        if (ref->imp->opset < 11) {
                if (n->n_inputs > 1)
                        return onnx_node_error(ref, -CVOPT_E_FORMAT, "%u inputs, opset %lld Clip takes 1",
                                               n->n_inputs, (long long) ref->imp->opset);
                return 0;
        }
        for (uint32_t slot = 1; slot < n->n_inputs; slot++) {
                const CvoptTensor *t = cvopt_node_input(g, n, slot);
                double v = 0;
                int r;

                if (!t)
                        continue;
                r = constant_scalar(ref, t, names[slot], &v);
                if (r < 0)
                        return r;
                r = cvopt_node_set_float(n, names[slot], (float) v);
                if (r < 0)
                        return r;
        }
        n->n_inputs = 1;
        return 0;
}

/* axes as the ints attribute "axes": from the attribute before opset
 * input_since, from a constant int64 input from then on. */
static int normalize_axes(const OnnxNodeRef *ref, CvoptGraph *g, CvoptNode *n, int64_t input_since, bool required) {
        const CvoptTensor *t;
        int r;

        if (ref->imp->opset < input_since) {
                if (n->n_inputs > 1)
                        return onnx_node_error(ref, -CVOPT_E_FORMAT, "%u inputs, opset %lld takes 1", n->n_inputs,
                                               (long long) ref->imp->opset);
                if (required && !cvopt_node_attr(n, "axes"))
                        return onnx_node_error(ref, -CVOPT_E_FORMAT, "attribute 'axes' missing");
                return 0;
        }
        t = cvopt_node_input(g, n, 1);
        if (!t) {
                if (required)
                        return onnx_node_error(ref, -CVOPT_E_FORMAT, "input 'axes' missing");
                n->n_inputs = 1;
                return 0; /* Squeeze: every dim of size 1; a reduction: every dim */
        }
        if (!t->is_constant || !t->data)
                return onnx_node_error(ref, -CVOPT_E_UNSUPPORTED,
                                       "axes input '%s' is computed at run time, not supported (must be a constant)",
                                       t->name);
        if (t->dtype != CVOPT_DTYPE_INT64 || t->ndim != 1 || t->dims[0] > 2 * CVOPT_MAX_DIMS)
                return onnx_node_error(ref, -CVOPT_E_FORMAT, "axes input '%s' must be a short 1-D int64 tensor",
                                       t->name);
        /* An empty axes list means the same as none (for a reduction,
         * noop_with_empty_axes then decides). */
        if (t->dims[0] > 0 || required) {
                r = cvopt_node_set_ints(n, "axes", (uint32_t) t->dims[0], t->data);
                if (r < 0)
                        return r;
        }
        n->n_inputs = 1;
        return 0;
}

/* Slice: the IR has the opset 10 form (data, starts, ends, axes, steps as
 * inputs). Before 10, starts/ends/axes were attributes: they become
 * constant int64 inputs named after the node's output. From 10 on they stay
 * inputs even when computed at run time, since they are usually Shape ->
 * Gather -> arithmetic chains that shape inference folds; a parameter that
 * does not fold fails there, naming the node. */
static int normalize_slice(const OnnxNodeRef *ref, CvoptGraph *g, CvoptNode *n) {
        static const char *const names[] = { "starts", "ends", "axes" };
        const char *output = g->tensors[n->outputs[0]].name;
        int32_t inputs[1 + ELEMENTSOF(names)], *grown;
        uint32_t count = 1;
        int r;

        if (ref->imp->opset >= 10) {
                if (n->n_inputs < 3 || n->inputs[1] < 0 || n->inputs[2] < 0)
                        return onnx_node_error(ref, -CVOPT_E_FORMAT, "inputs 'starts' and 'ends' are required");
                return 0;
        }
        if (n->n_inputs > 1)
                return onnx_node_error(ref, -CVOPT_E_FORMAT, "%u inputs, opset %lld Slice takes 1", n->n_inputs,
                                       (long long) ref->imp->opset);
        inputs[0] = n->inputs[0];
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                const CvoptAttr *a = cvopt_node_attr(n, names[i]);
                int64_t *values;
                char name[512];

                if (!a) {
                        if (i < 2)
                                return onnx_node_error(ref, -CVOPT_E_FORMAT, "attribute '%s' missing", names[i]);
                        continue;
                }
                values = malloc(MAX(a->count, 1u) * sizeof(int64_t));
                if (!values)
                        return -ENOMEM;
                if (a->count > 0)
                        memcpy(values, a->ints, a->count * sizeof(int64_t));
                snprintf(name, sizeof(name), "%s/%s", output, names[i]);
                r = cvopt_graph_add_constant(g, name, CVOPT_DTYPE_INT64, 1, (int64_t[]) { a->count }, values, true,
                                             &inputs[count]);
                if (r < 0) {
                        free(values);
                        return r == -EEXIST ? onnx_node_error(ref, -CVOPT_E_FORMAT,
                                                              "cannot name the %s input: tensor '%s' exists",
                                                              names[i], name)
                                            : r;
                }
                count++;
                r = cvopt_node_remove_attr(n, names[i]);
                if (r < 0)
                        return r;
        }
        grown = realloc(n->inputs, count * sizeof(int32_t));
        if (!grown)
                return -ENOMEM;
        memcpy(grown, inputs, count * sizeof(int32_t));
        n->inputs = grown;
        n->n_inputs = count;
        return 0;
}

static int normalize_softmax(const OnnxNodeRef *ref, CvoptNode *n) {
        int r;

        /* Before opset 13, Softmax flattened the input to 2-D at axis
         * (default 1) and normalized each row; from 13 it normalizes along
         * one axis (default -1). The IR keeps both, told apart by coerce_2d. */
        if (ref->imp->opset < 13) {
                r = cvopt_node_set_int(n, "axis", cvopt_node_get_int(n, "axis", 1));
                if (r < 0)
                        return r;
                return cvopt_node_set_int(n, "coerce_2d", 1);
        }
        return cvopt_node_set_int(n, "axis", cvopt_node_get_int(n, "axis", -1));
}

static int normalize_dropout(const OnnxNodeRef *ref, CvoptGraph *g, CvoptNode *n) {
        const CvoptTensor *mode = cvopt_node_input(g, n, 2);

        /* Input 1 (ratio, opset 12+) does not matter in inference. Input 2
         * (training_mode) must be absent or a constant false. */
        if (ref->imp->opset < 12 && n->n_inputs > 1)
                return onnx_node_error(ref, -CVOPT_E_FORMAT, "%u inputs, opset %lld Dropout takes 1", n->n_inputs,
                                       (long long) ref->imp->opset);
        if (mode) {
                /* ONNX declares it BOOL, a type the IR (and so the
                 * initializer decoder) lacks; accept any all-zero scalar. */
                size_t bytes = cvopt_tensor_bytes(mode);
                bool is_false = mode->is_constant && mode->data && cvopt_tensor_count(mode) == 1 && bytes > 0;

                for (size_t i = 0; is_false && i < bytes; i++)
                        if (((const uint8_t *) mode->data)[i] != 0)
                                is_false = false;
                if (!is_false)
                        return onnx_node_error(ref, -CVOPT_E_UNSUPPORTED,
                                               "training_mode input '%s' not supported (only a constant false)",
                                               mode->name);
        }
        n->n_inputs = 1;
        return 0;
}

static int check_auto_pad(const OnnxNodeRef *ref, const CvoptNode *n) {
        static const char *const values[] = { "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID" };
        const CvoptAttr *a = cvopt_node_attr(n, "auto_pad");

        if (!a)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(values); i++)
                if (streq(a->s, values[i]))
                        return 0;
        return onnx_node_attr_unsupported(ref, a);
}

static int check_int_value(const OnnxNodeRef *ref, const CvoptNode *n, const char *name, int64_t only) {
        const CvoptAttr *a = cvopt_node_attr(n, name);

        if (a && a->i != only)
                return onnx_node_attr_unsupported(ref, a);
        return 0;
}

static int normalize(const OnnxNodeRef *ref, CvoptGraph *g, CvoptNode *n) {
        int r;

        switch (n->op) {
        case CVOPT_OP_CONV:
        case CVOPT_OP_AVERAGE_POOL:
                return check_auto_pad(ref, n);
        case CVOPT_OP_MAX_POOL:
                r = check_auto_pad(ref, n);
                if (r < 0)
                        return r;
                /* storage_order only changes the Indices output, which we
                 * reject, but 1 says the model expects column-major
                 * indices: refuse rather than guess. */
                return check_int_value(ref, n, "storage_order", 0);
        case CVOPT_OP_BATCH_NORMALIZATION:
                r = check_int_value(ref, n, "spatial", 1);
                if (r < 0)
                        return r;
                return check_int_value(ref, n, "training_mode", 0);
        case CVOPT_OP_CLIP:
                return normalize_clip(ref, g, n);
        case CVOPT_OP_SQUEEZE:
                return normalize_axes(ref, g, n, 13, false);
        case CVOPT_OP_UNSQUEEZE:
                return normalize_axes(ref, g, n, 13, true);
        case CVOPT_OP_REDUCE_SUM:
                return normalize_axes(ref, g, n, 13, false);
        case CVOPT_OP_REDUCE_MEAN:
        case CVOPT_OP_REDUCE_MAX:
                return normalize_axes(ref, g, n, 18, false);
        case CVOPT_OP_SLICE:
                return normalize_slice(ref, g, n);
        case CVOPT_OP_SOFTMAX:
                return normalize_softmax(ref, n);
        case CVOPT_OP_DROPOUT:
                return normalize_dropout(ref, g, n);
        case CVOPT_OP_CONCAT:
                /* Required since opset 4: there is no default to assume. */
                if (!cvopt_node_attr(n, "axis"))
                        return onnx_node_error(ref, -CVOPT_E_FORMAT, "attribute 'axis' missing");
                return 0;
        case CVOPT_OP_HARD_SWISH:
                /* Opset 14 added it; an older model naming it is not ONNX. */
                if (ref->imp->opset < 14)
                        return onnx_node_error(ref, -CVOPT_E_FORMAT, "not an operator of opset %lld",
                                               (long long) ref->imp->opset);
                return 0;
        default:
                return 0;
        }
}

/* Extra ONNX outputs beyond the first: MaxPool's Indices are refused
 * outright; Dropout's mask and BatchNormalization's training statistics are
 * refused when read; any other op has one output. */
static int check_extra_outputs(const OnnxNodeRef *ref, CvoptOp op) {
        const Onnx__NodeProto *np = ref->np;

        for (size_t i = 1; i < np->n_output; i++) {
                const char *name = strempty(np->output[i]);

                if (!name[0])
                        continue;
                switch (op) {
                case CVOPT_OP_MAX_POOL:
                        return onnx_node_error(ref, -CVOPT_E_UNSUPPORTED, "output 'Indices' ('%s') not supported",
                                               name);
                case CVOPT_OP_DROPOUT:
                case CVOPT_OP_BATCH_NORMALIZATION:
                        if (i >= (op == CVOPT_OP_DROPOUT ? 2u : 5u))
                                break;
                        if (tensor_name_is_read(ref->imp, name))
                                return onnx_node_error(ref, -CVOPT_E_UNSUPPORTED,
                                                       "output %zu ('%s') is a training output, not supported", i,
                                                       name);
                        continue;
                default:
                        break;
                }
                return onnx_node_error(ref, -CVOPT_E_FORMAT, "%zu outputs, expected 1", np->n_output);
        }
        return 0;
}

static int import_constant(const OnnxNodeRef *ref, const char *output) {
        const Onnx__NodeProto *np = ref->np;
        const Onnx__AttributeProto *ap;
        OnnxTensorData value = {};
        CvoptGraph *g = ref->imp->graph;
        size_t bytes;
        char what[256];
        int r;

        if (np->n_input != 0 || np->n_output != 1)
                return onnx_node_error(ref, -CVOPT_E_FORMAT, "Constant takes no inputs and has one output");
        if (np->n_attribute != 1)
                return onnx_node_error(ref, -CVOPT_E_FORMAT, "Constant needs exactly one value attribute, has %zu",
                                       np->n_attribute);
        ap = np->attribute[0];
        if (!ap->name || !ap->has_type)
                return onnx_node_error(ref, -CVOPT_E_FORMAT, "Constant value attribute has no name or type");

        if (streq(ap->name, "value") && ap->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR && ap->t) {
                snprintf(what, sizeof(what), "%s: node '%s' (op Constant): value", ref->imp->name, ref->label);
                r = onnx_tensor_decode(ap->t, what, &value);
                if (r < 0)
                        return r;
        } else if ((streq(ap->name, "value_float") && ap->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT) ||
                   (streq(ap->name, "value_int") && ap->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT)) {
                if (ref->imp->opset < 12)
                        return onnx_node_error(ref, -CVOPT_E_FORMAT, "attribute '%s' needs opset 12", ap->name);
                value.dtype = ap->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT ? CVOPT_DTYPE_FLOAT32
                                                                                       : CVOPT_DTYPE_INT64;
                value.ndim = 0;
                value.data = malloc(cvopt_dtype_size(value.dtype));
                if (!value.data)
                        return -ENOMEM;
                if (value.dtype == CVOPT_DTYPE_FLOAT32)
                        *(float *) value.data = ap->f;
                else
                        *(int64_t *) value.data = ap->i;
        } else if ((streq(ap->name, "value_floats") && ap->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS) ||
                   (streq(ap->name, "value_ints") && ap->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS)) {
                bool is_float = ap->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
                size_t count = is_float ? ap->n_floats : ap->n_ints;

                if (ref->imp->opset < 12)
                        return onnx_node_error(ref, -CVOPT_E_FORMAT, "attribute '%s' needs opset 12", ap->name);
                value.dtype = is_float ? CVOPT_DTYPE_FLOAT32 : CVOPT_DTYPE_INT64;
                value.ndim = 1;
                value.dims[0] = (int64_t) count;
                bytes = count * cvopt_dtype_size(value.dtype); /* cannot overflow: the arrays are in memory */
                value.data = malloc(MAX(bytes, 1u));
                if (!value.data)
                        return -ENOMEM;
                if (bytes > 0)
                        memcpy(value.data, is_float ? (const void *) ap->floats : (const void *) ap->ints, bytes);
        } else {
                char attr[128];

                snprintf(attr, sizeof(attr), "%s", ap->name);
                return onnx_node_error(ref, -CVOPT_E_UNSUPPORTED, "attribute '%s' not supported", attr);
        }

        r = cvopt_graph_add_constant(g, output, value.dtype, value.ndim, value.dims, value.data, true, NULL);
        if (r < 0) {
                free(value.data);
                return onnx_node_error(ref, r == -EEXIST ? -CVOPT_E_FORMAT : r, "output '%s' defined twice", output);
        }
        return 0;
}

/* Adds the tensor a node writes, with dtype and shape from value_info when
 * the model has it. Otherwise the dtype follows the op (Shape gives int64;
 * every other supported op gives its first input's type) and the shape is
 * left for shape inference. */
static int add_output_tensor(const OnnxNodeRef *ref, CvoptOp op, const char *name, CvoptDType first_input,
                             int32_t *ret_index) {
        const Onnx__ValueInfoProto *vi = onnx_find_value_info(ref->imp, name);
        CvoptDType dtype = op == CVOPT_OP_SHAPE ? CVOPT_DTYPE_INT64 : first_input;
        int64_t dims[CVOPT_MAX_DIMS];
        uint32_t ndim = UINT32_MAX;
        int r;

        if (vi && vi->type) {
                CvoptDType declared = CVOPT_DTYPE_UNDEFINED;

                r = onnx_value_info_shape(ref->imp, vi, &declared, &ndim, dims);
                if (r < 0)
                        return r;
                if (declared != CVOPT_DTYPE_UNDEFINED)
                        dtype = declared;
        }
        r = cvopt_graph_add_tensor(ref->imp->graph, name, dtype, ndim == UINT32_MAX ? 0 : ndim,
                                   ndim == UINT32_MAX ? NULL : dims, ret_index);
        if (r == -EEXIST)
                return onnx_node_error(ref, -CVOPT_E_FORMAT, "output '%s' defined twice", name);
        if (r < 0)
                return r;
        if (ndim == UINT32_MAX)
                ref->imp->graph->tensors[*ret_index].has_shape = false;
        return 0;
}

int onnx_import_node(OnnxImport *imp, const Onnx__NodeProto *np, size_t k) {
        CvoptGraph *g = imp->graph;
        int32_t inputs[255], output, index;
        char label[128];
        OnnxNodeRef ref = { .imp = imp, .np = np, .label = label };
        const char *domain = strempty(np->domain);
        const char *op_type = strempty(np->op_type);
        const OpInputs *counts;
        int op, r;

        if (np->name && np->name[0])
                snprintf(label, sizeof(label), "%s", np->name);
        else
                snprintf(label, sizeof(label), "#%zu", k);

        if (!streq(domain, "") && !streq(domain, "ai.onnx"))
                return onnx_node_error(&ref, -CVOPT_E_UNSUPPORTED, "not supported (domain '%s')", domain);
        op = cvopt_op_from_name(op_type);
        if (op < 0)
                return onnx_node_error(&ref, -CVOPT_E_UNSUPPORTED, "not supported");
        counts = &op_inputs[op];

        if (np->n_output < 1 || !np->output[0] || !np->output[0][0])
                return onnx_node_error(&ref, -CVOPT_E_FORMAT, "no output");
        if (op == CVOPT_OP_CONSTANT)
                return import_constant(&ref, np->output[0]);

        if (np->n_input < counts->min || np->n_input > counts->max)
                return onnx_node_error(&ref, -CVOPT_E_FORMAT, "%zu inputs, expected %u to %u", np->n_input,
                                       counts->min, counts->max);
        for (size_t i = 0; i < np->n_input; i++) {
                const char *name = strempty(np->input[i]);

                if (!name[0]) {
                        if (i < counts->min)
                                return onnx_node_error(&ref, -CVOPT_E_FORMAT, "required input %zu is empty", i);
                        inputs[i] = -1;
                        continue;
                }
                r = cvopt_graph_find_tensor(g, name);
                if (r < 0)
                        return onnx_node_error(&ref, -CVOPT_E_FORMAT,
                                               "input '%s' is not a graph input, initializer or output of an "
                                               "earlier node",
                                               name);
                inputs[i] = r;
        }
        r = check_extra_outputs(&ref, op);
        if (r < 0)
                return r;
        r = add_output_tensor(&ref, op, np->output[0], g->tensors[inputs[0]].dtype, &output);
        if (r < 0)
                return r;
        r = cvopt_graph_add_node(g, label, op, (uint32_t) np->n_input, inputs, 1, &output, &index);
        if (r < 0)
                return r;
        r = onnx_node_copy_attrs(&ref, op, &g->nodes[index]);
        if (r < 0)
                return r;
        return normalize(&ref, g, &g->nodes[index]);
}

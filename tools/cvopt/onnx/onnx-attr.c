/* SPDX-License-Identifier: MIT */
/* ONNX node attributes: each op's table of the attributes it may carry in
 * opsets 7 to 18, with their types, and the copy of checked attributes onto
 * IR nodes under their ONNX names. An attribute not in the table (unknown,
 * or from an opset that does not have it) fails: the executor would ignore
 * it, and ignoring an attribute can give a silently wrong answer. */
#include <stdarg.h>
#include <stdio.h>

#include "cvopt/errors.h"
#include "macro.h"
#include "onnx-internal.h"

/* Attribute values longer than this are not ONNX CNN parameters (the
 * longest, pads, has 2 per spatial dim); the cap keeps hostile files from
 * making us copy large arrays into every node. */
#define ONNX_MAX_ATTR_VALUES 1024
#define ONNX_MAX_ATTR_STRING 1024

typedef struct AttrSpec {
        const char *name;
        CvoptAttrType type;
        int since; /* first opset with this attribute, 0: all we support */
        int until; /* last opset with it, 0: still there in ONNX_OPSET_MAX */
} AttrSpec;

#define END { NULL, 0, 0, 0 }

static const AttrSpec conv_attrs[] = {
        { "auto_pad", CVOPT_ATTR_STRING, 0, 0 },    { "dilations", CVOPT_ATTR_INTS, 0, 0 },
        { "group", CVOPT_ATTR_INT, 0, 0 },          { "kernel_shape", CVOPT_ATTR_INTS, 0, 0 },
        { "pads", CVOPT_ATTR_INTS, 0, 0 },          { "strides", CVOPT_ATTR_INTS, 0, 0 },
        END,
};
static const AttrSpec gemm_attrs[] = {
        { "alpha", CVOPT_ATTR_FLOAT, 0, 0 }, { "beta", CVOPT_ATTR_FLOAT, 0, 0 },
        { "transA", CVOPT_ATTR_INT, 0, 0 },  { "transB", CVOPT_ATTR_INT, 0, 0 },
        END,
};
/* Clip's bounds became inputs in opset 11. */
static const AttrSpec clip_attrs[] = {
        { "min", CVOPT_ATTR_FLOAT, 0, 10 },
        { "max", CVOPT_ATTR_FLOAT, 0, 10 },
        END,
};
static const AttrSpec alpha_attrs[] = {
        { "alpha", CVOPT_ATTR_FLOAT, 0, 0 },
        END,
};
static const AttrSpec hard_sigmoid_attrs[] = {
        { "alpha", CVOPT_ATTR_FLOAT, 0, 0 },
        { "beta", CVOPT_ATTR_FLOAT, 0, 0 },
        END,
};
static const AttrSpec max_pool_attrs[] = {
        { "auto_pad", CVOPT_ATTR_STRING, 0, 0 },     { "ceil_mode", CVOPT_ATTR_INT, 10, 0 },
        { "dilations", CVOPT_ATTR_INTS, 10, 0 },     { "kernel_shape", CVOPT_ATTR_INTS, 0, 0 },
        { "pads", CVOPT_ATTR_INTS, 0, 0 },           { "storage_order", CVOPT_ATTR_INT, 8, 0 },
        { "strides", CVOPT_ATTR_INTS, 0, 0 },
        END,
};
static const AttrSpec average_pool_attrs[] = {
        { "auto_pad", CVOPT_ATTR_STRING, 0, 0 },       { "ceil_mode", CVOPT_ATTR_INT, 10, 0 },
        { "count_include_pad", CVOPT_ATTR_INT, 0, 0 }, { "kernel_shape", CVOPT_ATTR_INTS, 0, 0 },
        { "pads", CVOPT_ATTR_INTS, 0, 0 },             { "strides", CVOPT_ATTR_INTS, 0, 0 },
        END,
};
static const AttrSpec batch_norm_attrs[] = {
        { "epsilon", CVOPT_ATTR_FLOAT, 0, 0 },
        { "momentum", CVOPT_ATTR_FLOAT, 0, 0 },
        { "spatial", CVOPT_ATTR_INT, 0, 8 },
        { "training_mode", CVOPT_ATTR_INT, 14, 0 },
        END,
};
static const AttrSpec axis_attrs[] = {
        { "axis", CVOPT_ATTR_INT, 0, 0 },
        END,
};
static const AttrSpec reshape_attrs[] = {
        { "allowzero", CVOPT_ATTR_INT, 14, 0 },
        END,
};
static const AttrSpec transpose_attrs[] = {
        { "perm", CVOPT_ATTR_INTS, 0, 0 },
        END,
};
/* Squeeze/Unsqueeze's axes became an input in opset 13. */
static const AttrSpec axes_attrs[] = {
        { "axes", CVOPT_ATTR_INTS, 0, 12 },
        END,
};
static const AttrSpec dropout_attrs[] = {
        { "ratio", CVOPT_ATTR_FLOAT, 0, 11 },
        { "seed", CVOPT_ATTR_INT, 12, 0 },
        END,
};
static const AttrSpec shape_attrs[] = {
        { "start", CVOPT_ATTR_INT, 15, 0 },
        { "end", CVOPT_ATTR_INT, 15, 0 },
        END,
};
/* Slice's parameters became inputs in opset 10. */
static const AttrSpec slice_attrs[] = {
        { "starts", CVOPT_ATTR_INTS, 0, 9 },
        { "ends", CVOPT_ATTR_INTS, 0, 9 },
        { "axes", CVOPT_ATTR_INTS, 0, 9 },
        END,
};
/* The reductions' axes became an input in opset 18 (ReduceSum: 13), which
 * also brought noop_with_empty_axes. */
static const AttrSpec reduce_attrs[] = {
        { "axes", CVOPT_ATTR_INTS, 0, 17 },
        { "keepdims", CVOPT_ATTR_INT, 0, 0 },
        { "noop_with_empty_axes", CVOPT_ATTR_INT, 18, 0 },
        END,
};
static const AttrSpec reduce_sum_attrs[] = {
        { "axes", CVOPT_ATTR_INTS, 0, 12 },
        { "keepdims", CVOPT_ATTR_INT, 0, 0 },
        { "noop_with_empty_axes", CVOPT_ATTR_INT, 13, 0 },
        END,
};
static const AttrSpec no_attrs[] = { END };

static const AttrSpec *const op_attrs[_CVOPT_OP_MAX] = {
        [CVOPT_OP_CONV] = conv_attrs,
        [CVOPT_OP_GEMM] = gemm_attrs,
        [CVOPT_OP_MATMUL] = no_attrs,
        [CVOPT_OP_RELU] = no_attrs,
        [CVOPT_OP_CLIP] = clip_attrs,
        [CVOPT_OP_LEAKY_RELU] = alpha_attrs,
        [CVOPT_OP_PRELU] = no_attrs,
        [CVOPT_OP_SIGMOID] = no_attrs,
        [CVOPT_OP_HARD_SIGMOID] = hard_sigmoid_attrs,
        [CVOPT_OP_HARD_SWISH] = no_attrs,
        [CVOPT_OP_TANH] = no_attrs,
        [CVOPT_OP_MAX_POOL] = max_pool_attrs,
        [CVOPT_OP_AVERAGE_POOL] = average_pool_attrs,
        [CVOPT_OP_GLOBAL_AVERAGE_POOL] = no_attrs,
        [CVOPT_OP_GLOBAL_MAX_POOL] = no_attrs,
        [CVOPT_OP_BATCH_NORMALIZATION] = batch_norm_attrs,
        [CVOPT_OP_ADD] = no_attrs,
        [CVOPT_OP_SUB] = no_attrs,
        [CVOPT_OP_MUL] = no_attrs,
        [CVOPT_OP_DIV] = no_attrs,
        [CVOPT_OP_CONCAT] = axis_attrs,
        [CVOPT_OP_FLATTEN] = axis_attrs,
        [CVOPT_OP_RESHAPE] = reshape_attrs,
        [CVOPT_OP_TRANSPOSE] = transpose_attrs,
        [CVOPT_OP_SQUEEZE] = axes_attrs,
        [CVOPT_OP_UNSQUEEZE] = axes_attrs,
        [CVOPT_OP_SOFTMAX] = axis_attrs,
        [CVOPT_OP_DROPOUT] = dropout_attrs,
        [CVOPT_OP_IDENTITY] = no_attrs,
        [CVOPT_OP_CONSTANT] = no_attrs, /* its value attributes are read by onnx-nodes.c */
        [CVOPT_OP_SHAPE] = shape_attrs,
        [CVOPT_OP_GATHER] = axis_attrs,
        [CVOPT_OP_SLICE] = slice_attrs,
        [CVOPT_OP_REDUCE_MEAN] = reduce_attrs,
        [CVOPT_OP_REDUCE_MAX] = reduce_attrs,
        [CVOPT_OP_REDUCE_SUM] = reduce_sum_attrs,
};

static const char *attr_type_name(int type) {
        switch (type) {
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
                return "FLOAT";
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
                return "INT";
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
                return "STRING";
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
                return "TENSOR";
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH:
                return "GRAPH";
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
                return "FLOATS";
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
                return "INTS";
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS:
                return "STRINGS";
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS:
                return "TENSORS";
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS:
                return "GRAPHS";
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR:
                return "SPARSE_TENSOR";
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS:
                return "SPARSE_TENSORS";
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTO:
                return "TYPE_PROTO";
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTOS:
                return "TYPE_PROTOS";
        default:
                return "UNDEFINED";
        }
}

static const char *cvopt_attr_type_name(CvoptAttrType type) {
        switch (type) {
        case CVOPT_ATTR_INT:
                return "INT";
        case CVOPT_ATTR_FLOAT:
                return "FLOAT";
        case CVOPT_ATTR_STRING:
                return "STRING";
        case CVOPT_ATTR_INTS:
                return "INTS";
        case CVOPT_ATTR_FLOATS:
                return "FLOATS";
        default:
                return "?";
        }
}

int onnx_node_error(const OnnxNodeRef *ref, int err, const char *format, ...) {
        char message[384];
        va_list ap;

        va_start(ap, format);
        vsnprintf(message, sizeof(message), format, ap);
        va_end(ap);
        return cvopt_error_set(err, "%s: node '%s' (op %s): %s", ref->imp->name, ref->label,
                               strempty(ref->np->op_type), message);
}

/* "V" of "attribute 'X' = V not supported": the value, or its first
 * elements for lists. */
static void attr_value_str(const CvoptAttr *a, char *buf, size_t size) {
        size_t used = 0;

        buf[0] = 0;
        switch (a->type) {
        case CVOPT_ATTR_INT:
                snprintf(buf, size, "%lld", (long long) a->i);
                break;
        case CVOPT_ATTR_FLOAT:
                snprintf(buf, size, "%g", (double) a->f);
                break;
        case CVOPT_ATTR_STRING:
                snprintf(buf, size, "'%s'", a->s);
                break;
        case CVOPT_ATTR_INTS:
        case CVOPT_ATTR_FLOATS:
                used = (size_t) snprintf(buf, size, "[");
                for (uint32_t i = 0; i < a->count && i < 8 && used < size; i++) {
                        if (a->type == CVOPT_ATTR_INTS)
                                used += (size_t) snprintf(buf + used, size - used, "%s%lld", i ? ", " : "",
                                                          (long long) a->ints[i]);
                        else
                                used += (size_t) snprintf(buf + used, size - used, "%s%g", i ? ", " : "",
                                                          (double) a->floats[i]);
                }
                if (used < size)
                        snprintf(buf + used, size - used, "%s]", a->count > 8 ? ", ..." : "");
                break;
        }
}

int onnx_node_attr_unsupported(const OnnxNodeRef *ref, const CvoptAttr *a) {
        char value[128];

        attr_value_str(a, value, sizeof(value));
        return onnx_node_error(ref, -CVOPT_E_UNSUPPORTED, "attribute '%s' = %s not supported", a->name, value);
}

static const AttrSpec *attr_spec_find(const OnnxImport *imp, CvoptOp op, const char *name) {
        const AttrSpec *spec = op_attrs[op];

        for (; spec && spec->name; spec++) {
                if (!streq(spec->name, name))
                        continue;
                if (spec->since && imp->opset < spec->since)
                        return NULL;
                if (spec->until && imp->opset > spec->until)
                        return NULL;
                return spec;
        }
        return NULL;
}

/* The value of an ONNX attribute of any supported type, for the error
 * message when the attribute itself is not supported. */
static int attr_unknown_error(const OnnxNodeRef *ref, const Onnx__AttributeProto *ap) {
        CvoptAttr a = { .name = ap->name };

        switch (ap->type) {
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
                a.type = CVOPT_ATTR_INT;
                a.i = ap->i;
                break;
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
                a.type = CVOPT_ATTR_FLOAT;
                a.f = ap->f;
                break;
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
                a.type = CVOPT_ATTR_INTS;
                a.ints = ap->ints;
                a.count = (uint32_t) MIN(ap->n_ints, (size_t) UINT32_MAX);
                break;
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
                a.type = CVOPT_ATTR_FLOATS;
                a.floats = ap->floats;
                a.count = (uint32_t) MIN(ap->n_floats, (size_t) UINT32_MAX);
                break;
        default:
                return onnx_node_error(ref, -CVOPT_E_UNSUPPORTED, "attribute '%s' (type %s) not supported",
                                       ap->name, attr_type_name(ap->type));
        }
        return onnx_node_attr_unsupported(ref, &a);
}

static int attr_copy_one(const OnnxNodeRef *ref, const AttrSpec *spec, const Onnx__AttributeProto *ap,
                         CvoptNode *n) {
        _cleanup_free_ char *s = NULL;

        switch (ap->type) {
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
                if (spec->type != CVOPT_ATTR_INT)
                        break;
                return cvopt_node_set_int(n, spec->name, ap->i);
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
                if (spec->type != CVOPT_ATTR_FLOAT)
                        break;
                return cvopt_node_set_float(n, spec->name, ap->f);
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
                if (spec->type != CVOPT_ATTR_STRING)
                        break;
                if (ap->s.len > ONNX_MAX_ATTR_STRING || (ap->s.len > 0 && memchr(ap->s.data, 0, ap->s.len)))
                        return onnx_node_error(ref, -CVOPT_E_FORMAT, "attribute '%s': invalid string", spec->name);
                s = strndup(ap->s.len > 0 ? (const char *) ap->s.data : "", ap->s.len);
                if (!s)
                        return -ENOMEM;
                return cvopt_node_set_string(n, spec->name, s);
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
                if (spec->type != CVOPT_ATTR_INTS)
                        break;
                if (ap->n_ints > ONNX_MAX_ATTR_VALUES)
                        return onnx_node_error(ref, -CVOPT_E_FORMAT, "attribute '%s' has %zu values (at most %d)",
                                               spec->name, ap->n_ints, ONNX_MAX_ATTR_VALUES);
                return cvopt_node_set_ints(n, spec->name, (uint32_t) ap->n_ints, ap->ints);
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
                if (spec->type != CVOPT_ATTR_FLOATS)
                        break;
                if (ap->n_floats > ONNX_MAX_ATTR_VALUES)
                        return onnx_node_error(ref, -CVOPT_E_FORMAT, "attribute '%s' has %zu values (at most %d)",
                                               spec->name, ap->n_floats, ONNX_MAX_ATTR_VALUES);
                return cvopt_node_set_floats(n, spec->name, (uint32_t) ap->n_floats, ap->floats);
        default:
                break;
        }
        return onnx_node_error(ref, -CVOPT_E_UNSUPPORTED, "attribute '%s' of type %s not supported (expected %s)",
                               spec->name, attr_type_name(ap->type), cvopt_attr_type_name(spec->type));
}

int onnx_node_copy_attrs(const OnnxNodeRef *ref, CvoptOp op, CvoptNode *n) {
        const Onnx__NodeProto *np = ref->np;

        for (size_t i = 0; i < np->n_attribute; i++) {
                const Onnx__AttributeProto *ap = np->attribute[i];
                const AttrSpec *spec;
                int r;

                if (!ap->name || !ap->name[0])
                        return onnx_node_error(ref, -CVOPT_E_FORMAT, "attribute %zu has no name", i);
                if (ap->ref_attr_name && ap->ref_attr_name[0])
                        return onnx_node_error(ref, -CVOPT_E_UNSUPPORTED,
                                               "attribute '%s' refers to a function attribute, not supported",
                                               ap->name);
                if (!ap->has_type)
                        return onnx_node_error(ref, -CVOPT_E_FORMAT, "attribute '%s' has no type", ap->name);
                spec = attr_spec_find(ref->imp, op, ap->name);
                if (!spec)
                        return attr_unknown_error(ref, ap);
                /* Only known names get here, so a duplicate shows up within
                 * the first few attributes: this stays cheap on hostile
                 * nodes with many attributes. */
                for (size_t j = 0; j < i; j++)
                        if (streq(np->attribute[j]->name, ap->name))
                                return onnx_node_error(ref, -CVOPT_E_FORMAT, "attribute '%s' given twice",
                                                       ap->name);
                r = attr_copy_one(ref, spec, ap, n);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* SPDX-License-Identifier: MIT */
/* The reference operator table, the activation functions shared by the
 * activation ops and by fused Conv/Gemm/MatMul, and the small helpers every
 * ref-*.c file uses. */
#include <math.h>
#include <stdio.h>

#include "q-ops.h"
#include "ref-internal.h"

int ref_check_arity(const CvoptNode *n, uint32_t min_inputs, uint32_t max_inputs, uint32_t min_outputs,
                    uint32_t max_outputs) {
        if (n->n_inputs < min_inputs || n->n_inputs > max_inputs)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "%u inputs, expected %u to %u", n->n_inputs,
                                min_inputs, max_inputs);
        if (n->n_outputs < min_outputs || n->n_outputs > max_outputs)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "%u outputs, expected %u to %u", n->n_outputs,
                                min_outputs, max_outputs);
        for (uint32_t i = 0; i < min_outputs; i++)
                if (n->outputs[i] < 0)
                        return ref_fail(-CVOPT_E_UNSUPPORTED, n, "output %u is absent", i);
        return 0;
}

int ref_input_optional(const CvoptGraph *g, const CvoptNode *n, uint32_t slot, CvoptTensor **ret) {
        CvoptTensor *t;

        if (slot >= n->n_inputs || n->inputs[slot] < 0) {
                *ret = NULL;
                return 0;
        }
        if ((uint32_t) n->inputs[slot] >= g->n_tensors)
                return ref_fail(-CVOPT_E_FORMAT, n, "input %u: tensor index out of range", slot);
        t = &g->tensors[n->inputs[slot]];
        if (!t->has_shape)
                return ref_fail(-CVOPT_E_SHAPE, n, "input '%s' has no known shape", t->name);
        if (t->ndim > CVOPT_MAX_DIMS || cvopt_tensor_count(t) < 0)
                return ref_fail(-CVOPT_E_SHAPE, n, "input '%s' has an invalid shape", t->name);
        *ret = t;
        return 0;
}

int ref_input(const CvoptGraph *g, const CvoptNode *n, uint32_t slot, CvoptTensor **ret) {
        int r = ref_input_optional(g, n, slot, ret);

        if (r < 0)
                return r;
        if (!*ret)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "required input %u is absent", slot);
        return 0;
}

int ref_check_dtype(const CvoptNode *n, const CvoptTensor *t, CvoptDType dtype, const char *what) {
        if (t->dtype != dtype)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "%s '%s' is %s, expected %s", what, t->name,
                                cvopt_dtype_name(t->dtype), cvopt_dtype_name(dtype));
        return 0;
}

int ref_set_output(CvoptGraph *g, const CvoptNode *n, uint32_t slot, CvoptDType dtype, uint32_t ndim,
                   const int64_t *dims) {
        CvoptTensor *t = cvopt_node_output(g, n, slot);
        CvoptTensor copy;

        if (!t)
                return ref_fail(-CVOPT_E_FORMAT, n, "output %u is absent or out of range", slot);
        if (ndim > CVOPT_MAX_DIMS)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "output would have %u dims (max %d)", ndim,
                                CVOPT_MAX_DIMS);
        copy = (CvoptTensor) { .dtype = dtype, .ndim = ndim };
        if (ndim > 0)
                memcpy(copy.dims, dims, ndim * sizeof(int64_t));
        if (cvopt_tensor_count(&copy) < 0 || cvopt_tensor_bytes(&copy) == 0) {
                /* A zero-byte tensor is fine when it has no elements; one
                 * whose size overflows is not. */
                if (cvopt_tensor_count(&copy) != 0)
                        return ref_fail(-CVOPT_E_SHAPE, n, "output '%s' would be too large", t->name);
        }
        if (t->is_constant) {
                /* A constant output keeps its value; its shape must agree. */
                if (t->dtype != dtype || t->ndim != ndim ||
                    (ndim > 0 && memcmp(t->dims, dims, ndim * sizeof(int64_t)) != 0))
                        return ref_fail(-CVOPT_E_SHAPE, n, "constant output '%s' disagrees with the inferred shape",
                                        t->name);
                return 0;
        }
        t->dtype = dtype;
        t->ndim = ndim;
        memset(t->dims, 0, sizeof(t->dims));
        if (ndim > 0)
                memcpy(t->dims, dims, ndim * sizeof(int64_t));
        t->has_shape = true;
        return 0;
}

int ref_check_single_output(const CvoptNode *n) {
        for (uint32_t i = 1; i < n->n_outputs; i++)
                if (n->outputs[i] >= 0)
                        return ref_fail(-CVOPT_E_UNSUPPORTED, n, "optional output %u is not supported", i);
        return 0;
}

int ref_normalize_axis(const CvoptNode *n, int64_t axis, uint32_t rank, uint32_t *ret) {
        if (axis < -(int64_t) rank || axis >= (int64_t) rank)
                return ref_fail(-CVOPT_E_SHAPE, n, "axis %lld out of range for rank %u", (long long) axis, rank);
        *ret = (uint32_t) (axis < 0 ? axis + rank : axis);
        return 0;
}

int ref_attr_int(const CvoptNode *n, const char *name, int64_t default_value, int64_t *ret) {
        const CvoptAttr *a = cvopt_node_attr(n, name);

        if (!a) {
                *ret = default_value;
                return 0;
        }
        if (a->type != CVOPT_ATTR_INT)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "attribute '%s' is not an int", name);
        *ret = a->i;
        return 0;
}

int ref_attr_float(const CvoptNode *n, const char *name, float default_value, float *ret) {
        const CvoptAttr *a = cvopt_node_attr(n, name);

        if (!a) {
                *ret = default_value;
                return 0;
        }
        if (a->type != CVOPT_ATTR_FLOAT)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "attribute '%s' is not a float", name);
        *ret = a->f;
        return 0;
}

int ref_attr_string(const CvoptNode *n, const char *name, const char *default_value, const char **ret) {
        const CvoptAttr *a = cvopt_node_attr(n, name);

        if (!a) {
                *ret = default_value;
                return 0;
        }
        if (a->type != CVOPT_ATTR_STRING || !a->s)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "attribute '%s' is not a string", name);
        *ret = a->s;
        return 0;
}

int ref_attr_ints(const CvoptNode *n, const char *name, uint32_t max, int64_t *values, bool *ret_present) {
        const CvoptAttr *a = cvopt_node_attr(n, name);

        if (ret_present)
                *ret_present = a != NULL;
        if (!a)
                return 0;
        if (a->type != CVOPT_ATTR_INTS)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "attribute '%s' is not a list of ints", name);
        if (a->count > max)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "attribute '%s' has %u values (max %u)", name, a->count,
                                max);
        if (a->count > 0)
                memcpy(values, a->ints, a->count * sizeof(int64_t));
        return (int) a->count;
}

int ref_broadcast_shape(const CvoptNode *n, const CvoptTensor *a, const CvoptTensor *b, uint32_t *ret_ndim,
                        int64_t *dims) {
        uint32_t ndim = MAX(a->ndim, b->ndim);

        for (uint32_t i = 0; i < ndim; i++) {
                /* Align from the right, as numpy does. */
                int64_t da = i + a->ndim >= ndim ? a->dims[i + a->ndim - ndim] : 1;
                int64_t db = i + b->ndim >= ndim ? b->dims[i + b->ndim - ndim] : 1;

                if (da != db && da != 1 && db != 1)
                        return ref_fail(-CVOPT_E_SHAPE, n, "cannot broadcast '%s' and '%s' (dim %u: %lld vs %lld)",
                                        a->name, b->name, i, (long long) da, (long long) db);
                dims[i] = da == 1 ? db : da;
        }
        *ret_ndim = ndim;
        return 0;
}

size_t ref_count(const CvoptTensor *t) {
        int64_t count = cvopt_tensor_count(t);

        return count < 0 ? 0 : (size_t) count;
}

size_t ref_dims_product(const int64_t *dims, uint32_t begin, uint32_t end) {
        size_t p = 1;

        for (uint32_t i = begin; i < end; i++)
                p *= (size_t) dims[i];
        return p;
}

int ref_check_output_shape(const CvoptNode *n, const CvoptTensor *out, CvoptDType dtype, uint32_t ndim,
                           const int64_t *dims) {
        if (out->dtype != dtype || out->ndim != ndim ||
            (ndim > 0 && memcmp(out->dims, dims, ndim * sizeof(int64_t)) != 0))
                return ref_fail(-CVOPT_E_SHAPE, n, "output '%s' does not have the inferred shape",
                                strempty(out->name));
        return 0;
}

/* Activations */

static const struct {
        const char *name;
        RefActivationKind kind;
} activation_names[] = {
        { "Relu", REF_ACTIVATION_RELU },           { "Clip", REF_ACTIVATION_CLIP },
        { "LeakyRelu", REF_ACTIVATION_LEAKY_RELU }, { "HardSwish", REF_ACTIVATION_HARD_SWISH },
        { "Sigmoid", REF_ACTIVATION_SIGMOID },     { "HardSigmoid", REF_ACTIVATION_HARD_SIGMOID },
        { "Tanh", REF_ACTIVATION_TANH },
};

int ref_fused_activation_parse(const CvoptNode *n, RefActivation *ret) {
        RefActivation act = { .kind = REF_ACTIVATION_NONE, .min = -INFINITY, .max = INFINITY };
        const char *name;
        float alpha_default = 0.01f;
        size_t i;
        int r;

        r = ref_attr_string(n, "activation", NULL, &name);
        if (r < 0)
                return r;
        if (!name) {
                *ret = act;
                return 0;
        }
        for (i = 0; i < ELEMENTSOF(activation_names); i++)
                if (streq(activation_names[i].name, name))
                        break;
        if (i == ELEMENTSOF(activation_names))
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "fused activation '%s' is not supported", name);
        act.kind = activation_names[i].kind;
        if (act.kind == REF_ACTIVATION_HARD_SIGMOID)
                alpha_default = 0.2f;
        r = ref_attr_float(n, "activation_min", -INFINITY, &act.min);
        if (r >= 0)
                r = ref_attr_float(n, "activation_max", INFINITY, &act.max);
        if (r >= 0)
                r = ref_attr_float(n, "activation_alpha", alpha_default, &act.alpha);
        if (r >= 0)
                r = ref_attr_float(n, "activation_beta", 0.5f, &act.beta);
        if (r < 0)
                return r;
        *ret = act;
        return 0;
}

static float sigmoid(float x) {
        /* Split on the sign so that exp() never overflows to inf/inf. */
        if (x >= 0)
                return 1.0f / (1.0f + expf(-x));
        float e = expf(x);
        return e / (1.0f + e);
}

void ref_activation_apply(const RefActivation *act, float *values, size_t count) {
        /* Parameters in locals: values[] may not alias them, but the
         * compiler cannot know that of act's fields. */
        const float min = act->min, max = act->max, alpha = act->alpha, beta = act->beta;

        switch (act->kind) {
        case REF_ACTIVATION_NONE:
                break;
        case REF_ACTIVATION_RELU:
                /* Written so that NaN stays NaN, as in ONNX's max(x, 0). */
                REF_BLOCKED_LOOP(i, count, values[i] = values[i] < 0 ? 0 : values[i]);
                break;
        case REF_ACTIVATION_CLIP:
                REF_BLOCKED_LOOP(i, count, {
                        float v = values[i];
                        v = v < min ? min : v;
                        values[i] = v > max ? max : v;
                });
                break;
        case REF_ACTIVATION_LEAKY_RELU:
                REF_BLOCKED_LOOP(i, count, values[i] = values[i] < 0 ? values[i] * alpha : values[i]);
                break;
        case REF_ACTIVATION_HARD_SWISH:
                /* ONNX: x * max(0, min(1, x / 6 + 0.5)). */
                REF_BLOCKED_LOOP(i, count, {
                        float v = values[i], h = v * (1.0f / 6.0f) + 0.5f;
                        h = h < 0 ? 0 : h > 1 ? 1 : h;
                        values[i] = v * h;
                });
                break;
        case REF_ACTIVATION_SIGMOID:
                for (size_t i = 0; i < count; i++)
                        values[i] = sigmoid(values[i]);
                break;
        case REF_ACTIVATION_HARD_SIGMOID:
                REF_BLOCKED_LOOP(i, count, {
                        float h = alpha * values[i] + beta;
                        values[i] = h < 0 ? 0 : h > 1 ? 1 : h;
                });
                break;
        case REF_ACTIVATION_TANH:
                for (size_t i = 0; i < count; i++)
                        values[i] = tanhf(values[i]);
                break;
        }
}

void ref_apply_fused_activation(const CvoptNode *n, float *values, size_t count) {
        RefActivation act;

        /* Infer rejects unknown activations, so a node that passed it always
         * parses here; a node that did not is never run. */
        if (ref_fused_activation_parse(n, &act) < 0)
                return;
        ref_activation_apply(&act, values, count);
}

/* The table */

#define REF_OP(name) { ref_##name##_infer, ref_##name##_run }

static const RefOp ref_ops[_CVOPT_OP_MAX] = {
        [CVOPT_OP_CONV] = REF_OP(conv),
        [CVOPT_OP_GEMM] = REF_OP(gemm),
        [CVOPT_OP_MATMUL] = REF_OP(matmul),
        [CVOPT_OP_RELU] = REF_OP(unary),
        [CVOPT_OP_CLIP] = REF_OP(unary),
        [CVOPT_OP_LEAKY_RELU] = REF_OP(unary),
        [CVOPT_OP_PRELU] = REF_OP(prelu),
        [CVOPT_OP_SIGMOID] = REF_OP(unary),
        [CVOPT_OP_HARD_SIGMOID] = REF_OP(unary),
        [CVOPT_OP_HARD_SWISH] = REF_OP(unary),
        [CVOPT_OP_TANH] = REF_OP(unary),
        [CVOPT_OP_MAX_POOL] = REF_OP(pool),
        [CVOPT_OP_AVERAGE_POOL] = REF_OP(pool),
        [CVOPT_OP_GLOBAL_AVERAGE_POOL] = REF_OP(global_pool),
        [CVOPT_OP_GLOBAL_MAX_POOL] = REF_OP(global_pool),
        [CVOPT_OP_BATCH_NORMALIZATION] = REF_OP(batch_norm),
        [CVOPT_OP_ADD] = REF_OP(binary),
        [CVOPT_OP_SUB] = REF_OP(binary),
        [CVOPT_OP_MUL] = REF_OP(binary),
        [CVOPT_OP_DIV] = REF_OP(binary),
        [CVOPT_OP_CONCAT] = REF_OP(concat),
        [CVOPT_OP_FLATTEN] = REF_OP(flatten),
        [CVOPT_OP_RESHAPE] = REF_OP(reshape),
        [CVOPT_OP_TRANSPOSE] = REF_OP(transpose),
        [CVOPT_OP_SQUEEZE] = REF_OP(squeeze),
        [CVOPT_OP_UNSQUEEZE] = REF_OP(unsqueeze),
        [CVOPT_OP_SOFTMAX] = REF_OP(softmax),
        [CVOPT_OP_DROPOUT] = REF_OP(copy),
        [CVOPT_OP_IDENTITY] = REF_OP(copy),
        [CVOPT_OP_CONSTANT] = REF_OP(constant),
        [CVOPT_OP_SHAPE] = REF_OP(shape),
        [CVOPT_OP_GATHER] = REF_OP(gather),
        [CVOPT_OP_SLICE] = REF_OP(slice),
        [CVOPT_OP_REDUCE_MEAN] = REF_OP(reduce),
        [CVOPT_OP_REDUCE_MAX] = REF_OP(reduce),
        [CVOPT_OP_REDUCE_SUM] = REF_OP(reduce),
};

const RefOp *ref_op_lookup(CvoptOp op) {
        /* The int8 operators live in q-*.c with the same interface. */
        if (cvopt_op_is_quantized(op))
                return q_op_lookup(op);
        if ((unsigned) op >= _CVOPT_OP_MAX || !ref_ops[op].infer)
                return NULL;
        return &ref_ops[op];
}

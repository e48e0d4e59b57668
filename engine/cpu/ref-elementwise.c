/* SPDX-License-Identifier: MIT */
/* Element-wise operators: the activations (Relu, Clip, LeakyRelu, Sigmoid,
 * HardSigmoid, HardSwish, Tanh), PRelu, and the broadcasting arithmetic
 * Add/Sub/Mul/Div on float32, int32 and int64 (shape computations run on
 * int64). */
#include <math.h>

#include "ref-internal.h"

/* Unary activations */

static int unary_activation(const CvoptNode *n, RefActivation *ret) {
        RefActivation act = { .min = -INFINITY, .max = INFINITY };
        int r = 0;

        switch (n->op) {
        case CVOPT_OP_RELU:
                act.kind = REF_ACTIVATION_RELU;
                break;
        case CVOPT_OP_CLIP:
                /* The importer turns Clip's min/max inputs (opset >= 11)
                 * into attributes; absent means unbounded. */
                act.kind = REF_ACTIVATION_CLIP;
                r = ref_attr_float(n, "min", -INFINITY, &act.min);
                if (r >= 0)
                        r = ref_attr_float(n, "max", INFINITY, &act.max);
                break;
        case CVOPT_OP_LEAKY_RELU:
                act.kind = REF_ACTIVATION_LEAKY_RELU;
                r = ref_attr_float(n, "alpha", 0.01f, &act.alpha);
                break;
        case CVOPT_OP_SIGMOID:
                act.kind = REF_ACTIVATION_SIGMOID;
                break;
        case CVOPT_OP_HARD_SIGMOID:
                act.kind = REF_ACTIVATION_HARD_SIGMOID;
                r = ref_attr_float(n, "alpha", 0.2f, &act.alpha);
                if (r >= 0)
                        r = ref_attr_float(n, "beta", 0.5f, &act.beta);
                break;
        case CVOPT_OP_HARD_SWISH:
                act.kind = REF_ACTIVATION_HARD_SWISH;
                break;
        case CVOPT_OP_TANH:
                act.kind = REF_ACTIVATION_TANH;
                break;
        default:
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "not an activation");
        }
        if (r < 0)
                return r;
        *ret = act;
        return 0;
}

int ref_unary_infer(CvoptGraph *g, CvoptNode *n) {
        RefActivation act;
        CvoptTensor *x;
        int r;

        r = ref_check_arity(n, 1, 1, 1, 1);
        if (r < 0)
                return r;
        r = unary_activation(n, &act);
        if (r < 0)
                return r;
        r = ref_input(g, n, 0, &x);
        if (r < 0)
                return r;
        r = ref_check_dtype(n, x, CVOPT_DTYPE_FLOAT32, "input");
        if (r < 0)
                return r;
        return ref_set_output(g, n, 0, x->dtype, x->ndim, x->dims);
}

int ref_unary_run(const CvoptNode *n, const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        const CvoptTensor *x = inputs[0];
        CvoptTensor *y = outputs[0];
        RefActivation act;
        size_t count = ref_count(x);
        int r;

        r = unary_activation(n, &act);
        if (r < 0)
                return r;
        r = ref_check_output_shape(n, y, CVOPT_DTYPE_FLOAT32, x->ndim, x->dims);
        if (r < 0)
                return r;
        if (count > 0 && y->data != x->data)
                memcpy(y->data, x->data, count * sizeof(float));
        ref_activation_apply(&act, y->data, count);
        return 0;
}

/* Broadcasting binary operators */

typedef enum BinaryKind {
        BINARY_ADD,
        BINARY_SUB,
        BINARY_MUL,
        BINARY_DIV,
        BINARY_PRELU,
} BinaryKind;

/* Strides of a and b over the output's dims, 0 where an input is
 * broadcast along a dim. */
typedef struct Broadcast {
        uint32_t ndim;
        int64_t dims[CVOPT_MAX_DIMS];
        size_t stride_a[CVOPT_MAX_DIMS], stride_b[CVOPT_MAX_DIMS];
} Broadcast;

static void broadcast_strides(const CvoptTensor *t, uint32_t ndim, const int64_t *dims, size_t *strides) {
        size_t stride = 1;

        for (uint32_t i = ndim; i-- > 0;) {
                uint32_t offset = ndim - t->ndim;

                if (i < offset || t->dims[i - offset] == 1 || dims[i] == 1) {
                        strides[i] = 0;
                        if (i >= offset)
                                stride *= (size_t) t->dims[i - offset];
                } else {
                        strides[i] = stride;
                        stride *= (size_t) t->dims[i - offset];
                }
        }
}

static void broadcast_init(Broadcast *bc, const CvoptTensor *a, const CvoptTensor *b, const CvoptTensor *out) {
        bc->ndim = out->ndim;
        memcpy(bc->dims, out->dims, sizeof(bc->dims));
        broadcast_strides(a, out->ndim, out->dims, bc->stride_a);
        broadcast_strides(b, out->ndim, out->dims, bc->stride_b);
}

/* One inner row of length count with strides sa/sb (0 or 1 in practice).
 * The two common stride patterns run in REF_BLOCK-wide blocks that gcc -O2
 * vectorizes. Each block first loads its operands into locals: the output
 * may be one of the inputs (an executor computing a residual Add in place),
 * and with the loads ahead of the stores that stays correct without
 * restrict pointers or runtime alias checks. */
#define BINARY_ROW(T, OPEXPR)                                                                         \
        do {                                                                                          \
                const T *pa = va;                                                                     \
                const T *pb = vb;                                                                     \
                T *po = vo;                                                                           \
                size_t start = 0;                                                                     \
                if (sa == 1 && (sb == 1 || sb == 0)) {                                                \
                        for (; start + REF_BLOCK <= count; start += REF_BLOCK) {                      \
                                T xs[REF_BLOCK], ys[REF_BLOCK];                                       \
                                for (size_t j = 0; j < REF_BLOCK; j++) {                              \
                                        xs[j] = pa[start + j];                                        \
                                        ys[j] = sb ? pb[start + j] : pb[0];                           \
                                }                                                                     \
                                for (size_t j = 0; j < REF_BLOCK; j++) {                              \
                                        T x = xs[j], y = ys[j];                                       \
                                        po[start + j] = (OPEXPR);                                     \
                                }                                                                     \
                        }                                                                             \
                }                                                                                     \
                for (size_t i = start; i < count; i++) {                                              \
                        T x = pa[i * sa], y = pb[i * sb];                                             \
                        po[i] = (OPEXPR);                                                             \
                }                                                                                     \
        } while (0)

static void row_float(BinaryKind kind, const void *va, size_t sa, const void *vb, size_t sb, void *vo,
                      size_t count) {
        switch (kind) {
        case BINARY_ADD:
                BINARY_ROW(float, x + y);
                break;
        case BINARY_SUB:
                BINARY_ROW(float, x - y);
                break;
        case BINARY_MUL:
                BINARY_ROW(float, x * y);
                break;
        case BINARY_DIV:
                BINARY_ROW(float, x / y);
                break;
        case BINARY_PRELU:
                BINARY_ROW(float, x < 0 ? x * y : x);
                break;
        }
}

/* Integer arithmetic wraps (computed unsigned) instead of being undefined
 * on overflow; division by zero and INT_MIN / -1 are refused before the
 * loop runs. Division truncates toward zero, as ONNX's integer Div does. */
#define INT_ROW_FUNC(name, T, UT)                                                                     \
        static void name(BinaryKind kind, const void *va, size_t sa, const void *vb, size_t sb, void *vo, \
                         size_t count) {                                                              \
                switch (kind) {                                                                       \
                case BINARY_ADD:                                                                      \
                        BINARY_ROW(T, (T) ((UT) x + (UT) y));                                         \
                        break;                                                                        \
                case BINARY_SUB:                                                                      \
                        BINARY_ROW(T, (T) ((UT) x - (UT) y));                                         \
                        break;                                                                        \
                case BINARY_MUL:                                                                      \
                        BINARY_ROW(T, (T) ((UT) x * (UT) y));                                         \
                        break;                                                                        \
                case BINARY_DIV:                                                                      \
                        BINARY_ROW(T, x / y);                                                         \
                        break;                                                                        \
                case BINARY_PRELU:                                                                    \
                        break;                                                                        \
                }                                                                                     \
        }

INT_ROW_FUNC(row_int64, int64_t, uint64_t)
INT_ROW_FUNC(row_int32, int32_t, uint32_t)

typedef void (*RowFunc)(BinaryKind kind, const void *va, size_t sa, const void *vb, size_t sb, void *vo,
                        size_t count);

static int binary_kind(const CvoptNode *n, BinaryKind *ret) {
        switch (n->op) {
        case CVOPT_OP_ADD:
                *ret = BINARY_ADD;
                return 0;
        case CVOPT_OP_SUB:
                *ret = BINARY_SUB;
                return 0;
        case CVOPT_OP_MUL:
                *ret = BINARY_MUL;
                return 0;
        case CVOPT_OP_DIV:
                *ret = BINARY_DIV;
                return 0;
        case CVOPT_OP_PRELU:
                *ret = BINARY_PRELU;
                return 0;
        default:
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "not a binary operator");
        }
}

static int check_int_divisors(const CvoptNode *n, const CvoptTensor *a, const CvoptTensor *b) {
        size_t count_b = ref_count(b), count_a = ref_count(a);
        bool has_min = false;

        for (size_t i = 0; i < count_a; i++) {
                if (a->dtype == CVOPT_DTYPE_INT64 ? ((const int64_t *) a->data)[i] == INT64_MIN
                                                  : ((const int32_t *) a->data)[i] == INT32_MIN) {
                        has_min = true;
                        break;
                }
        }
        for (size_t i = 0; i < count_b; i++) {
                int64_t v = b->dtype == CVOPT_DTYPE_INT64 ? ((const int64_t *) b->data)[i]
                                                          : ((const int32_t *) b->data)[i];
                if (v == 0)
                        return ref_fail(-EDOM, n, "integer division by zero");
                /* Conservative: refuses INT_MIN / -1 even where the two do
                 * not meet after broadcasting; shape code never divides so. */
                if (v == -1 && has_min)
                        return ref_fail(-EDOM, n, "integer division overflows");
        }
        return 0;
}

static int binary_apply(const CvoptNode *n, BinaryKind kind, const CvoptTensor *a, const CvoptTensor *b,
                        CvoptTensor *out) {
        size_t elem = cvopt_dtype_size(out->dtype), inner, outer, index[CVOPT_MAX_DIMS] = { 0 };
        Broadcast bc;
        RowFunc row;

        switch (out->dtype) {
        case CVOPT_DTYPE_FLOAT32:
                row = row_float;
                break;
        case CVOPT_DTYPE_INT64:
                row = row_int64;
                break;
        case CVOPT_DTYPE_INT32:
                row = row_int32;
                break;
        default:
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "dtype %s", cvopt_dtype_name(out->dtype));
        }
        if (kind == BINARY_DIV && out->dtype != CVOPT_DTYPE_FLOAT32) {
                int r = check_int_divisors(n, a, b);
                if (r < 0)
                        return r;
        }
        if (ref_count(out) == 0)
                return 0;
        if (out->ndim == 0) {
                row(kind, a->data, 0, b->data, 0, out->data, 1);
                return 0;
        }
        if (ref_count(a) == ref_count(out) && ref_count(b) == ref_count(out)) {
                /* Same shapes (up to leading 1s): one flat row. */
                row(kind, a->data, 1, b->data, 1, out->data, ref_count(out));
                return 0;
        }
        if (ref_count(b) == 1 && ref_count(a) == ref_count(out)) {
                row(kind, a->data, 1, b->data, 0, out->data, ref_count(out));
                return 0;
        }
        broadcast_init(&bc, a, b, out);
        inner = (size_t) bc.dims[bc.ndim - 1];
        outer = ref_dims_product(bc.dims, 0, bc.ndim - 1);
        for (size_t o = 0; o < outer; o++) {
                size_t offset_a = 0, offset_b = 0;

                for (uint32_t d = 0; d + 1 < bc.ndim; d++) {
                        offset_a += index[d] * bc.stride_a[d];
                        offset_b += index[d] * bc.stride_b[d];
                }
                if (bc.stride_a[bc.ndim - 1] == 0 && bc.stride_b[bc.ndim - 1] == 1 &&
                    (kind == BINARY_ADD || kind == BINARY_MUL))
                        /* Addition and multiplication commute: put the broadcast operand second
                         * to reach the vectorized (1, 0) loop. */
                        row(kind, (const char *) b->data + offset_b * elem, 1, (const char *) a->data + offset_a * elem,
                            0, (char *) out->data + o * inner * elem, inner);
                else
                        row(kind, (const char *) a->data + offset_a * elem, bc.stride_a[bc.ndim - 1],
                            (const char *) b->data + offset_b * elem, bc.stride_b[bc.ndim - 1],
                            (char *) out->data + o * inner * elem, inner);
                for (uint32_t d = bc.ndim - 1; d-- > 0;) {
                        if (++index[d] < (size_t) bc.dims[d])
                                break;
                        index[d] = 0;
                }
        }
        return 0;
}

int ref_binary_infer(CvoptGraph *g, CvoptNode *n) {
        int64_t dims[CVOPT_MAX_DIMS];
        CvoptTensor *a, *b;
        BinaryKind kind = BINARY_ADD;
        uint32_t ndim;
        int r;

        r = ref_check_arity(n, 2, 2, 1, 1);
        if (r < 0)
                return r;
        r = binary_kind(n, &kind);
        if (r < 0)
                return r;
        r = ref_input(g, n, 0, &a);
        if (r < 0)
                return r;
        r = ref_input(g, n, 1, &b);
        if (r < 0)
                return r;
        if (a->dtype != CVOPT_DTYPE_FLOAT32 && a->dtype != CVOPT_DTYPE_INT64 && a->dtype != CVOPT_DTYPE_INT32)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "dtype %s is not supported", cvopt_dtype_name(a->dtype));
        r = ref_check_dtype(n, b, a->dtype, "input");
        if (r < 0)
                return r;
        r = ref_broadcast_shape(n, a, b, &ndim, dims);
        if (r < 0)
                return r;
        return ref_set_output(g, n, 0, a->dtype, ndim, dims);
}

static int binary_run_checked(const CvoptNode *n, BinaryKind kind, const CvoptTensor *a, const CvoptTensor *b,
                              CvoptTensor *out) {
        int64_t dims[CVOPT_MAX_DIMS];
        uint32_t ndim;
        int r;

        if (a->dtype != b->dtype)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "inputs have different dtypes");
        r = ref_broadcast_shape(n, a, b, &ndim, dims);
        if (r < 0)
                return r;
        r = ref_check_output_shape(n, out, a->dtype, ndim, dims);
        if (r < 0)
                return r;
        return binary_apply(n, kind, a, b, out);
}

int ref_binary_run(const CvoptNode *n, const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        BinaryKind kind = BINARY_ADD;
        int r = binary_kind(n, &kind);

        if (r < 0)
                return r;
        return binary_run_checked(n, kind, inputs[0], inputs[1], outputs[0]);
}

/* PRelu: slope broadcasts to X (unidirectionally), the output has X's shape. */

int ref_prelu_infer(CvoptGraph *g, CvoptNode *n) {
        int64_t dims[CVOPT_MAX_DIMS];
        CvoptTensor *x, *slope;
        uint32_t ndim;
        int r;

        r = ref_check_arity(n, 2, 2, 1, 1);
        if (r < 0)
                return r;
        r = ref_input(g, n, 0, &x);
        if (r < 0)
                return r;
        r = ref_input(g, n, 1, &slope);
        if (r < 0)
                return r;
        r = ref_check_dtype(n, x, CVOPT_DTYPE_FLOAT32, "input");
        if (r < 0)
                return r;
        r = ref_check_dtype(n, slope, CVOPT_DTYPE_FLOAT32, "slope");
        if (r < 0)
                return r;
        r = ref_broadcast_shape(n, x, slope, &ndim, dims);
        if (r < 0)
                return r;
        if (ndim != x->ndim || memcmp(dims, x->dims, ndim * sizeof(int64_t)) != 0)
                return ref_fail(-CVOPT_E_SHAPE, n, "slope '%s' does not broadcast to the input's shape",
                                slope->name);
        return ref_set_output(g, n, 0, x->dtype, x->ndim, x->dims);
}

int ref_prelu_run(const CvoptNode *n, const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        return binary_run_checked(n, BINARY_PRELU, inputs[0], inputs[1], outputs[0]);
}

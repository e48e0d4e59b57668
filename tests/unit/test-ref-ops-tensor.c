/* SPDX-License-Identifier: MIT */
/* The light reference operators (element-wise, normalization, shape and
 * data movement) against hand-computed values. */
#include <float.h>

#include "ref-test-util.h"

static void test_every_op_has_an_entry(void **state) {
        (void) state;

        for (int op = 0; op < _CVOPT_OP_MAX; op++) {
                const RefOp *r = ref_op_lookup(op);

                assert_non_null(r);
                assert_non_null(r->infer);
                assert_non_null(r->run);
        }
        assert_null(ref_op_lookup(_CVOPT_OP_MAX));
        assert_null(ref_op_lookup(-1));
}

/* Runs a one-input op on x (1-D) and returns the output tensor. */
static CvoptTensor *run_unary(CvoptGraph *g, CvoptOp op, size_t count, const float *x, const char *attr1,
                              float value1, const char *attr2, float value2) {
        int32_t in = add_floats(g, "x", 1, (int64_t[]) { (int64_t) count }, x), y = add_output(g, "y");
        CvoptNode *n = add_node(g, "act", op, 1, &in, y);

        if (attr1)
                assert_int_equal(cvopt_node_set_float(n, attr1, value1), 0);
        if (attr2)
                assert_int_equal(cvopt_node_set_float(n, attr2, value2), 0);
        assert_int_equal(eval_last(g), 0);
        assert_shape(&g->tensors[y], 1, (int64_t[]) { (int64_t) count });
        return &g->tensors[y];
}

static void test_activations(void **state) {
        const float x[6] = { -100, -3, -0.5f, 0, 1, 4 };
        (void) state;

#define CHECK(op, a1, v1, a2, v2, ...)                                                                   \
        do {                                                                                             \
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;                                       \
                assert_int_equal(cvopt_graph_new(&g), 0);                                                \
                assert_floats_near(run_unary(g, op, 6, x, a1, v1, a2, v2)->data, FLOATS(__VA_ARGS__), 6, \
                                   1e-6f);                                                               \
        } while (0)

        CHECK(CVOPT_OP_RELU, NULL, 0, NULL, 0, 0, 0, 0, 0, 1, 4);
        CHECK(CVOPT_OP_CLIP, "min", -1, "max", 2, -1, -1, -0.5f, 0, 1, 2);
        CHECK(CVOPT_OP_CLIP, "max", 0.5f, NULL, 0, -100, -3, -0.5f, 0, 0.5f, 0.5f); /* no min: unbounded */
        CHECK(CVOPT_OP_CLIP, NULL, 0, NULL, 0, -100, -3, -0.5f, 0, 1, 4);
        CHECK(CVOPT_OP_LEAKY_RELU, NULL, 0, NULL, 0, -1, -0.03f, -0.005f, 0, 1, 4); /* alpha 0.01 */
        CHECK(CVOPT_OP_LEAKY_RELU, "alpha", 0.5f, NULL, 0, -50, -1.5f, -0.25f, 0, 1, 4);
        CHECK(CVOPT_OP_SIGMOID, NULL, 0, NULL, 0, 3.7200760e-44f, 0.047425873f, 0.37754067f, 0.5f, 0.7310586f,
              0.98201376f);
        CHECK(CVOPT_OP_HARD_SIGMOID, NULL, 0, NULL, 0, 0, 0, 0.4f, 0.5f, 0.7f, 1); /* 0.2x + 0.5 */
        CHECK(CVOPT_OP_HARD_SIGMOID, "alpha", 0.5f, "beta", 0.25f, 0, 0, 0, 0.25f, 0.75f, 1);
        CHECK(CVOPT_OP_HARD_SWISH, NULL, 0, NULL, 0, 0, 0, -0.5f * (2.5f / 6), 0, 4.0f / 6, 4);
        CHECK(CVOPT_OP_TANH, NULL, 0, NULL, 0, -1, -0.9950548f, -0.46211716f, 0, 0.7615942f, 0.9993293f);
#undef CHECK
}

static void test_relu_keeps_nan(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        float x[2] = { NAN, -1 };
        CvoptTensor *y;
        (void) state;

        assert_int_equal(cvopt_graph_new(&g), 0);
        y = run_unary(g, CVOPT_OP_RELU, 2, x, NULL, 0, NULL, 0);
        assert_true(isnan(((float *) y->data)[0]));
        assert_true(((float *) y->data)[1] == 0);
}

static void test_prelu(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        float x[8] = { -1, 2, -3, 4, -1, -2, 3, 4 }, slope[2] = { 0.5f, 2 };
        int32_t ins[2], y;
        (void) state;

        assert_int_equal(cvopt_graph_new(&g), 0);
        ins[0] = add_floats(g, "x", 4, DIMS(1, 2, 2, 2), x);
        ins[1] = add_floats(g, "slope", 3, DIMS(2, 1, 1), slope);
        y = add_output(g, "y");
        add_node(g, "prelu", CVOPT_OP_PRELU, 2, ins, y);
        assert_int_equal(eval_last(g), 0);
        assert_shape(&g->tensors[y], 4, DIMS(1, 2, 2, 2));
        assert_floats_near(g->tensors[y].data, FLOATS(-0.5f, 2, -1.5f, 4, -2, -4, 3, 4), 8, 0);
        /* A slope that would enlarge X is refused. */
        ins[1] = add_floats(g, "slope2", 4, DIMS(2, 2, 1, 1), FLOATS(1, 2, 3, 4));
        add_node(g, "prelu_bad", CVOPT_OP_PRELU, 2, ins, add_output(g, "y2"));
        assert_error_names_node(eval_last(g), -CVOPT_E_SHAPE, "prelu_bad");
}

/* Binary broadcasting */

static CvoptTensor *run_binary(CvoptGraph *g, CvoptOp op, CvoptDType dtype, uint32_t a_ndim, const int64_t *a_dims,
                               const void *a, uint32_t b_ndim, const int64_t *b_dims, const void *b, int *ret) {
        int32_t ins[2], y;

        ins[0] = add_const(g, "a", dtype, a_ndim, a_dims, a);
        ins[1] = add_const(g, "b", dtype, b_ndim, b_dims, b);
        y = add_output(g, "y");
        add_node(g, "arith", op, 2, ins, y);
        *ret = eval_last(g);
        return &g->tensors[y];
}

static void test_broadcast_float(void **state) {
        float a[6] = { 1, 2, 3, 4, 5, 6 }, b[4] = { 10, 20, 30, 40 }, want[24];
        CvoptTensor *y;
        int r;
        (void) state;

        {
                /* [2, 3, 1] + [1, 4] -> [2, 3, 4]. */
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                assert_int_equal(cvopt_graph_new(&g), 0);
                y = run_binary(g, CVOPT_OP_ADD, CVOPT_DTYPE_FLOAT32, 3, DIMS(2, 3, 1), a, 2, DIMS(1, 4), b, &r);
                assert_int_equal(r, 0);
                assert_shape(y, 3, DIMS(2, 3, 4));
                for (int i = 0; i < 6; i++)
                        for (int j = 0; j < 4; j++)
                                want[i * 4 + j] = a[i] + b[j];
                assert_floats_near(y->data, want, 24, 0);
        }
        {
                /* [4] - [2, 3, 1]: the broadcast operand first. */
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                assert_int_equal(cvopt_graph_new(&g), 0);
                y = run_binary(g, CVOPT_OP_SUB, CVOPT_DTYPE_FLOAT32, 1, DIMS(4), b, 3, DIMS(2, 3, 1), a, &r);
                assert_int_equal(r, 0);
                assert_shape(y, 3, DIMS(2, 3, 4));
                for (int i = 0; i < 6; i++)
                        for (int j = 0; j < 4; j++)
                                want[i * 4 + j] = b[j] - a[i];
                assert_floats_near(y->data, want, 24, 0);
        }
        {
                /* Scalar / tensor. */
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                assert_int_equal(cvopt_graph_new(&g), 0);
                y = run_binary(g, CVOPT_OP_DIV, CVOPT_DTYPE_FLOAT32, 0, NULL, FLOATS(12), 2, DIMS(2, 2), b, &r);
                assert_int_equal(r, 0);
                assert_shape(y, 2, DIMS(2, 2));
                assert_floats_near(y->data, FLOATS(1.2f, 0.6f, 0.4f, 0.3f), 4, 1e-6f);
        }
        {
                /* Per-channel scale [1, 3, 1, 1] * [2, 3, 1, 2] (middle-dim broadcast). */
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                float x[12];
                for (int i = 0; i < 12; i++)
                        x[i] = (float) i;
                assert_int_equal(cvopt_graph_new(&g), 0);
                y = run_binary(g, CVOPT_OP_MUL, CVOPT_DTYPE_FLOAT32, 4, DIMS(1, 3, 1, 1), FLOATS(1, 10, 100), 4,
                               DIMS(2, 3, 1, 2), x, &r);
                assert_int_equal(r, 0);
                assert_shape(y, 4, DIMS(2, 3, 1, 2));
                assert_floats_near(y->data, FLOATS(0, 1, 20, 30, 400, 500, 6, 7, 80, 90, 1000, 1100), 12, 0);
        }
        {
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                assert_int_equal(cvopt_graph_new(&g), 0);
                run_binary(g, CVOPT_OP_ADD, CVOPT_DTYPE_FLOAT32, 1, DIMS(3), a, 1, DIMS(4), b, &r);
                assert_error_names_node(r, -CVOPT_E_SHAPE, "arith");
        }
}

static void test_add_in_place(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        float x[4] = { 1, 2, 3, 4 }, r[4] = { 10, 20, 30, 40 };
        int32_t ins[2], y;
        const RefOp *op = ref_op_lookup(CVOPT_OP_ADD);
        const CvoptTensor *inputs[2];
        CvoptTensor *outputs[1];
        (void) state;

        /* The executor may write a residual Add over its first input. */
        assert_int_equal(cvopt_graph_new(&g), 0);
        ins[0] = add_floats(g, "x", 2, DIMS(2, 2), x);
        ins[1] = add_floats(g, "r", 2, DIMS(2, 2), r);
        y = add_output(g, "y");
        add_node(g, "add", CVOPT_OP_ADD, 2, ins, y);
        assert_int_equal(op->infer(g, &g->nodes[0]), 0);
        inputs[0] = &g->tensors[ins[0]];
        inputs[1] = &g->tensors[ins[1]];
        g->tensors[y].data = g->tensors[ins[0]].data; /* not owned: freed with x */
        outputs[0] = &g->tensors[y];
        assert_int_equal(op->run(&g->nodes[0], inputs, outputs), 0);
        assert_floats_near(g->tensors[ins[0]].data, FLOATS(11, 22, 33, 44), 4, 0);
}

static void test_broadcast_int(void **state) {
        int64_t a[4] = { 7, -7, 9, INT64_MAX }, two = 2, zero_one[2] = { 0, 1 };
        int32_t a32[3] = { 5, -5, 6 }, b32 = 3;
        CvoptTensor *y;
        int r;
        (void) state;

        {
                /* Integer Div truncates toward zero. */
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                assert_int_equal(cvopt_graph_new(&g), 0);
                y = run_binary(g, CVOPT_OP_DIV, CVOPT_DTYPE_INT64, 1, DIMS(4), a, 0, NULL, &two, &r);
                assert_int_equal(r, 0);
                assert_int_equal(y->dtype, CVOPT_DTYPE_INT64);
                assert_int_equal(((int64_t *) y->data)[0], 3);
                assert_int_equal(((int64_t *) y->data)[1], -3);
                assert_int_equal(((int64_t *) y->data)[3], INT64_MAX / 2);
        }
        {
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                assert_int_equal(cvopt_graph_new(&g), 0);
                y = run_binary(g, CVOPT_OP_MUL, CVOPT_DTYPE_INT64, 2, DIMS(2, 2), a, 1, DIMS(2), zero_one, &r);
                assert_int_equal(r, 0);
                assert_int_equal(((int64_t *) y->data)[0], 0);
                assert_int_equal(((int64_t *) y->data)[1], -7);
                assert_int_equal(((int64_t *) y->data)[3], INT64_MAX);
        }
        {
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                assert_int_equal(cvopt_graph_new(&g), 0);
                run_binary(g, CVOPT_OP_DIV, CVOPT_DTYPE_INT64, 2, DIMS(2, 2), a, 1, DIMS(2), zero_one, &r);
                assert_error_names_node(r, -EDOM, "arith");
        }
        {
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                assert_int_equal(cvopt_graph_new(&g), 0);
                y = run_binary(g, CVOPT_OP_SUB, CVOPT_DTYPE_INT32, 1, DIMS(3), a32, 0, NULL, &b32, &r);
                assert_int_equal(r, 0);
                assert_int_equal(y->dtype, CVOPT_DTYPE_INT32);
                assert_int_equal(((int32_t *) y->data)[1], -8);
                assert_int_equal(((int32_t *) y->data)[2], 3);
        }
        {
                /* Mixed dtypes are refused. */
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                int32_t ins[2];
                assert_int_equal(cvopt_graph_new(&g), 0);
                ins[0] = add_const(g, "a", CVOPT_DTYPE_INT64, 1, DIMS(4), a);
                ins[1] = add_floats(g, "b", 1, DIMS(4), FLOATS(1, 2, 3, 4));
                add_node(g, "mixed", CVOPT_OP_ADD, 2, ins, add_output(g, "y"));
                assert_error_names_node(eval_last(g), -CVOPT_E_UNSUPPORTED, "mixed");
        }
}

static void test_batch_norm(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        float x[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
        int32_t ins[5], y;
        CvoptNode *n;
        (void) state;

        assert_int_equal(cvopt_graph_new(&g), 0);
        ins[0] = add_floats(g, "x", 4, DIMS(1, 2, 2, 2), x);
        ins[1] = add_floats(g, "scale", 1, DIMS(2), FLOATS(2, 1));
        ins[2] = add_floats(g, "bias", 1, DIMS(2), FLOATS(1, -1));
        ins[3] = add_floats(g, "mean", 1, DIMS(2), FLOATS(2, 6));
        ins[4] = add_floats(g, "var", 1, DIMS(2), FLOATS(4, 0.25f));
        y = add_output(g, "y");
        n = add_node(g, "bn", CVOPT_OP_BATCH_NORMALIZATION, 5, ins, y);
        assert_int_equal(cvopt_node_set_float(n, "epsilon", 0), 0);
        assert_int_equal(eval_last(g), 0);
        /* Channel 0: 2 * (x - 2) / 2 + 1; channel 1: (x - 6) / 0.5 - 1. */
        assert_floats_near(g->tensors[y].data, FLOATS(0, 1, 2, 3, -3, -1, 1, 3), 8, 1e-6f);
        /* A mean of the wrong length is a shape error. */
        ins[3] = add_floats(g, "mean3", 1, DIMS(3), FLOATS(1, 2, 3));
        add_node(g, "bn_bad", CVOPT_OP_BATCH_NORMALIZATION, 5, ins, add_output(g, "y2"));
        assert_error_names_node(eval_last(g), -CVOPT_E_SHAPE, "bn_bad");
}

static void test_softmax(void **state) {
        float x[8] = { 0, 1, 2, 3, 1, 1, 1, 1 };
        float e0 = 1, e1 = expf(1), e2 = expf(2), e3 = expf(3);
        (void) state;

        {
                /* [2, 2, 2], opset 13 style axis 1: pairs (x[i], x[i + 2]). */
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                int32_t in, y;
                assert_int_equal(cvopt_graph_new(&g), 0);
                in = add_floats(g, "x", 3, DIMS(2, 2, 2), x);
                y = add_output(g, "y");
                assert_int_equal(cvopt_node_set_int(add_node(g, "sm", CVOPT_OP_SOFTMAX, 1, &in, y), "axis", 1), 0);
                assert_int_equal(eval_last(g), 0);
                assert_floats_near(g->tensors[y].data,
                                   FLOATS(e0 / (e0 + e2), e1 / (e1 + e3), e2 / (e0 + e2), e3 / (e1 + e3), 0.5f, 0.5f,
                                          0.5f, 0.5f),
                                   8, 1e-6f);
        }
        {
                /* coerce_2d, axis 1: each batch row of 4 normalized together. */
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                float sum = e0 + e1 + e2 + e3;
                int32_t in, y;
                assert_int_equal(cvopt_graph_new(&g), 0);
                in = add_floats(g, "x", 3, DIMS(2, 2, 2), x);
                y = add_output(g, "y");
                assert_int_equal(cvopt_node_set_int(add_node(g, "sm", CVOPT_OP_SOFTMAX, 1, &in, y), "coerce_2d", 1), 0);
                assert_int_equal(eval_last(g), 0);
                assert_floats_near(g->tensors[y].data,
                                   FLOATS(e0 / sum, e1 / sum, e2 / sum, e3 / sum, 0.25f, 0.25f, 0.25f, 0.25f), 8, 1e-6f);
        }
        {
                /* Default axis -1, and no overflow for large inputs. */
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                int32_t in, y;
                assert_int_equal(cvopt_graph_new(&g), 0);
                in = add_floats(g, "x", 2, DIMS(2, 2), FLOATS(1000, 1000, 0, 1));
                y = add_output(g, "y");
                add_node(g, "sm", CVOPT_OP_SOFTMAX, 1, &in, y);
                assert_int_equal(eval_last(g), 0);
                assert_floats_near(g->tensors[y].data, FLOATS(0.5f, 0.5f, e0 / (e0 + e1), e1 / (e0 + e1)), 4, 1e-6f);
        }
}

/* Shape operators */

static CvoptTensor *run_reshape(CvoptGraph *g, uint32_t ndim, const int64_t *dims, uint32_t count,
                                const int64_t *shape, int64_t allow_zero, int *ret) {
        float x[24] = { 0 };
        int32_t ins[2], y;
        CvoptNode *n;

        ins[0] = add_floats(g, "x", ndim, dims, x);
        ins[1] = add_const(g, "shape", CVOPT_DTYPE_INT64, 1, (int64_t[]) { count }, shape);
        y = add_output(g, "y");
        n = add_node(g, "reshape", CVOPT_OP_RESHAPE, 2, ins, y);
        assert_int_equal(cvopt_node_set_int(n, "allowzero", allow_zero), 0);
        *ret = eval_last(g);
        return &g->tensors[y];
}

static void test_reshape(void **state) {
        CvoptTensor *y;
        int r;
        (void) state;

#define RESHAPE(ndim, dims, count, shape, allow_zero)                    \
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;               \
        assert_int_equal(cvopt_graph_new(&g), 0);                        \
        y = run_reshape(g, ndim, dims, count, shape, allow_zero, &r)

        {
                RESHAPE(3, DIMS(2, 3, 4), 2, DIMS(0, -1), 0);
                assert_int_equal(r, 0);
                assert_shape(y, 2, DIMS(2, 12));
        }
        {
                RESHAPE(3, DIMS(2, 3, 4), 3, DIMS(-1, 0, 2), 0);
                assert_int_equal(r, 0);
                assert_shape(y, 3, DIMS(4, 3, 2));
        }
        {
                /* allowzero: 0 is a real zero-sized dim, so 24 elements cannot fit. */
                RESHAPE(3, DIMS(2, 3, 4), 2, DIMS(0, 24), 1);
                assert_error_names_node(r, -CVOPT_E_SHAPE, "reshape");
        }
        {
                RESHAPE(3, DIMS(2, 3, 4), 2, DIMS(-1, -1), 0);
                assert_error_names_node(r, -CVOPT_E_SHAPE, "reshape");
        }
        {
                RESHAPE(3, DIMS(2, 3, 4), 2, DIMS(5, -1), 0);
                assert_error_names_node(r, -CVOPT_E_SHAPE, "reshape");
        }
        {
                RESHAPE(1, DIMS(6), 2, DIMS(6, 0), 0); /* a 0 past the input's rank copies nothing */
                assert_error_names_node(r, -CVOPT_E_SHAPE, "reshape");
        }
#undef RESHAPE
}

static void test_reshape_needs_constant_shape(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        int32_t ins[2];
        (void) state;

        assert_int_equal(cvopt_graph_new(&g), 0);
        ins[0] = add_floats(g, "x", 1, DIMS(4), FLOATS(1, 2, 3, 4));
        assert_int_equal(cvopt_graph_add_tensor(g, "shape", CVOPT_DTYPE_INT64, 1, DIMS(2), &ins[1]), 0);
        add_node(g, "dyn", CVOPT_OP_RESHAPE, 2, ins, add_output(g, "y"));
        assert_error_names_node(eval_last(g), -CVOPT_E_UNSUPPORTED, "dyn");
}

/* Runs a one-input shape op on a [2, 1, 3] float tensor holding 0..5. */
static CvoptTensor *run_shape_op(CvoptGraph *g, CvoptOp op, const char *ints_attr, uint32_t count,
                                 const int64_t *values, int *ret) {
        int32_t in = add_floats(g, "x", 3, DIMS(2, 1, 3), FLOATS(0, 1, 2, 3, 4, 5)), y = add_output(g, "y");
        CvoptNode *n = add_node(g, "shape_op", op, 1, &in, y);

        if (ints_attr)
                assert_int_equal(cvopt_node_set_ints(n, ints_attr, count, values), 0);
        *ret = eval_last(g);
        return &g->tensors[y];
}

static void test_shape_ops(void **state) {
        CvoptTensor *y;
        int r;
        (void) state;

#define SHAPE_OP(op, attr, count, values)                                  \
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;                 \
        assert_int_equal(cvopt_graph_new(&g), 0);                          \
        y = run_shape_op(g, op, attr, count, values, &r)

        {
                SHAPE_OP(CVOPT_OP_UNSQUEEZE, "axes", 2, DIMS(-1, 0));
                assert_int_equal(r, 0);
                assert_shape(y, 5, DIMS(1, 2, 1, 3, 1));
        }
        {
                /* -2 counts from the OUTPUT's end: position 2 of 4. */
                SHAPE_OP(CVOPT_OP_UNSQUEEZE, "axes", 1, DIMS(-2));
                assert_int_equal(r, 0);
                assert_shape(y, 4, DIMS(2, 1, 1, 3));
        }
        {
                SHAPE_OP(CVOPT_OP_UNSQUEEZE, "axes", 2, DIMS(1, -4));
                assert_error_names_node(r, -CVOPT_E_SHAPE, "shape_op"); /* both are axis 1 */
        }
        {
                SHAPE_OP(CVOPT_OP_SQUEEZE, NULL, 0, NULL);
                assert_int_equal(r, 0);
                assert_shape(y, 2, DIMS(2, 3));
                assert_floats_near(y->data, FLOATS(0, 1, 2, 3, 4, 5), 6, 0);
        }
        {
                SHAPE_OP(CVOPT_OP_SQUEEZE, "axes", 1, DIMS(-2));
                assert_int_equal(r, 0);
                assert_shape(y, 2, DIMS(2, 3));
        }
        {
                SHAPE_OP(CVOPT_OP_SQUEEZE, "axes", 1, DIMS(0));
                assert_error_names_node(r, -CVOPT_E_SHAPE, "shape_op"); /* dim 0 is 2 */
        }
        {
                SHAPE_OP(CVOPT_OP_TRANSPOSE, NULL, 0, NULL);
                assert_int_equal(r, 0);
                assert_shape(y, 3, DIMS(3, 1, 2));
                assert_floats_near(y->data, FLOATS(0, 3, 1, 4, 2, 5), 6, 0);
        }
        {
                SHAPE_OP(CVOPT_OP_TRANSPOSE, "perm", 3, DIMS(1, 2, 0));
                assert_int_equal(r, 0);
                assert_shape(y, 3, DIMS(1, 3, 2));
                assert_floats_near(y->data, FLOATS(0, 3, 1, 4, 2, 5), 6, 0);
        }
        {
                SHAPE_OP(CVOPT_OP_TRANSPOSE, "perm", 3, DIMS(1, 1, 0));
                assert_error_names_node(r, -CVOPT_E_SHAPE, "shape_op");
        }
        {
                SHAPE_OP(CVOPT_OP_FLATTEN, NULL, 0, NULL);
                assert_int_equal(r, 0);
                assert_shape(y, 2, DIMS(2, 3));
        }
        {
                SHAPE_OP(CVOPT_OP_SHAPE, NULL, 0, NULL);
                assert_int_equal(r, 0);
                assert_int_equal(y->dtype, CVOPT_DTYPE_INT64);
                assert_shape(y, 1, DIMS(3));
                assert_memory_equal(y->data, DIMS(2, 1, 3), 3 * sizeof(int64_t));
        }
        {
                SHAPE_OP(CVOPT_OP_IDENTITY, NULL, 0, NULL);
                assert_int_equal(r, 0);
                assert_floats_near(y->data, FLOATS(0, 1, 2, 3, 4, 5), 6, 0);
        }
#undef SHAPE_OP
}

static void test_flatten_axes(void **state) {
        static const struct {
                int64_t axis;
                int64_t want[2];
        } cases[] = { { 0, { 1, 24 } }, { 2, { 6, 4 } }, { 3, { 24, 1 } }, { -1, { 6, 4 } }, { -3, { 1, 24 } } };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                _cleanup_free_ float *x = rand_floats(24);
                int32_t in, y;

                assert_int_equal(cvopt_graph_new(&g), 0);
                in = add_floats(g, "x", 3, DIMS(2, 3, 4), x);
                y = add_output(g, "y");
                assert_int_equal(cvopt_node_set_int(add_node(g, "fl", CVOPT_OP_FLATTEN, 1, &in, y), "axis", cases[i].axis),
                                 0);
                assert_int_equal(eval_last(g), 0);
                assert_shape(&g->tensors[y], 2, cases[i].want);
                assert_memory_equal(g->tensors[y].data, x, 24 * sizeof(float));
        }
}

static void test_shape_start_end(void **state) {
        static const struct {
                int64_t start, end, count;
                int64_t first;
        } cases[] = { { 1, INT64_MAX, 3, 3 }, { -2, -1, 1, 4 }, { 0, 100, 4, 2 }, { 3, 1, 0, 0 }, { -100, 1, 1, 2 } };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                int32_t in, y;
                CvoptNode *n;

                assert_int_equal(cvopt_graph_new(&g), 0);
                assert_int_equal(cvopt_graph_add_tensor(g, "x", CVOPT_DTYPE_FLOAT32, 4, DIMS(2, 3, 4, 5), &in), 0);
                y = add_output(g, "y");
                n = add_node(g, "shape", CVOPT_OP_SHAPE, 1, &in, y);
                assert_int_equal(cvopt_node_set_int(n, "start", cases[i].start), 0);
                if (cases[i].end != INT64_MAX)
                        assert_int_equal(cvopt_node_set_int(n, "end", cases[i].end), 0);
                assert_int_equal(eval_last(g), 0);
                assert_shape(&g->tensors[y], 1, &cases[i].count);
                if (cases[i].count > 0)
                        assert_int_equal(((int64_t *) g->tensors[y].data)[0], cases[i].first);
        }
}

static void test_concat(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        int64_t a[4] = { 1, 2, 3, 4 }, b[2] = { 5, 6 };
        int32_t ins[2], y, z;
        CvoptNode *n;
        (void) state;

        assert_int_equal(cvopt_graph_new(&g), 0);
        ins[0] = add_const(g, "a", CVOPT_DTYPE_INT64, 2, DIMS(2, 2), a);
        ins[1] = add_const(g, "b", CVOPT_DTYPE_INT64, 2, DIMS(2, 1), b);
        y = add_output(g, "y");
        n = add_node(g, "cat", CVOPT_OP_CONCAT, 2, ins, y);
        assert_int_equal(cvopt_node_set_int(n, "axis", -1), 0);
        assert_int_equal(eval_last(g), 0);
        assert_shape(&g->tensors[y], 2, DIMS(2, 3));
        assert_memory_equal(g->tensors[y].data, DIMS(1, 2, 5, 3, 4, 6), 6 * sizeof(int64_t));
        /* Along axis 0 the [2, 1] input does not match [2, 2]. */
        z = add_output(g, "z");
        n = add_node(g, "cat0", CVOPT_OP_CONCAT, 2, ins, z);
        assert_int_equal(cvopt_node_set_int(n, "axis", 0), 0);
        assert_error_names_node(eval_last(g), -CVOPT_E_SHAPE, "cat0");
        /* Floats along axis 0. */
        ins[0] = add_floats(g, "fa", 2, DIMS(1, 2), FLOATS(1, 2));
        ins[1] = add_floats(g, "fb", 2, DIMS(2, 2), FLOATS(3, 4, 5, 6));
        n = add_node(g, "catf", CVOPT_OP_CONCAT, 2, ins, add_output(g, "w"));
        assert_int_equal(cvopt_node_set_int(n, "axis", 0), 0);
        assert_int_equal(eval_last(g), 0);
        assert_floats_near(g->tensors[g->n_tensors - 1].data, FLOATS(1, 2, 3, 4, 5, 6), 6, 0);
}

static void test_gather(void **state) {
        float data[6] = { 1, 2, 3, 4, 5, 6 };
        (void) state;

        {
                /* Negative indices along axis 0. */
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                int32_t ins[2], y;
                assert_int_equal(cvopt_graph_new(&g), 0);
                ins[0] = add_floats(g, "data", 2, DIMS(3, 2), data);
                ins[1] = add_const(g, "idx", CVOPT_DTYPE_INT64, 2, DIMS(1, 2), DIMS(-1, 0));
                y = add_output(g, "y");
                add_node(g, "gather", CVOPT_OP_GATHER, 2, ins, y);
                assert_int_equal(eval_last(g), 0);
                assert_shape(&g->tensors[y], 3, DIMS(1, 2, 2));
                assert_floats_near(g->tensors[y].data, FLOATS(5, 6, 1, 2), 4, 0);
        }
        {
                /* A scalar int32 index along axis 1 removes that dim. */
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                int32_t ins[2], y, index = -1;
                assert_int_equal(cvopt_graph_new(&g), 0);
                ins[0] = add_floats(g, "data", 2, DIMS(3, 2), data);
                ins[1] = add_const(g, "idx", CVOPT_DTYPE_INT32, 0, NULL, &index);
                y = add_output(g, "y");
                assert_int_equal(cvopt_node_set_int(add_node(g, "gather", CVOPT_OP_GATHER, 2, ins, y), "axis", 1), 0);
                assert_int_equal(eval_last(g), 0);
                assert_shape(&g->tensors[y], 1, DIMS(3));
                assert_floats_near(g->tensors[y].data, FLOATS(2, 4, 6), 3, 0);
        }
        {
                /* Gather on a shape (int64 data), as in Shape -> Gather. */
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                int32_t ins[2], y;
                int64_t zero = 0;
                assert_int_equal(cvopt_graph_new(&g), 0);
                ins[0] = add_const(g, "shape", CVOPT_DTYPE_INT64, 1, DIMS(4), DIMS(8, 3, 32, 32));
                ins[1] = add_const(g, "idx", CVOPT_DTYPE_INT64, 0, NULL, &zero);
                y = add_output(g, "y");
                add_node(g, "gather", CVOPT_OP_GATHER, 2, ins, y);
                assert_int_equal(eval_last(g), 0);
                assert_shape(&g->tensors[y], 0, NULL);
                assert_int_equal(*(int64_t *) g->tensors[y].data, 8);
        }
        {
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                int32_t ins[2];
                assert_int_equal(cvopt_graph_new(&g), 0);
                ins[0] = add_floats(g, "data", 2, DIMS(3, 2), data);
                ins[1] = add_const(g, "idx", CVOPT_DTYPE_INT64, 1, DIMS(2), DIMS(0, -4));
                add_node(g, "gather_oob", CVOPT_OP_GATHER, 2, ins, add_output(g, "y"));
                assert_error_names_node(eval_last(g), -ERANGE, "gather_oob");
        }
}

static void test_dropout_and_constant(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        int32_t in, outs[2], c;
        (void) state;

        assert_int_equal(cvopt_graph_new(&g), 0);
        in = add_floats(g, "x", 1, DIMS(3), FLOATS(1, 2, 3));
        outs[0] = add_output(g, "y");
        add_node(g, "drop", CVOPT_OP_DROPOUT, 1, &in, outs[0]);
        assert_int_equal(eval_last(g), 0);
        assert_floats_near(g->tensors[outs[0]].data, FLOATS(1, 2, 3), 3, 0);
        /* The mask output is not supported. */
        outs[1] = add_output(g, "mask");
        outs[0] = add_output(g, "y2");
        assert_int_equal(cvopt_graph_add_node(g, "drop_mask", CVOPT_OP_DROPOUT, 1, &in, 2, outs, NULL), 0);
        assert_error_names_node(eval_last(g), -CVOPT_E_UNSUPPORTED, "drop_mask");
        /* Constant: the value already sits in the output. */
        c = add_floats(g, "c", 1, DIMS(2), FLOATS(7, 8));
        assert_int_equal(cvopt_graph_add_node(g, "const", CVOPT_OP_CONSTANT, 0, NULL, 1, &c, NULL), 0);
        assert_int_equal(eval_last(g), 0);
        assert_int_equal(cvopt_graph_add_node(g, "const_bad", CVOPT_OP_CONSTANT, 0, NULL, 1, &outs[0], NULL), 0);
        g->tensors[outs[0]].data = NULL;
        assert_error_names_node(eval_last(g), -CVOPT_E_UNSUPPORTED, "const_bad");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_every_op_has_an_entry),
                cmocka_unit_test(test_activations),
                cmocka_unit_test(test_relu_keeps_nan),
                cmocka_unit_test(test_prelu),
                cmocka_unit_test(test_broadcast_float),
                cmocka_unit_test(test_add_in_place),
                cmocka_unit_test(test_broadcast_int),
                cmocka_unit_test(test_batch_norm),
                cmocka_unit_test(test_softmax),
                cmocka_unit_test(test_reshape),
                cmocka_unit_test(test_reshape_needs_constant_shape),
                cmocka_unit_test(test_shape_ops),
                cmocka_unit_test(test_flatten_axes),
                cmocka_unit_test(test_shape_start_end),
                cmocka_unit_test(test_concat),
                cmocka_unit_test(test_gather),
                cmocka_unit_test(test_dropout_and_constant),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}

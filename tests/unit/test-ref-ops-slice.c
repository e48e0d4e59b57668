/* SPDX-License-Identifier: MIT */
/* Reference Slice and ReduceMean/Max/Sum: the ONNX clamping rules, negative
 * axes, starts, ends and steps, int64 data (sliced shapes), the folding of
 * the Shape -> Gather -> Add -> Div -> Mul chain that torch's x.chunk()
 * exports, and the refusal of parameters that stay run-time values. */
#include "ref-test-util.h"

/* x: [3, 4] holding 0..11. */
static const float x34[12] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 };

/* Slice of x34 with the given parameters (axes/steps may be NULL: absent);
 * returns the output tensor and the status in *ret_r. */
static CvoptTensor *run_slice(CvoptGraph *g, size_t count, const int64_t *starts, const int64_t *ends,
                              const int64_t *axes, const int64_t *steps, int *ret_r) {
        int32_t in[5], y;
        uint32_t n_in = 3;

        in[0] = add_floats(g, "x", 2, DIMS(3, 4), x34);
        in[1] = add_const(g, "starts", CVOPT_DTYPE_INT64, 1, (int64_t[]) { (int64_t) count }, starts);
        in[2] = add_const(g, "ends", CVOPT_DTYPE_INT64, 1, (int64_t[]) { (int64_t) count }, ends);
        in[3] = -1;
        if (axes)
                in[3] = add_const(g, "axes", CVOPT_DTYPE_INT64, 1, (int64_t[]) { (int64_t) count }, axes);
        if (axes || steps)
                n_in = 4;
        if (steps) {
                in[4] = add_const(g, "steps", CVOPT_DTYPE_INT64, 1, (int64_t[]) { (int64_t) count }, steps);
                n_in = 5;
        }
        y = add_output(g, "y");
        add_node(g, "slice", CVOPT_OP_SLICE, n_in, in, y);
        *ret_r = eval_last(g);
        return &g->tensors[y];
}

static void test_slice_basic_and_clamping(void **state) {
        CvoptTensor *y;
        int r;
        (void) state;

#define SLICE(...)                                                 \
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;         \
        assert_int_equal(cvopt_graph_new(&g), 0);                  \
        y = run_slice(g, __VA_ARGS__, &r)

        {
                /* Default axes (0, 1) and steps: rows 1..2, cols 1..2. */
                SLICE(2, DIMS(1, 1), DIMS(3, 3), NULL, NULL);
                assert_int_equal(r, 0);
                assert_shape(y, 2, DIMS(2, 2));
                assert_floats_near(y->data, FLOATS(5, 6, 9, 10), 4, 0);
        }
        {
                /* Negative start and end count from the end; negative axis. */
                SLICE(1, DIMS(-3), DIMS(-1), DIMS(-1), NULL);
                assert_int_equal(r, 0);
                assert_shape(y, 2, DIMS(3, 2));
                assert_floats_near(y->data, FLOATS(1, 2, 5, 6, 9, 10), 6, 0);
        }
        {
                /* Out-of-range starts/ends clamp to the dim: the whole axis. */
                SLICE(1, DIMS(-100), DIMS(100), DIMS(1), NULL);
                assert_int_equal(r, 0);
                assert_shape(y, 2, DIMS(3, 4));
                assert_floats_near(y->data, x34, 12, 0);
        }
        {
                /* A start past the end gives an empty axis, not an error. */
                SLICE(1, DIMS(1000), DIMS(INT64_MAX), DIMS(0), NULL);
                assert_int_equal(r, 0);
                assert_shape(y, 2, DIMS(0, 4));
        }
        {
                /* ends = INT64_MAX (torch's "to the end") with a huge step:
                 * one element, and no overflow computing the count. */
                SLICE(1, DIMS(1), DIMS(INT64_MAX), DIMS(1), DIMS(INT64_MAX));
                assert_int_equal(r, 0);
                assert_shape(y, 2, DIMS(3, 1));
                assert_floats_near(y->data, FLOATS(1, 5, 9), 3, 0);
        }
#undef SLICE
}

static void test_slice_negative_steps(void **state) {
        CvoptTensor *y;
        int r;
        (void) state;

        {
                /* x[::-1, 3::-2]: rows reversed, cols 3 and 1. A negative
                 * step clamps start to dim - 1 and end to -1. */
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                assert_int_equal(cvopt_graph_new(&g), 0);
                y = run_slice(g, 2, DIMS(100, 3), DIMS(INT64_MIN, -100), DIMS(0, 1), DIMS(-1, -2), &r);
                assert_int_equal(r, 0);
                assert_shape(y, 2, DIMS(3, 2));
                assert_floats_near(y->data, FLOATS(11, 9, 7, 5, 3, 1), 6, 0);
        }
        {
                /* INT64_MIN as a step has no positive counterpart. */
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                assert_int_equal(cvopt_graph_new(&g), 0);
                y = run_slice(g, 1, DIMS(-1), DIMS(INT64_MIN), DIMS(1), DIMS(INT64_MIN), &r);
                assert_int_equal(r, 0);
                assert_shape(y, 2, DIMS(3, 1));
                assert_floats_near(y->data, FLOATS(3, 7, 11), 3, 0);
        }
        {
                /* Start before end with a negative step: empty. */
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                assert_int_equal(cvopt_graph_new(&g), 0);
                y = run_slice(g, 1, DIMS(0), DIMS(3), DIMS(1), DIMS(-1), &r);
                assert_int_equal(r, 0);
                assert_shape(y, 2, DIMS(3, 0));
        }
}

static void test_slice_errors(void **state) {
        int r;
        (void) state;

        {
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                assert_int_equal(cvopt_graph_new(&g), 0);
                run_slice(g, 1, DIMS(0), DIMS(2), DIMS(0), DIMS(0), &r);
                assert_error_names_node(r, -CVOPT_E_SHAPE, "slice"); /* step 0 */
        }
        {
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                assert_int_equal(cvopt_graph_new(&g), 0);
                run_slice(g, 2, DIMS(0, 0), DIMS(1, 1), DIMS(1, -1), NULL, &r);
                assert_error_names_node(r, -CVOPT_E_SHAPE, "slice"); /* axis 1 twice */
        }
        {
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                assert_int_equal(cvopt_graph_new(&g), 0);
                run_slice(g, 1, DIMS(0), DIMS(1), DIMS(2), NULL, &r);
                assert_error_names_node(r, -CVOPT_E_SHAPE, "slice"); /* rank 2 */
        }
        {
                /* starts computed at run time: refused, naming node and input. */
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                int32_t in[3];

                assert_int_equal(cvopt_graph_new(&g), 0);
                in[0] = add_floats(g, "x", 2, DIMS(3, 4), x34);
                assert_int_equal(cvopt_graph_add_tensor(g, "dyn_starts", CVOPT_DTYPE_INT64, 1, DIMS(1), &in[1]), 0);
                in[2] = add_const(g, "ends", CVOPT_DTYPE_INT64, 1, DIMS(1), DIMS(2));
                add_node(g, "slice_dyn", CVOPT_OP_SLICE, 3, in, add_output(g, "y"));
                assert_error_names_node(eval_last(g), -CVOPT_E_UNSUPPORTED, "slice_dyn");
                assert_non_null(
                        strstr(cvopt_error_detail(), "(Slice): starts input 'dyn_starts' is computed at run time"));
        }
        {
                /* Float starts are not indices. */
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                int32_t in[3];

                assert_int_equal(cvopt_graph_new(&g), 0);
                in[0] = add_floats(g, "x", 2, DIMS(3, 4), x34);
                in[1] = add_floats(g, "starts", 1, DIMS(1), FLOATS(0));
                in[2] = add_const(g, "ends", CVOPT_DTYPE_INT64, 1, DIMS(1), DIMS(2));
                add_node(g, "slice_float", CVOPT_OP_SLICE, 3, in, add_output(g, "y"));
                assert_error_names_node(eval_last(g), -CVOPT_E_UNSUPPORTED, "slice_float");
        }
}

static void test_slice_int64_data(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        int32_t in[4], y;
        int32_t starts = -3, ends = -1, axes = 0;
        (void) state;

        /* A shape [8, 3, 32, 32] sliced to its spatial dims, with int32
         * parameters (ONNX allows either index type). */
        assert_int_equal(cvopt_graph_new(&g), 0);
        in[0] = add_const(g, "shape", CVOPT_DTYPE_INT64, 1, DIMS(4), DIMS(8, 3, 32, 31));
        in[1] = add_const(g, "starts", CVOPT_DTYPE_INT32, 1, DIMS(1), &starts);
        in[2] = add_const(g, "ends", CVOPT_DTYPE_INT32, 1, DIMS(1), &ends);
        in[3] = add_const(g, "axes", CVOPT_DTYPE_INT32, 1, DIMS(1), &axes);
        y = add_output(g, "y");
        add_node(g, "slice", CVOPT_OP_SLICE, 4, in, y);
        assert_int_equal(eval_last(g), 0);
        assert_int_equal(g->tensors[y].dtype, CVOPT_DTYPE_INT64);
        assert_shape(&g->tensors[y], 1, DIMS(2));
        assert_memory_equal(g->tensors[y].data, DIMS(3, 32), 2 * sizeof(int64_t));
}

/* x.chunk(2, dim=1) as torch exports it: ends = (dim + 1) / 2 * k from a
 * Shape -> Gather -> Add -> Div -> Mul chain on int64. Shape inference
 * must fold the chain so that each Slice sees constant parameters. */
static int32_t add_int64(CvoptGraph *g, const char *name, int64_t value) {
        return add_const(g, name, CVOPT_DTYPE_INT64, 1, DIMS(1), &value);
}

static int32_t add_binary(CvoptGraph *g, const char *name, CvoptOp op, int32_t a, int32_t b) {
        int32_t in[2] = { a, b }, out = add_output(g, name);

        add_node(g, name, op, 2, in, out);
        return out;
}

static void test_slice_folds_chunk_chain(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        _cleanup_free_ float *data = rand_floats(6 * 4);
        CvoptSession *s = NULL;
        int32_t x, shape, dim, half, end0, end1, in[4], y0, y1, outputs[2];
        (void) state;

        assert_int_equal(cvopt_graph_new(&g), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "x", CVOPT_DTYPE_FLOAT32, 4, DIMS(1, 6, 2, 2), &x), 0);
        assert_int_equal(cvopt_graph_set_inputs(g, 1, &x), 0);
        shape = add_output(g, "shape");
        add_node(g, "shape", CVOPT_OP_SHAPE, 1, &x, shape);
        in[0] = shape;
        in[1] = add_int64(g, "index", 1);
        dim = add_output(g, "dim");
        add_node(g, "gather", CVOPT_OP_GATHER, 2, in, dim);
        half = add_binary(g, "add", CVOPT_OP_ADD, dim, add_int64(g, "one", 1));
        half = add_binary(g, "div", CVOPT_OP_DIV, half, add_int64(g, "two", 2));
        end0 = add_binary(g, "mul0", CVOPT_OP_MUL, half, add_int64(g, "k1", 1));
        end1 = add_binary(g, "mul1", CVOPT_OP_MUL, half, add_int64(g, "k2", 2));
        in[0] = x;
        in[1] = add_int64(g, "zero", 0);
        in[2] = end0;
        in[3] = add_int64(g, "axis", 1);
        y0 = add_output(g, "y0");
        add_node(g, "slice0", CVOPT_OP_SLICE, 4, in, y0);
        in[1] = end0;
        in[2] = end1;
        y1 = add_output(g, "y1");
        add_node(g, "slice1", CVOPT_OP_SLICE, 4, in, y1);
        outputs[0] = y0;
        outputs[1] = y1;
        assert_int_equal(cvopt_graph_set_outputs(g, 2, outputs), 0);

        assert_int_equal(cvopt_graph_infer_shapes(g), 0);
        /* Only the two Slices are left, with constant ends. */
        assert_int_equal(g->n_nodes, 2);
        for (uint32_t k = 0; k < g->n_nodes; k++) {
                assert_int_equal(g->nodes[k].op, CVOPT_OP_SLICE);
                assert_true(cvopt_node_input(g, &g->nodes[k], 2)->is_constant);
        }
        y0 = cvopt_graph_find_tensor(g, "y0");
        y1 = cvopt_graph_find_tensor(g, "y1");
        assert_shape(&g->tensors[y0], 4, DIMS(1, 3, 2, 2));
        assert_shape(&g->tensors[y1], 4, DIMS(1, 3, 2, 2));

        /* And the executor splits the channels. */
        assert_int_equal(cvopt_session_new(g, NULL, &s), 0);
        memcpy(cvopt_session_input(s, 0)->data, data, 24 * sizeof(float));
        assert_int_equal(cvopt_session_run(s), 0);
        assert_floats_near(cvopt_session_output(s, 0)->data, data, 12, 0);
        assert_floats_near(cvopt_session_output(s, 1)->data, data + 12, 12, 0);
        cvopt_session_free(s);
}

static void test_slice_refuses_unfoldable(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        int32_t in[3], inputs[2], y;
        (void) state;

        /* ends is a graph input: no pass can make it a constant. */
        assert_int_equal(cvopt_graph_new(&g), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "x", CVOPT_DTYPE_FLOAT32, 2, DIMS(3, 4), &in[0]), 0);
        in[1] = add_int64(g, "starts", 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "ends", CVOPT_DTYPE_INT64, 1, DIMS(1), &in[2]), 0);
        inputs[0] = in[0];
        inputs[1] = in[2];
        assert_int_equal(cvopt_graph_set_inputs(g, 2, inputs), 0);
        y = add_output(g, "y");
        add_node(g, "chunk", CVOPT_OP_SLICE, 3, in, y);
        assert_int_equal(cvopt_graph_set_outputs(g, 1, &y), 0);
        assert_error_names_node(cvopt_graph_infer_shapes(g), -CVOPT_E_UNSUPPORTED, "chunk");
        assert_non_null(strstr(cvopt_error_detail(), "ends input 'ends' is computed at run time"));
}

/* ---- reductions ---- */

static CvoptTensor *run_reduce(CvoptGraph *g, CvoptOp op, CvoptDType dtype, const void *x, const int64_t *axes,
                               uint32_t n_axes, int64_t keepdims, int *ret_r) {
        char x_name[32], y_name[32];
        int32_t in, y;
        CvoptNode *n;

        /* Unique tensor names: a test may reduce several times in one graph. */
        snprintf(x_name, sizeof(x_name), "x%u", g->n_nodes);
        snprintf(y_name, sizeof(y_name), "y%u", g->n_nodes);
        in = add_const(g, x_name, dtype, 3, DIMS(2, 2, 3), x);
        y = add_output(g, y_name);
        n = add_node(g, "reduce", op, 1, &in, y);

        if (axes)
                assert_int_equal(cvopt_node_set_ints(n, "axes", n_axes, axes), 0);
        if (keepdims >= 0)
                assert_int_equal(cvopt_node_set_int(n, "keepdims", keepdims), 0);
        *ret_r = eval_last(g);
        return &g->tensors[y];
}

/* [2, 2, 3]: 0..11. */
static const float x223[12] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 };

static void test_reduce(void **state) {
        CvoptTensor *y;
        int r;
        (void) state;

#define REDUCE(op, ...)                                                        \
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;                     \
        assert_int_equal(cvopt_graph_new(&g), 0);                              \
        y = run_reduce(g, op, CVOPT_DTYPE_FLOAT32, x223, __VA_ARGS__, &r)

        {
                /* Global pooling as torchvision's flatten(mean([2, 3])). */
                REDUCE(CVOPT_OP_REDUCE_MEAN, DIMS(1, 2), 2, 0);
                assert_int_equal(r, 0);
                assert_shape(y, 1, DIMS(2));
                assert_floats_near(y->data, FLOATS(2.5f, 8.5f), 2, 1e-6f);
        }
        {
                REDUCE(CVOPT_OP_REDUCE_MEAN, DIMS(-2), 1, -1); /* keepdims defaults to 1 */
                assert_int_equal(r, 0);
                assert_shape(y, 3, DIMS(2, 1, 3));
                assert_floats_near(y->data, FLOATS(1.5f, 2.5f, 3.5f, 7.5f, 8.5f, 9.5f), 6, 1e-6f);
        }
        {
                /* No axes: every dim. */
                REDUCE(CVOPT_OP_REDUCE_SUM, NULL, 0, 0);
                assert_int_equal(r, 0);
                assert_shape(y, 0, NULL);
                assert_floats_near(y->data, FLOATS(66), 1, 0);
        }
        {
                REDUCE(CVOPT_OP_REDUCE_MAX, DIMS(0, 2), 2, 1);
                assert_int_equal(r, 0);
                assert_shape(y, 3, DIMS(1, 2, 1));
                assert_floats_near(y->data, FLOATS(8, 11), 2, 0);
        }
        {
                REDUCE(CVOPT_OP_REDUCE_MEAN, DIMS(2, -1), 2, 1);
                assert_error_names_node(r, -CVOPT_E_SHAPE, "reduce"); /* axis 2 twice */
        }
        {
                REDUCE(CVOPT_OP_REDUCE_MAX, DIMS(3), 1, 1);
                assert_error_names_node(r, -CVOPT_E_SHAPE, "reduce");
        }
#undef REDUCE
}

static void test_reduce_special_values(void **state) {
        (void) state;

        {
                /* Max: a NaN wins wherever it sits. */
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                float x[12];
                CvoptTensor *y;
                int r;

                memcpy(x, x223, sizeof(x));
                x[1] = NAN;
                assert_int_equal(cvopt_graph_new(&g), 0);
                y = run_reduce(g, CVOPT_OP_REDUCE_MAX, CVOPT_DTYPE_FLOAT32, x, DIMS(1, 2), 2, 0, &r);
                assert_int_equal(r, 0);
                assert_true(isnan(((float *) y->data)[0]));
                assert_floats_near((float *) y->data + 1, FLOATS(11), 1, 0);
        }
        {
                /* noop_with_empty_axes and no axes: a copy. */
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                int32_t in, y;
                CvoptNode *n;

                assert_int_equal(cvopt_graph_new(&g), 0);
                in = add_floats(g, "x", 3, DIMS(2, 2, 3), x223);
                y = add_output(g, "y");
                n = add_node(g, "noop", CVOPT_OP_REDUCE_SUM, 1, &in, y);
                assert_int_equal(cvopt_node_set_int(n, "noop_with_empty_axes", 1), 0);
                assert_int_equal(eval_last(g), 0);
                assert_shape(&g->tensors[y], 3, DIMS(2, 2, 3));
                assert_floats_near(g->tensors[y].data, x223, 12, 0);
        }
        {
                /* int64: Sum and Max exact, Mean refused. */
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                int64_t x[12];
                CvoptTensor *y;
                int r;

                for (int i = 0; i < 12; i++)
                        x[i] = (int64_t) i * 1000000000000LL;
                assert_int_equal(cvopt_graph_new(&g), 0);
                y = run_reduce(g, CVOPT_OP_REDUCE_SUM, CVOPT_DTYPE_INT64, x, DIMS(0), 1, 0, &r);
                assert_int_equal(r, 0);
                assert_shape(y, 2, DIMS(2, 3));
                assert_int_equal(((int64_t *) y->data)[5], 16000000000000LL);
                y = run_reduce(g, CVOPT_OP_REDUCE_MAX, CVOPT_DTYPE_INT64, x, DIMS(2), 1, 0, &r);
                assert_int_equal(r, 0);
                assert_memory_equal(y->data, DIMS(2000000000000LL, 5000000000000LL, 8000000000000LL, 11000000000000LL),
                                    4 * sizeof(int64_t));
                run_reduce(g, CVOPT_OP_REDUCE_MEAN, CVOPT_DTYPE_INT64, x, DIMS(2), 1, 0, &r);
                assert_error_names_node(r, -CVOPT_E_UNSUPPORTED, "reduce");
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_slice_basic_and_clamping),
                cmocka_unit_test(test_slice_negative_steps),
                cmocka_unit_test(test_slice_errors),
                cmocka_unit_test(test_slice_int64_data),
                cmocka_unit_test(test_slice_folds_chunk_chain),
                cmocka_unit_test(test_slice_refuses_unfoldable),
                cmocka_unit_test(test_reduce),
                cmocka_unit_test(test_reduce_special_values),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}

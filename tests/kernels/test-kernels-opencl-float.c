/* SPDX-License-Identifier: MIT */
/* The OpenCL float kernels against the fp32 reference (suite 'kernels').
 * Sums run in another order on the device, so values must agree within
 * FLOAT_TOLERANCE (relative, with an absolute floor of the same size for
 * values near 0), the tolerance docs/opencl.md states. Also checks a graph
 * whose nodes alternate between OpenCL and the CPU, so that activations
 * kept on the device and read back when the CPU needs them are right. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "opencl-test-util.h"

/* float32 has 24 bits; a 3x3x64 dot product reordered loses a few ulps on
 * each of ~600 terms, far below 1e-4 relative. */
#define FLOAT_TOLERANCE 1e-4f

static int32_t add_weights(CvoptGraph *g, const char *name, uint32_t ndim, const int64_t *dims, float range) {
        int64_t count = 1;
        float *data;
        int32_t t;

        for (uint32_t i = 0; i < ndim; i++)
                count *= dims[i];
        data = malloc((size_t) count * sizeof(float));
        assert_non_null(data);
        for (int64_t i = 0; i < count; i++)
                data[i] = ((float) (rng() % 20001) / 10000.0f - 1.0f) * range;
        assert_int_equal(cvopt_graph_add_constant(g, name, CVOPT_DTYPE_FLOAT32, ndim, dims, data, true, &t), 0);
        return t;
}

static int32_t add_node(CvoptGraph *g, const char *name, CvoptOp op, uint32_t n_inputs, const int32_t *inputs) {
        int32_t y, node;
        char out[64];

        snprintf(out, sizeof(out), "%s.y", name);
        y = add_activation(g, out, 0, NULL, 0, -1);
        assert_int_equal(cvopt_graph_add_node(g, name, op, n_inputs, inputs, 1, &y, &node), 0);
        return y;
}

static CvoptNode *last_node(CvoptGraph *g) {
        return &g->nodes[g->n_nodes - 1];
}

static void compare_float(const CvoptGraph *g, const char *what, const char *must_run_elsewhere) {
        _cleanup_(cvopt_session_freep) CvoptSession *ref = NULL, *cl = NULL;

        assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "cpu-ref" }, &ref), 0);
        assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "opencl" }, &cl), 0);
        assert_string_equal(cvopt_session_backend_name(cl), "opencl");
        for (int run = 0; run < 2; run++) {
                for (uint32_t i = 0; i < cvopt_session_n_inputs(ref); i++) {
                        CvoptTensor *a = cvopt_session_input(ref, i), *b = cvopt_session_input(cl, i);

                        for (int64_t k = 0; k < cvopt_tensor_count(a); k++)
                                ((float *) a->data)[k] = ((float *) b->data)[k] =
                                        (float) (rng() % 40001) / 10000.0f - 2.0f;
                }
                assert_int_equal(cvopt_session_run(ref), 0);
                assert_int_equal(cvopt_session_run(cl), 0);
                for (uint32_t k = 0; k < g->n_nodes; k++) {
                        const char *name = g->nodes[k].name, *ran = cvopt_session_node_backend_name(cl, k);
                        bool elsewhere = must_run_elsewhere && streq(name, must_run_elsewhere);

                        if (streq(ran, "opencl") == elsewhere)
                                fail_msg("%s: node '%s' ran on %s", what, name, ran);
                }
                for (uint32_t i = 0; i < cvopt_session_n_outputs(ref); i++) {
                        const CvoptTensor *a = cvopt_session_output(ref, i), *b = cvopt_session_output(cl, i);
                        const float *x = a->data, *y = b->data;

                        for (int64_t k = 0; k < cvopt_tensor_count(a); k++)
                                if (!(fabsf(x[k] - y[k]) <= FLOAT_TOLERANCE * MAX(1.0f, fabsf(x[k]))))
                                        fail_msg("%s: output %u element %lld: %g on the CPU, %g on OpenCL", what, i,
                                                 (long long) k, x[k], y[k]);
                }
        }
}

/* Conv(+Relu) -> MaxPool -> depthwise Conv(+Clip) -> AveragePool ->
 * grouped Conv(+LeakyRelu) -> GlobalAveragePool -> Flatten -> Gemm(transB,
 * C) -> Sigmoid -> Add -> Softmax, and a GlobalMaxPool side output. */
static void test_float_cnn(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        int32_t x, t, side;
        (void) state;

        assert_int_equal(cvopt_graph_new(&g), 0);
        x = add_activation(g, "x", 4, (int64_t[]) { 1, 3, 19, 17 }, 0, -1);
        t = add_node(g, "conv1", CVOPT_OP_CONV, 3,
                     (int32_t[]) { x, add_weights(g, "w1", 4, (int64_t[]) { 20, 3, 3, 3 }, 0.5f),
                                   add_weights(g, "b1", 1, (int64_t[]) { 20 }, 0.1f) });
        assert_int_equal(cvopt_node_set_ints(last_node(g), "pads", 4, (int64_t[]) { 1, 1, 1, 1 }), 0);
        assert_int_equal(cvopt_node_set_string(last_node(g), "activation", "Relu"), 0);
        t = add_node(g, "pool1", CVOPT_OP_MAX_POOL, 1, &t);
        assert_int_equal(cvopt_node_set_ints(last_node(g), "kernel_shape", 2, (int64_t[]) { 3, 3 }), 0);
        assert_int_equal(cvopt_node_set_ints(last_node(g), "strides", 2, (int64_t[]) { 2, 2 }), 0);
        assert_int_equal(cvopt_node_set_int(last_node(g), "ceil_mode", 1), 0);
        t = add_node(g, "dw", CVOPT_OP_CONV, 2, (int32_t[]) { t, add_weights(g, "w2", 4, (int64_t[]) { 20, 1, 3, 3 }, 0.5f) });
        assert_int_equal(cvopt_node_set_ints(last_node(g), "pads", 4, (int64_t[]) { 1, 1, 1, 1 }), 0);
        assert_int_equal(cvopt_node_set_int(last_node(g), "group", 20), 0);
        assert_int_equal(cvopt_node_set_string(last_node(g), "activation", "Clip"), 0);
        assert_int_equal(cvopt_node_set_float(last_node(g), "activation_min", 0.0f), 0);
        assert_int_equal(cvopt_node_set_float(last_node(g), "activation_max", 6.0f), 0);
        t = add_node(g, "pool2", CVOPT_OP_AVERAGE_POOL, 1, &t);
        assert_int_equal(cvopt_node_set_ints(last_node(g), "kernel_shape", 2, (int64_t[]) { 3, 3 }), 0);
        assert_int_equal(cvopt_node_set_ints(last_node(g), "pads", 4, (int64_t[]) { 1, 1, 1, 1 }), 0);
        assert_int_equal(cvopt_node_set_ints(last_node(g), "strides", 2, (int64_t[]) { 2, 2 }), 0);
        assert_int_equal(cvopt_node_set_int(last_node(g), "count_include_pad", 1), 0);
        t = add_node(g, "grouped", CVOPT_OP_CONV, 3,
                     (int32_t[]) { t, add_weights(g, "w3", 4, (int64_t[]) { 36, 10, 3, 3 }, 0.3f),
                                   add_weights(g, "b3", 1, (int64_t[]) { 36 }, 0.1f) });
        assert_int_equal(cvopt_node_set_ints(last_node(g), "pads", 4, (int64_t[]) { 1, 1, 1, 1 }), 0);
        assert_int_equal(cvopt_node_set_int(last_node(g), "group", 2), 0);
        assert_int_equal(cvopt_node_set_string(last_node(g), "activation", "LeakyRelu"), 0);
        side = add_node(g, "gmax", CVOPT_OP_GLOBAL_MAX_POOL, 1, &t);
        t = add_node(g, "gap", CVOPT_OP_GLOBAL_AVERAGE_POOL, 1, &t);
        t = add_node(g, "flatten", CVOPT_OP_FLATTEN, 1, &t);
        t = add_node(g, "fc", CVOPT_OP_GEMM, 3,
                     (int32_t[]) { t, add_weights(g, "wfc", 2, (int64_t[]) { 10, 36 }, 0.5f),
                                   add_weights(g, "bfc", 1, (int64_t[]) { 10 }, 0.1f) });
        assert_int_equal(cvopt_node_set_int(last_node(g), "transB", 1), 0);
        assert_int_equal(cvopt_node_set_float(last_node(g), "alpha", 0.5f), 0);
        t = add_node(g, "sigmoid", CVOPT_OP_SIGMOID, 1, &t);
        t = add_node(g, "add", CVOPT_OP_ADD, 2, (int32_t[]) { t, add_weights(g, "shift", 2, (int64_t[]) { 1, 10 }, 1.0f) });
        t = add_node(g, "softmax", CVOPT_OP_SOFTMAX, 1, &t);
        assert_int_equal(cvopt_graph_set_inputs(g, 1, &x), 0);
        assert_int_equal(cvopt_graph_set_outputs(g, 2, (int32_t[]) { t, side }), 0);
        assert_int_equal(cvopt_graph_infer_shapes(g), 0);
        compare_float(g, "float cnn", NULL);

        /* Profiled: every node has a host time, and kernels a device time. */
        _cleanup_(cvopt_session_freep) CvoptSession *s = NULL;
        assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "opencl", .profile = true }, &s), 0);
        assert_int_equal(cvopt_session_run(s), 0);
        for (uint32_t k = 0; k < g->n_nodes; k++) {
                assert_true(cvopt_session_node_time_nsec(s, k) > 0);
                if (g->nodes[k].op == CVOPT_OP_CONV)
                        assert_true(cvopt_session_node_device_nsec(s, k) > 0);
        }
        assert_non_null(cvopt_session_device_name(s));
}

/* MatMul -> Transpose (no OpenCL kernel: the CPU) -> Mul by a scalar ->
 * Tanh: the device result crosses to the CPU and back. */
static void test_float_mixed_backends(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        int32_t x, t;
        (void) state;

        assert_int_equal(cvopt_graph_new(&g), 0);
        x = add_activation(g, "x", 2, (int64_t[]) { 5, 33 }, 0, -1);
        t = add_node(g, "matmul", CVOPT_OP_MATMUL, 2, (int32_t[]) { x, add_weights(g, "w", 2, (int64_t[]) { 33, 7 }, 0.3f) });
        t = add_node(g, "transpose", CVOPT_OP_TRANSPOSE, 1, &t);
        assert_int_equal(cvopt_node_set_ints(last_node(g), "perm", 2, (int64_t[]) { 1, 0 }), 0);
        t = add_node(g, "mul", CVOPT_OP_MUL, 2, (int32_t[]) { t, add_weights(g, "k", 1, (int64_t[]) { 1 }, 2.0f) });
        t = add_node(g, "tanh", CVOPT_OP_TANH, 1, &t);
        assert_int_equal(cvopt_graph_set_inputs(g, 1, &x), 0);
        assert_int_equal(cvopt_graph_set_outputs(g, 1, &t), 0);
        assert_int_equal(cvopt_graph_infer_shapes(g), 0);
        compare_float(g, "matmul-transpose-mul-tanh", "transpose");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_float_cnn, cache_setup, cache_teardown),
                cmocka_unit_test_setup_teardown(test_float_mixed_backends, cache_setup, cache_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/* The executor: results against a naive computation, buffer reuse, repeat
 * runs, backend choice and fallback, and clear failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cvopt/cvopt.h"
#include "exec/backend.h"
#include "exec/memory-plan.h"
#include "graph-builder.h"
#include "macro.h"

/* x[1,2,6,6] -> conv1 3x3 (4 ch) -> relu -> conv2 1x1 (4 ch) -> add(relu, conv2) -> y:
 * a residual block, so one activation lives across two nodes. */
#define NET_C_IN 2
#define NET_C 4
#define NET_H 6
#define NET_W 6

static CvoptGraph *make_residual_net(void) {
        CvoptGraph *g;
        int64_t x_dims[4] = { 1, NET_C_IN, NET_H, NET_W };
        int32_t x, c1, r1, c2, y, add_in[2];

        rng_state = 12345;
        assert_int_equal(cvopt_graph_new(&g), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "x", CVOPT_DTYPE_FLOAT32, 4, x_dims, &x), 0);
        c1 = add_conv(g, "conv1", x, NET_C_IN, NET_C, 3, "c1");
        r1 = add_unary(g, "relu1", CVOPT_OP_RELU, c1, "r1");
        c2 = add_conv(g, "conv2", r1, NET_C, NET_C, 1, "c2");
        y = add_unshaped(g, "y");
        add_in[0] = r1;
        add_in[1] = c2;
        assert_int_equal(cvopt_graph_add_node(g, "add", CVOPT_OP_ADD, 2, add_in, 1, &y, NULL), 0);
        assert_int_equal(cvopt_graph_set_inputs(g, 1, &x), 0);
        assert_int_equal(cvopt_graph_set_outputs(g, 1, &y), 0);
        return g;
}

static const float *constant_data(const CvoptGraph *g, const char *name) {
        int i = cvopt_graph_find_tensor(g, name);

        assert_true(i >= 0);
        return g->tensors[i].data;
}

/* Direct convolution, stride 1, "same" zero padding. */
static void naive_conv(const float *x, int c_in, int h, int w, const float *weight, const float *bias, int c_out,
                       int k, float *y) {
        for (int o = 0; o < c_out; o++)
                for (int i = 0; i < h; i++)
                        for (int j = 0; j < w; j++) {
                                double sum = bias[o];

                                for (int c = 0; c < c_in; c++)
                                        for (int di = 0; di < k; di++)
                                                for (int dj = 0; dj < k; dj++) {
                                                        int ii = i + di - k / 2, jj = j + dj - k / 2;

                                                        if (ii < 0 || ii >= h || jj < 0 || jj >= w)
                                                                continue;
                                                        sum += (double) x[(c * h + ii) * w + jj] *
                                                               weight[((o * c_in + c) * k + di) * k + dj];
                                                }
                                y[(o * h + i) * w + j] = (float) sum;
                        }
}

static void naive_residual_net(const CvoptGraph *g, const float *x, float *y) {
        float c1[NET_C * NET_H * NET_W], c2[NET_C * NET_H * NET_W];

        naive_conv(x, NET_C_IN, NET_H, NET_W, constant_data(g, "conv1.w"), constant_data(g, "conv1.b"), NET_C, 3,
                   c1);
        for (size_t i = 0; i < ELEMENTSOF(c1); i++)
                c1[i] = MAX(c1[i], 0.0f);
        naive_conv(c1, NET_C, NET_H, NET_W, constant_data(g, "conv2.w"), constant_data(g, "conv2.b"), NET_C, 1, c2);
        for (size_t i = 0; i < ELEMENTSOF(c1); i++)
                y[i] = c1[i] + c2[i];
}

static void test_residual_net_matches_naive(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_residual_net();
        _cleanup_(cvopt_session_freep) CvoptSession *s = NULL;
        float expected[NET_C * NET_H * NET_W];
        const CvoptTensor *out;
        (void) state;

        assert_int_equal(cvopt_graph_infer_shapes(g), 0);
        assert_int_equal(cvopt_session_new(g, NULL, &s), 0);
        assert_string_equal(cvopt_session_backend_name(s), "cpu-simd");
        assert_int_equal(cvopt_session_n_inputs(s), 1);
        assert_int_equal(cvopt_session_n_outputs(s), 1);
        assert_null(cvopt_session_input(s, 1));
        assert_null(cvopt_session_output(s, 1));

        fill_input(s, 0, 7);
        assert_int_equal(cvopt_session_run(s), 0);
        out = cvopt_session_output(s, 0);
        assert_string_equal(out->name, "y");
        assert_int_equal(out->ndim, 4);
        assert_int_equal(out->dims[1], NET_C);
        assert_int_equal(cvopt_tensor_count(out), NET_C * NET_H * NET_W);
        naive_residual_net(g, cvopt_session_input(s, 0)->data, expected);
        assert_close(out->data, expected, ELEMENTSOF(expected), 1e-5);
}

static void test_run_twice_identical_and_new_input(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_residual_net();
        _cleanup_(cvopt_session_freep) CvoptSession *s = NULL;
        float first[NET_C * NET_H * NET_W], expected[NET_C * NET_H * NET_W];
        const CvoptTensor *out;
        (void) state;

        assert_int_equal(cvopt_graph_infer_shapes(g), 0);
        assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "cpu" }, &s), 0);
        out = cvopt_session_output(s, 0);
        fill_input(s, 0, 99);
        assert_int_equal(cvopt_session_run(s), 0);
        memcpy(first, out->data, sizeof(first));
        assert_int_equal(cvopt_session_run(s), 0);
        assert_memory_equal(first, out->data, sizeof(first));

        /* A new input gives the new answer: no stale buffer is read. */
        fill_input(s, 0, 100);
        assert_int_equal(cvopt_session_run(s), 0);
        assert_memory_not_equal(first, out->data, sizeof(first));
        naive_residual_net(g, cvopt_session_input(s, 0)->data, expected);
        assert_close(out->data, expected, ELEMENTSOF(expected), 1e-5);
}

/* A chain of five layers of equal size needs two live buffers at a time
 * (one read, one written), so the arena must be well under the sum. */
static void test_buffers_are_reused(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        _cleanup_(cvopt_session_freep) CvoptSession *s = NULL;
        int64_t x_dims[4] = { 1, 3, 8, 8 };
        size_t sum = 0, one;
        int32_t x, t;
        (void) state;

        rng_state = 1;
        assert_int_equal(cvopt_graph_new(&g), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "x", CVOPT_DTYPE_FLOAT32, 4, x_dims, &x), 0);
        t = add_conv(g, "conv1", x, 3, 3, 3, "c1");
        t = add_unary(g, "relu1", CVOPT_OP_RELU, t, "r1");
        t = add_conv(g, "conv2", t, 3, 3, 3, "c2");
        t = add_unary(g, "relu2", CVOPT_OP_RELU, t, "r2");
        t = add_conv(g, "conv3", t, 3, 3, 3, "y");
        assert_int_equal(cvopt_graph_set_inputs(g, 1, &x), 0);
        assert_int_equal(cvopt_graph_set_outputs(g, 1, &t), 0);
        assert_int_equal(cvopt_graph_infer_shapes(g), 0);
        assert_int_equal(cvopt_session_new(g, NULL, &s), 0);

        for (uint32_t k = 0; k < g->n_nodes; k++)
                sum += cvopt_tensor_bytes(&g->tensors[g->nodes[k].outputs[0]]);
        one = cvopt_tensor_bytes(&g->tensors[t]);
        assert_int_equal(sum, 5 * one);
        assert_true(cvopt_session_activation_bytes(s) >= 2 * one);
        assert_true(cvopt_session_activation_bytes(s) < sum);
        assert_int_equal(cvopt_session_activation_bytes(s), 2 * ALIGN_TO(one, MEMORY_PLAN_ALIGNMENT));

        fill_input(s, 0, 3);
        assert_int_equal(cvopt_session_run(s), 0);
}

/* The planner directly: random lifetimes and sizes; tensors alive at the
 * same time never share a byte, and the arena is at least the largest set
 * of tensors alive together. */
static void test_memory_plan_random(void **state) {
        MemoryPlanItem items[60];
        (void) state;

        rng_state = 4242;
        for (int round = 0; round < 50; round++) {
                size_t total, live_max = 0;

                for (size_t i = 0; i < ELEMENTSOF(items); i++) {
                        uint32_t first = (uint32_t) random_uniform(0, 40);

                        items[i] = (MemoryPlanItem) {
                                .size_bytes = (size_t) random_uniform(0, 5000),
                                .first = first,
                                .last = first + (uint32_t) random_uniform(0, 6),
                        };
                }
                assert_int_equal(memory_plan(items, ELEMENTSOF(items), &total), 0);
                for (size_t i = 0; i < ELEMENTSOF(items); i++) {
                        assert_int_equal(items[i].offset % MEMORY_PLAN_ALIGNMENT, 0);
                        assert_true(items[i].offset + items[i].size_bytes <= total);
                        for (size_t j = i + 1; j < ELEMENTSOF(items); j++) {
                                bool live_together = items[i].first <= items[j].last &&
                                                     items[j].first <= items[i].last;
                                bool disjoint = items[i].offset + items[i].size_bytes <= items[j].offset ||
                                                items[j].offset + items[j].size_bytes <= items[i].offset;

                                if (live_together && items[i].size_bytes && items[j].size_bytes)
                                        assert_true(disjoint);
                        }
                }
                for (uint32_t step = 0; step < 50; step++) {
                        size_t live = 0;

                        for (size_t i = 0; i < ELEMENTSOF(items); i++)
                                if (items[i].first <= step && step <= items[i].last)
                                        live += items[i].size_bytes;
                        live_max = MAX(live_max, live);
                }
                assert_true(total >= live_max);
        }
}

static void test_unknown_backend(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_residual_net();
        CvoptSession *s = NULL;
        (void) state;

        assert_int_equal(cvopt_graph_infer_shapes(g), 0);
        assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "tpu9000" }, &s), -EINVAL);
        assert_null(s);
        assert_non_null(strstr(cvopt_error_detail(), "unknown backend 'tpu9000'"));
        assert_non_null(strstr(cvopt_error_detail(), "cpu-ref"));
}

static void test_graph_without_shapes(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_residual_net();
        CvoptSession *s = NULL;
        (void) state;

        /* Shape inference was not run: c1, r1, c2, y have no shape. */
        assert_int_equal(cvopt_session_new(g, NULL, &s), -CVOPT_E_SHAPE);
        assert_null(s);
        assert_non_null(strstr(cvopt_error_detail(), "'c1' has no known shape"));
        assert_non_null(strstr(cvopt_error_detail(), "cvopt_graph_infer_shapes"));
}

static void test_profile_times_nodes(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_residual_net();
        _cleanup_(cvopt_session_freep) CvoptSession *plain = NULL, *profiled = NULL;
        uint64_t total = 0;
        (void) state;

        assert_int_equal(cvopt_graph_infer_shapes(g), 0);
        assert_int_equal(cvopt_session_new(g, NULL, &plain), 0);
        assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .profile = true }, &profiled), 0);
        fill_input(plain, 0, 5);
        fill_input(profiled, 0, 5);
        assert_int_equal(cvopt_session_run(plain), 0);
        assert_int_equal(cvopt_session_run(profiled), 0);
        for (uint32_t k = 0; k < g->n_nodes; k++) {
                assert_int_equal(cvopt_session_node_time_nsec(plain, k), 0);
                total += cvopt_session_node_time_nsec(profiled, k);
                assert_string_equal(cvopt_session_node_backend_name(profiled, k), "cpu-ref");
        }
        /* Two convolutions of 6x6x4 outputs take well over a nanosecond. */
        assert_true(total > 0);
        assert_int_equal(cvopt_session_node_time_nsec(profiled, g->n_nodes), 0);
        assert_null(cvopt_session_node_backend_name(profiled, g->n_nodes));
        /* Two sessions over one graph do not disturb each other. */
        assert_memory_equal(cvopt_session_output(plain, 0)->data, cvopt_session_output(profiled, 0)->data,
                            cvopt_tensor_bytes(cvopt_session_output(plain, 0)));
}

/* A test backend that runs Relu only: on success it computes Relu itself
 * (so the test sees which backend ran), and when told to fail it returns a
 * device error, as a lost OpenCL context would. */
typedef struct FakeBackend {
        bool fail;
        unsigned calls;
        unsigned done_calls;
} FakeBackend;

static FakeBackend fake_state;

static int fake_init(const CvoptGraph *g, const CvoptSessionOptions *options, void **ret_ctx) {
        (void) g;
        (void) options;
        *ret_ctx = &fake_state;
        return 0;
}

static void fake_done(void *ctx) {
        ((FakeBackend *) ctx)->done_calls++;
}

static bool fake_supports_op(void *ctx, const CvoptGraph *g, const CvoptNode *n) {
        (void) ctx;
        (void) g;
        return n->op == CVOPT_OP_RELU;
}

static int fake_run_node(void *ctx, const CvoptGraph *g, const CvoptNode *n, uint32_t node_index,
                         const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        FakeBackend *fake = ctx;
        int64_t count = cvopt_tensor_count(inputs[0]);

        (void) g;
        (void) n;
        (void) node_index;
        fake->calls++;
        if (fake->fail) {
                /* Garbage in the output, as a half-finished device copy leaves. */
                memset(outputs[0]->data, 0xff, cvopt_tensor_bytes(outputs[0]));
                return -CVOPT_E_BACKEND;
        }
        for (int64_t i = 0; i < count; i++)
                ((float *) outputs[0]->data)[i] = MAX(((const float *) inputs[0]->data)[i], 0.0f);
        return 0;
}

static const Backend fake_backend = {
        .name = "fake",
        .init = fake_init,
        .done = fake_done,
        .supports_op = fake_supports_op,
        .run_node = fake_run_node,
};

static void test_backend_table_and_fallback(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_residual_net();
        float expected[NET_C * NET_H * NET_W];
        CvoptSession *s = NULL;
        (void) state;

        assert_int_equal(cvopt_graph_infer_shapes(g), 0);

        /* Working backend: Relu runs there, the rest on the reference. */
        fake_state = (FakeBackend) { 0 };
        assert_int_equal(session_new_with_backend(g, NULL, &fake_backend, &s), 0);
        assert_string_equal(cvopt_session_backend_name(s), "fake");
        for (uint32_t k = 0; k < g->n_nodes; k++)
                assert_string_equal(cvopt_session_node_backend_name(s, k),
                                    g->nodes[k].op == CVOPT_OP_RELU ? "fake" : "cpu-ref");
        fill_input(s, 0, 11);
        assert_int_equal(cvopt_session_run(s), 0);
        assert_int_equal(fake_state.calls, 1);
        assert_int_equal(cvopt_session_n_fallbacks(s), 0);
        for (uint32_t k = 0; k < g->n_nodes; k++)
                assert_string_equal(cvopt_session_node_backend_name(s, k),
                                    g->nodes[k].op == CVOPT_OP_RELU ? "fake" : "cpu-ref");
        naive_residual_net(g, cvopt_session_input(s, 0)->data, expected);
        assert_close(cvopt_session_output(s, 0)->data, expected, ELEMENTSOF(expected), 1e-5);
        s = cvopt_session_free(s);
        assert_int_equal(fake_state.done_calls, 1);

        /* Failing backend: the node is redone on the reference, the answer
         * is still right, and the failing device is not asked again. */
        fake_state = (FakeBackend) { .fail = true };
        assert_int_equal(session_new_with_backend(g, NULL, &fake_backend, &s), 0);
        fill_input(s, 0, 11);
        assert_int_equal(cvopt_session_run(s), 0);
        assert_int_equal(cvopt_session_n_fallbacks(s), 1);
        assert_close(cvopt_session_output(s, 0)->data, expected, ELEMENTSOF(expected), 1e-5);
        assert_int_equal(cvopt_session_run(s), 0);
        assert_int_equal(fake_state.calls, 1);
        assert_int_equal(cvopt_session_n_fallbacks(s), 1);
        for (uint32_t k = 0; k < g->n_nodes; k++)
                assert_string_equal(cvopt_session_node_backend_name(s, k), "cpu-ref");
        assert_close(cvopt_session_output(s, 0)->data, expected, ELEMENTSOF(expected), 1e-5);
        s = cvopt_session_free(s);
        assert_int_equal(fake_state.done_calls, 1);
}

/* Folded constants can be graph outputs; inputs can be outputs too. */
static void test_constant_and_input_outputs(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        _cleanup_(cvopt_session_freep) CvoptSession *s = NULL;
        int64_t dims[2] = { 1, 4 };
        float *k = malloc(4 * sizeof(float));
        int32_t x, c, outs[2];
        (void) state;

        assert_non_null(k);
        for (int i = 0; i < 4; i++)
                k[i] = (float) i - 1.5f;
        assert_int_equal(cvopt_graph_new(&g), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "x", CVOPT_DTYPE_FLOAT32, 2, dims, &x), 0);
        assert_int_equal(cvopt_graph_add_constant(g, "k", CVOPT_DTYPE_FLOAT32, 2, dims, k, true, &c), 0);
        outs[0] = x;
        outs[1] = c;
        assert_int_equal(cvopt_graph_set_inputs(g, 1, &x), 0);
        assert_int_equal(cvopt_graph_set_outputs(g, 2, outs), 0);
        assert_int_equal(cvopt_session_new(g, NULL, &s), 0);
        assert_int_equal(cvopt_session_activation_bytes(s), 0);
        fill_input(s, 0, 1);
        assert_int_equal(cvopt_session_run(s), 0);
        assert_memory_equal(cvopt_session_output(s, 0)->data, cvopt_session_input(s, 0)->data, 16);
        assert_memory_equal(cvopt_session_output(s, 1)->data, k, 16);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_residual_net_matches_naive),
                cmocka_unit_test(test_run_twice_identical_and_new_input),
                cmocka_unit_test(test_buffers_are_reused),
                cmocka_unit_test(test_memory_plan_random),
                cmocka_unit_test(test_unknown_backend),
                cmocka_unit_test(test_graph_without_shapes),
                cmocka_unit_test(test_profile_times_nodes),
                cmocka_unit_test(test_backend_table_and_fallback),
                cmocka_unit_test(test_constant_and_input_outputs),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}

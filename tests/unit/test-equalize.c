/* SPDX-License-Identifier: MIT */
/* Cross-layer equalization: a Conv+ReLU -> MaxPool -> depthwise Conv pair
 * computes the same function afterwards, with per-channel weight ranges of
 * the two layers now equal; a fused ReLU6 (Clip) stops it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "macro.h"
#include "quant/equalize.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptGraph *, cvopt_graph_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptSession *, cvopt_session_free);

static uint64_t rng_state = 99;
static float uniform(void) {
        rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
        return (float) ((double) (rng_state >> 11) / (double) (1ull << 53)) * 2.0f - 1.0f;
}

static float *random_floats(size_t n, float scale_per_row, size_t row) {
        float *p = malloc(n * sizeof(float));

        assert_non_null(p);
        for (size_t i = 0; i < n; i++)
                /* Rows of very different ranges, as after BN folding. */
                p[i] = uniform() * (1.0f + scale_per_row * (float) ((i / row) % 4) * (float) ((i / row) % 4));
        return p;
}

/* x [1,3,8,8] -> Conv 3->4 3x3 pad 1 (+act) -> MaxPool 2 -> depthwise Conv 4 3x3 pad 1 -> y */
static CvoptGraph *make(const char *activation) {
        CvoptGraph *g;
        int64_t xd[4] = { 1, 3, 8, 8 }, wad[4] = { 4, 3, 3, 3 }, bad[1] = { 4 }, wbd[4] = { 4, 1, 3, 3 }, bbd[1] = { 4 };
        int64_t pads[4] = { 1, 1, 1, 1 }, two[2] = { 2, 2 };
        int32_t x, wa, ba, h, p, wb, bb, y, n;

        assert_int_equal(cvopt_graph_new(&g), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "x", CVOPT_DTYPE_FLOAT32, 4, xd, &x), 0);
        assert_int_equal(cvopt_graph_add_constant(g, "wa", CVOPT_DTYPE_FLOAT32, 4, wad, random_floats(108, 8, 27), true, &wa), 0);
        assert_int_equal(cvopt_graph_add_constant(g, "ba", CVOPT_DTYPE_FLOAT32, 1, bad, random_floats(4, 0, 1), true, &ba), 0);
        assert_int_equal(cvopt_graph_add_constant(g, "wb", CVOPT_DTYPE_FLOAT32, 4, wbd, random_floats(36, 0.1f, 9), true, &wb), 0);
        assert_int_equal(cvopt_graph_add_constant(g, "bb", CVOPT_DTYPE_FLOAT32, 1, bbd, random_floats(4, 0, 1), true, &bb), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "h", CVOPT_DTYPE_FLOAT32, 0, NULL, &h), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "p", CVOPT_DTYPE_FLOAT32, 0, NULL, &p), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "y", CVOPT_DTYPE_FLOAT32, 0, NULL, &y), 0);
        assert_int_equal(cvopt_graph_add_node(g, "a", CVOPT_OP_CONV, 3, (int32_t[]) { x, wa, ba }, 1, &h, &n), 0);
        assert_int_equal(cvopt_node_set_ints(&g->nodes[n], "pads", 4, pads), 0);
        assert_int_equal(cvopt_node_set_string(&g->nodes[n], "activation", activation), 0);
        if (streq(activation, "Clip")) {
                assert_int_equal(cvopt_node_set_float(&g->nodes[n], "activation_min", 0), 0);
                assert_int_equal(cvopt_node_set_float(&g->nodes[n], "activation_max", 6), 0);
        }
        assert_int_equal(cvopt_graph_add_node(g, "pool", CVOPT_OP_MAX_POOL, 1, &h, 1, &p, &n), 0);
        assert_int_equal(cvopt_node_set_ints(&g->nodes[n], "kernel_shape", 2, two), 0);
        assert_int_equal(cvopt_node_set_ints(&g->nodes[n], "strides", 2, two), 0);
        assert_int_equal(cvopt_graph_add_node(g, "b", CVOPT_OP_CONV, 3, (int32_t[]) { p, wb, bb }, 1, &y, &n), 0);
        assert_int_equal(cvopt_node_set_ints(&g->nodes[n], "pads", 4, pads), 0);
        assert_int_equal(cvopt_node_set_int(&g->nodes[n], "group", 4), 0);
        assert_int_equal(cvopt_graph_set_inputs(g, 1, &x), 0);
        assert_int_equal(cvopt_graph_set_outputs(g, 1, &y), 0);
        assert_int_equal(cvopt_graph_infer_shapes(g), 0);
        return g;
}

static void run(const CvoptGraph *g, float *out) {
        _cleanup_(cvopt_session_freep) CvoptSession *s = NULL;

        assert_int_equal(cvopt_session_new(g, NULL, &s), 0);
        CvoptTensor *in = cvopt_session_input(s, 0);
        rng_state = 5;
        for (int64_t i = 0; i < cvopt_tensor_count(in); i++)
                ((float *) in->data)[i] = uniform();
        assert_int_equal(cvopt_session_run(s), 0);
        memcpy(out, cvopt_session_output(s, 0)->data, 64 * sizeof(float));
}

static float range_row(const float *w, int64_t row, int64_t n) {
        float r = 0;

        for (int64_t k = 0; k < n; k++)
                r = MAX(r, fabsf(w[row * n + k]));
        return r;
}

static void test_equalize_keeps_function(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make("Relu");
        float before[64], after[64];
        (void) state;

        assert_true(graph_has_depthwise(g));
        run(g, before);
        assert_int_equal(equalize_graph(g, 4), 1);
        run(g, after);
        for (int i = 0; i < 64; i++)
                assert_true(fabsf(before[i] - after[i]) <= 1e-5f * (1.0f + fabsf(before[i])));
        const float *wa = g->tensors[cvopt_graph_find_tensor(g, "wa")].data;
        const float *wb = g->tensors[cvopt_graph_find_tensor(g, "wb")].data;
        for (int c = 0; c < 4; c++)
                assert_true(fabsf(range_row(wa, c, 27) - range_row(wb, c, 9)) <= 1e-4f * range_row(wa, c, 27));
}

static void test_clip_stops_equalization(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make("Clip");
        (void) state;

        assert_int_equal(equalize_graph(g, 4), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_equalize_keeps_function),
                cmocka_unit_test(test_clip_stops_equalization),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

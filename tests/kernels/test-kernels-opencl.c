/* SPDX-License-Identifier: MIT */
/* Every OpenCL op against the scalar reference (suite 'kernels', on
 * whatever OpenCL device the machine has: PoCL's CPU device in CI). int8
 * outputs must match byte for byte; shapes hit every tile remainder of the
 * kernels (pixels not a multiple of Q_TILE_P = 64, channels not a
 * multiple of Q_TILE_OC = 16, depths not a multiple of TILE_K = 32 or
 * GEMM_K = 256; both the tiled and the direct convolution),
 * strides, pads, dilations, groups, fused tables and float outputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "opencl-test-util.h"

/* Runs g on cpu-ref and on opencl from the same inputs; every node must
 * have run on OpenCL and every output must match. */
static void compare_with_reference(const CvoptGraph *g, const char *what) {
        _cleanup_(cvopt_session_freep) CvoptSession *ref = NULL, *cl = NULL;

        assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "cpu-ref" }, &ref), 0);
        assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "opencl" }, &cl), 0);
        if (!streq(cvopt_session_backend_name(cl), "opencl"))
                fail_msg("%s: no OpenCL device: %s", what, cvopt_session_backend_reason(cl));
        /* Twice: the second run reuses every buffer and uploaded weight. */
        for (int run = 0; run < 2; run++) {
                fill_inputs(ref, cl);
                assert_int_equal(cvopt_session_run(ref), 0);
                assert_int_equal(cvopt_session_run(cl), 0);
                for (uint32_t k = 0; k < g->n_nodes; k++)
                        if (!streq(cvopt_session_node_backend_name(cl, k), "opencl"))
                                fail_msg("%s: node %u ran on %s", what, k, cvopt_session_node_backend_name(cl, k));
                assert_int_equal(cvopt_session_n_fallbacks(cl), 0);
                for (uint32_t i = 0; i < cvopt_session_n_outputs(ref); i++) {
                        const CvoptTensor *a = cvopt_session_output(ref, i), *b = cvopt_session_output(cl, i);
                        size_t bytes = cvopt_tensor_bytes(a);

                        assert_int_equal(bytes, cvopt_tensor_bytes(b));
                        for (size_t k = 0; k < bytes; k++)
                                if (((const uint8_t *) a->data)[k] != ((const uint8_t *) b->data)[k])
                                        fail_msg("%s: output %u differs from the reference at byte %zu", what, i, k);
                }
        }
}

typedef struct ConvCase {
        const char *what;
        int64_t batch, channels, height, width, out_channels, kernel, stride, pad, dilation, group;
        bool float_output, lut, one_multiplier, no_bias;
} ConvCase;

static CvoptGraph *make_conv(const ConvCase *c, CvoptOp op) {
        CvoptGraph *g;
        const bool conv = op == CVOPT_OP_QCONV;
        const int64_t group_in = c->channels / c->group;
        const int64_t depth = conv ? group_in * c->kernel * c->kernel : c->channels;
        int64_t xdims[4] = { c->batch, c->channels, c->height, c->width }, xdims2[2] = { c->height, c->channels };
        int64_t wdims[4] = { c->out_channels, group_in, c->kernel, c->kernel }, wdims2[2] = { c->out_channels, c->channels };
        int8_t *w = malloc((size_t) (c->out_channels * depth));
        int32_t *b = malloc((size_t) c->out_channels * sizeof(int32_t));
        int64_t mult[512], shift[512], lut[256];
        float out_scale[512];
        int32_t ix, iw, ib, iy, node;

        assert_true(c->out_channels <= 512);
        assert_int_equal(cvopt_graph_new(&g), 0);
        for (int64_t i = 0; i < c->out_channels * depth; i++)
                w[i] = (int8_t) ((int) (rng() % 255) - 127);
        for (int64_t o = 0; o < c->out_channels; o++) {
                int32_t m, s;

                b[o] = (int32_t) (rng() % 200001) - 100000;
                assert_int_equal(cvopt_quantize_multiplier(0.5 / (double) depth / (1 + o % 5), &m, &s), 0);
                mult[o] = m;
                shift[o] = s;
                out_scale[o] = 0.001f * (float) (1 + o) / 3.0f;
        }
        for (int i = 0; i < 256; i++)
                lut[i] = (255 - i) / 2;
        ix = add_activation(g, "x", conv ? 4 : 2, conv ? xdims : xdims2, 0.02f, 7);
        assert_int_equal(cvopt_graph_add_constant(g, "w", CVOPT_DTYPE_INT8, conv ? 4 : 2, conv ? wdims : wdims2, w, true,
                                                  &iw), 0);
        assert_int_equal(cvopt_graph_add_constant(g, "b", CVOPT_DTYPE_INT32, 1, (int64_t[]) { c->out_channels }, b,
                                                  true, &ib), 0);
        iy = add_activation(g, "y", 0, NULL, 0.05f, c->float_output ? -1 : 3);
        assert_int_equal(cvopt_graph_add_node(g, "n", op, c->no_bias ? 2 : 3, (int32_t[]) { ix, iw, ib }, 1, &iy,
                                              &node), 0);
        CvoptNode *n = &g->nodes[node];
        if (conv) {
                assert_int_equal(cvopt_node_set_ints(n, "pads", 4, (int64_t[]) { c->pad, c->pad, c->pad + 1, c->pad }), 0);
                assert_int_equal(cvopt_node_set_ints(n, "strides", 2, (int64_t[]) { c->stride, c->stride }), 0);
                assert_int_equal(cvopt_node_set_ints(n, "dilations", 2, (int64_t[]) { c->dilation, c->dilation }), 0);
                assert_int_equal(cvopt_node_set_int(n, "group", c->group), 0);
        }
        if (c->float_output)
                assert_int_equal(cvopt_node_set_floats(n, "out_scale", c->one_multiplier ? 1 : (uint32_t) c->out_channels,
                                                       out_scale), 0);
        else {
                uint32_t count = c->one_multiplier ? 1 : (uint32_t) c->out_channels;

                assert_int_equal(cvopt_node_set_ints(n, "multiplier", count, mult), 0);
                assert_int_equal(cvopt_node_set_ints(n, "shift", count, shift), 0);
                if (c->lut)
                        assert_int_equal(cvopt_node_set_ints(n, "lut", 256, lut), 0);
                else {
                        /* A fused ReLU6-like clamp. */
                        assert_int_equal(cvopt_node_set_int(n, "out_min", 3), 0);
                        assert_int_equal(cvopt_node_set_int(n, "out_max", 200), 0);
                }
        }
        assert_int_equal(cvopt_graph_set_inputs(g, 1, &ix), 0);
        assert_int_equal(cvopt_graph_set_outputs(g, 1, &iy), 0);
        assert_int_equal(cvopt_graph_infer_shapes(g), 0);
        return g;
}

static const ConvCase conv_cases[] = {
        { "conv 3x3 1->32 28x28 pad 1 (first layer)", 1, 1, 28, 28, 32, 3, 1, 1, 1, 1, false, false, false, false },
        { "conv 3x3 13->11 9x7 stride 2, batch 2", 2, 13, 9, 7, 11, 3, 2, 1, 1, 1, false, false, false, false },
        { "conv 3x3 32->20 14x14 lut", 1, 32, 14, 14, 20, 3, 1, 1, 1, 1, false, true, false, false },
        { "conv 1x1 17->9 5x5 one multiplier no bias", 1, 17, 5, 5, 9, 1, 1, 0, 1, 1, false, false, true, true },
        { "conv 3x3 dilation 2 pad 2 (direct)", 1, 5, 11, 10, 7, 3, 1, 2, 2, 1, false, false, false, false },
        { "conv 3x3 dilation 2 pad 2 stride 2 (tiled)", 1, 9, 13, 10, 19, 3, 2, 2, 2, 1, false, false, false, false },
        { "conv 5x5 no pad float output", 1, 3, 12, 12, 10, 5, 1, 0, 1, 1, true, false, false, false },
        { "depthwise 3x3 24 ch 13x13 stride 2", 1, 24, 13, 13, 24, 3, 2, 1, 1, 24, false, false, false, false },
        { "depthwise 3x3 x2 multiplier 6->12", 1, 6, 9, 9, 12, 3, 1, 1, 1, 6, false, true, false, false },
        { "grouped 3x3 16->24 group 2", 1, 16, 7, 6, 24, 3, 1, 1, 1, 2, false, false, false, false },
        { "grouped 3x3 16->20 group 4 float output", 1, 16, 7, 6, 20, 3, 1, 1, 1, 4, true, false, true, false },
};

static const ConvCase gemm_cases[] = {
        { "gemm 1x6272 -> 160", 1, 6272, 1, 0, 160, 0, 0, 0, 0, 1, false, false, false, false },
        { "gemm 3x77 -> 13 lut", 1, 77, 3, 0, 13, 0, 0, 0, 0, 1, false, true, false, false },
        { "gemm 2x300 -> 70 one multiplier no bias", 1, 300, 2, 0, 70, 0, 0, 0, 0, 1, false, false, true, true },
        { "gemm 1x160 -> 10 float output", 1, 160, 1, 0, 10, 0, 0, 0, 0, 1, true, false, false, false },
};

static void test_qconv(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(conv_cases); i++) {
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_conv(&conv_cases[i], CVOPT_OP_QCONV);
                compare_with_reference(g, conv_cases[i].what);
        }
}

static void test_qgemm(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(gemm_cases); i++) {
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_conv(&gemm_cases[i], CVOPT_OP_QGEMM);
                compare_with_reference(g, gemm_cases[i].what);
        }
}

/* A pool over x [1, c, h, w] (scale 0.02, zero point 7). */
static CvoptGraph *make_pool(CvoptOp op, int64_t c, int64_t h, int64_t w, int64_t kernel, int64_t stride, int64_t pad,
                             bool ceil_mode, bool count_pad) {
        CvoptGraph *g;
        const bool is_max = op == CVOPT_OP_QMAX_POOL || op == CVOPT_OP_QGLOBAL_MAX_POOL;
        const bool global = op == CVOPT_OP_QGLOBAL_MAX_POOL || op == CVOPT_OP_QGLOBAL_AVERAGE_POOL;
        int32_t ix, iy, node;

        assert_int_equal(cvopt_graph_new(&g), 0);
        ix = add_activation(g, "x", 4, (int64_t[]) { 1, c, h, w }, 0.02f, 7);
        iy = add_activation(g, "y", 0, NULL, is_max ? 0.02f : 0.03f, is_max ? 7 : 4);
        assert_int_equal(cvopt_graph_add_node(g, "pool", op, 1, &ix, 1, &iy, &node), 0);
        CvoptNode *n = &g->nodes[node];
        if (!global) {
                assert_int_equal(cvopt_node_set_ints(n, "kernel_shape", 2, (int64_t[]) { kernel, kernel }), 0);
                assert_int_equal(cvopt_node_set_ints(n, "strides", 2, (int64_t[]) { stride, stride }), 0);
                assert_int_equal(cvopt_node_set_ints(n, "pads", 4, (int64_t[]) { pad, pad, pad, pad }), 0);
                assert_int_equal(cvopt_node_set_int(n, "ceil_mode", ceil_mode), 0);
                assert_int_equal(cvopt_node_set_int(n, "count_include_pad", count_pad), 0);
        }
        if (!is_max) {
                uint32_t counts = global ? 1 : (uint32_t) (kernel * kernel) + 1;
                int64_t mult[64], shift[64];

                for (uint32_t k = 0; k < counts; k++) {
                        int32_t m, s;
                        double area = global ? (double) (h * w) : (double) MAX(k, 1u);

                        assert_int_equal(cvopt_quantize_multiplier(0.02 / 0.03 / area, &m, &s), 0);
                        mult[k] = m;
                        shift[k] = s;
                }
                assert_int_equal(cvopt_node_set_ints(n, "multiplier", counts, mult), 0);
                assert_int_equal(cvopt_node_set_ints(n, "shift", counts, shift), 0);
        }
        assert_int_equal(cvopt_graph_set_inputs(g, 1, &ix), 0);
        assert_int_equal(cvopt_graph_set_outputs(g, 1, &iy), 0);
        assert_int_equal(cvopt_graph_infer_shapes(g), 0);
        return g;
}

static void test_qpools(void **state) {
        static const struct {
                const char *what;
                CvoptOp op;
                int64_t c, h, w, kernel, stride, pad;
                bool ceil_mode, count_pad;
        } cases[] = {
                { "max 2x2 s2 28x28", CVOPT_OP_QMAX_POOL, 32, 28, 28, 2, 2, 0, false, false },
                { "max 3x3 s2 pad 1 ceil 13x11", CVOPT_OP_QMAX_POOL, 5, 13, 11, 3, 2, 1, true, false },
                { "avg 3x3 s1 pad 1 7x9", CVOPT_OP_QAVERAGE_POOL, 3, 7, 9, 3, 1, 1, false, false },
                { "avg 3x3 s2 pad 1 count_include_pad ceil", CVOPT_OP_QAVERAGE_POOL, 4, 10, 9, 3, 2, 1, true, true },
                { "global avg 7x7 x 65", CVOPT_OP_QGLOBAL_AVERAGE_POOL, 65, 7, 7, 0, 0, 0, false, false },
                { "global avg 23x19", CVOPT_OP_QGLOBAL_AVERAGE_POOL, 3, 23, 19, 0, 0, 0, false, false },
                { "global max 9x9 x 17", CVOPT_OP_QGLOBAL_MAX_POOL, 17, 9, 9, 0, 0, 0, false, false },
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_pool(cases[i].op, cases[i].c, cases[i].h, cases[i].w,
                                                                       cases[i].kernel, cases[i].stride, cases[i].pad,
                                                                       cases[i].ceil_mode, cases[i].count_pad);
                compare_with_reference(g, cases[i].what);
        }
}

/* Quantize -> QLut -> QAdd(with a second input) -> QConcat(with a third)
 * -> Flatten -> Dequantize: the element-wise ops, the float borders, a
 * shape op, and device-resident intermediates in one chain. */
static void test_qeltwise_chain(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        const int64_t dims[4] = { 1, 5, 7, 9 }, dims3[4] = { 1, 3, 7, 9 };
        int64_t lut[256], concat_mult[2], concat_shift[2];
        int32_t xf, q, l, b, s, c, cat, flat, out, node, inputs[3];
        int32_t m, sh;
        (void) state;

        assert_int_equal(cvopt_graph_new(&g), 0);
        xf = add_activation(g, "xf", 4, dims, 0, -1);
        b = add_activation(g, "b", 4, dims, 0.03f, 120);
        c = add_activation(g, "c", 4, dims3, 0.5f, 0);
        q = add_activation(g, "q", 0, NULL, 0.02f, 128);
        l = add_activation(g, "l", 0, NULL, 0.02f, 128);
        s = add_activation(g, "s", 0, NULL, 0.04f, 100);
        cat = add_activation(g, "cat", 0, NULL, 0.04f, 100);
        flat = add_activation(g, "flat", 0, NULL, 0.04f, 100);
        out = add_activation(g, "out", 0, NULL, 0, -1);

        assert_int_equal(cvopt_graph_add_node(g, "quantize", CVOPT_OP_QUANTIZE, 1, &xf, 1, &q, &node), 0);
        assert_int_equal(cvopt_node_set_float(&g->nodes[node], "inv_scale", 1.0f / 0.02f), 0);
        for (int i = 0; i < 256; i++)
                lut[i] = i < 128 ? 128 : i; /* ReLU around zero point 128 */
        assert_int_equal(cvopt_graph_add_node(g, "lut", CVOPT_OP_QLUT, 1, &q, 1, &l, &node), 0);
        assert_int_equal(cvopt_node_set_ints(&g->nodes[node], "lut", 256, lut), 0);

        inputs[0] = l;
        inputs[1] = b;
        assert_int_equal(cvopt_graph_add_node(g, "add", CVOPT_OP_QADD, 2, inputs, 1, &s, &node), 0);
        assert_int_equal(cvopt_quantize_multiplier(0.02 / 0.04 / 2, &m, &sh), 0);
        int64_t add_mult[2] = { m, 0 }, add_shift = sh - 1;
        assert_int_equal(cvopt_quantize_multiplier(0.03 / 0.04 / 2, &m, &sh), 0);
        add_mult[1] = (int64_t) m >> (sh - 1 - add_shift); /* same shift for both */
        assert_int_equal(cvopt_node_set_ints(&g->nodes[node], "multiplier", 2, add_mult), 0);
        assert_int_equal(cvopt_node_set_int(&g->nodes[node], "shift", add_shift), 0);
        assert_int_equal(cvopt_node_set_int(&g->nodes[node], "out_min", 100), 0);

        inputs[0] = s;
        inputs[1] = c;
        assert_int_equal(cvopt_graph_add_node(g, "concat", CVOPT_OP_QCONCAT, 2, inputs, 1, &cat, &node), 0);
        concat_mult[0] = 1 << 30;
        concat_shift[0] = 30;
        assert_int_equal(cvopt_quantize_multiplier(0.5 / 0.04, &m, &sh), 0);
        concat_mult[1] = m;
        concat_shift[1] = sh;
        assert_int_equal(cvopt_node_set_int(&g->nodes[node], "axis", 1), 0);
        assert_int_equal(cvopt_node_set_ints(&g->nodes[node], "multiplier", 2, concat_mult), 0);
        assert_int_equal(cvopt_node_set_ints(&g->nodes[node], "shift", 2, concat_shift), 0);

        assert_int_equal(cvopt_graph_add_node(g, "flatten", CVOPT_OP_FLATTEN, 1, &cat, 1, &flat, &node), 0);
        assert_int_equal(cvopt_graph_add_node(g, "dequantize", CVOPT_OP_DEQUANTIZE, 1, &flat, 1, &out, &node), 0);
        assert_int_equal(cvopt_graph_set_inputs(g, 3, (int32_t[]) { xf, b, c }), 0);
        /* The quantized intermediate is an output too: downloaded mid-chain. */
        assert_int_equal(cvopt_graph_set_outputs(g, 2, (int32_t[]) { out, l }), 0);
        assert_int_equal(cvopt_graph_infer_shapes(g), 0);
        compare_with_reference(g, "quantize-lut-add-concat-flatten-dequantize");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_qconv, cache_setup, cache_teardown),
                cmocka_unit_test_setup_teardown(test_qgemm, cache_setup, cache_teardown),
                cmocka_unit_test_setup_teardown(test_qpools, cache_setup, cache_teardown),
                cmocka_unit_test_setup_teardown(test_qeltwise_chain, cache_setup, cache_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

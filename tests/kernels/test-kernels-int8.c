/* SPDX-License-Identifier: MIT */
/* Every int8 op of every CPU backend against the scalar reference, byte
 * for byte (suite 'kernels'). Shapes are chosen to hit every remainder of
 * the kernels' blocking: channels not a multiple of 8, pixels not a
 * multiple of 32, depths not a multiple of 4 or 64, strides, pads,
 * dilations, and float outputs. The SIMD backend runs each case on 1, 2
 * and 3 threads, every node split into the smallest tasks
 * (CVOPT_CPU_SPLIT=all), since these shapes are below the size where it
 * splits by itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cpu/q-simd.h"
#include "cvopt/cvopt.h"
#include "macro.h"

#define QTEST_RNG_SEED 0x2545f4914f6cdd1dull
#include "../unit/quant-test-util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptGraph *, cvopt_graph_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptSession *, cvopt_session_free);

typedef struct Case {
        const char *what;
        CvoptOp op;
        int64_t channels, height, width, out_channels, kernel, stride, pad, dilation;
        bool float_output;
} Case;

static CvoptGraph *make_graph(const Case *c) {
        CvoptGraph *g;
        int32_t ix, iw, ib, iy, node;
        int64_t depth = c->op == CVOPT_OP_QCONV ? c->channels * c->kernel * c->kernel : c->channels;
        int64_t xdims[4] = { 1, c->channels, c->height, c->width }, xdims2[2] = { c->height, c->channels };
        int64_t wdims[4] = { c->out_channels, c->channels, c->kernel, c->kernel }, wdims2[2] = { c->out_channels, c->channels };
        int64_t bdims[1] = { c->out_channels };
        int8_t *w = malloc((size_t) (c->out_channels * depth));
        int32_t *b = malloc((size_t) c->out_channels * sizeof(int32_t));
        int64_t *mult = malloc((size_t) c->out_channels * sizeof(int64_t)), *shift = malloc((size_t) c->out_channels * sizeof(int64_t));
        float *out_scale = malloc((size_t) c->out_channels * sizeof(float));

        assert_int_equal(cvopt_graph_new(&g), 0);
        for (int64_t i = 0; i < c->out_channels * depth; i++)
                w[i] = (int8_t) ((int) (rng() % 255) - 127); /* full range: catches any saturation */
        for (int64_t o = 0; o < c->out_channels; o++) {
                int32_t m, s;
                b[o] = (int32_t) (rng() % 200001) - 100000;
                assert_int_equal(cvopt_quantize_multiplier(0.5 / (double) depth / (1 + o % 5), &m, &s), 0);
                mult[o] = m;
                shift[o] = s;
                out_scale[o] = 0.001f * (float) (1 + o);
        }
        if (c->op == CVOPT_OP_QCONV) {
                assert_int_equal(cvopt_graph_add_tensor(g, "x", CVOPT_DTYPE_UINT8, 4, xdims, &ix), 0);
                assert_int_equal(cvopt_graph_add_constant(g, "w", CVOPT_DTYPE_INT8, 4, wdims, w, true, &iw), 0);
        } else {
                assert_int_equal(cvopt_graph_add_tensor(g, "x", CVOPT_DTYPE_UINT8, 2, xdims2, &ix), 0);
                assert_int_equal(cvopt_graph_add_constant(g, "w", CVOPT_DTYPE_INT8, 2, wdims2, w, true, &iw), 0);
        }
        assert_int_equal(cvopt_graph_add_constant(g, "b", CVOPT_DTYPE_INT32, 1, bdims, b, true, &ib), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "y", c->float_output ? CVOPT_DTYPE_FLOAT32 : CVOPT_DTYPE_UINT8, 0,
                                                NULL, &iy), 0);
        set_quant(&g->tensors[ix], 0.02f, 7);
        if (!c->float_output)
                set_quant(&g->tensors[iy], 0.05f, 3);
        assert_int_equal(cvopt_graph_add_node(g, "n", c->op, 3, (int32_t[]) { ix, iw, ib }, 1, &iy, &node), 0);
        CvoptNode *n = &g->nodes[node];
        if (c->op == CVOPT_OP_QCONV) {
                int64_t pads[4] = { c->pad, c->pad, c->pad, c->pad }, strides[2] = { c->stride, c->stride };
                int64_t dil[2] = { c->dilation, c->dilation };
                assert_int_equal(cvopt_node_set_ints(n, "pads", 4, pads), 0);
                assert_int_equal(cvopt_node_set_ints(n, "strides", 2, strides), 0);
                assert_int_equal(cvopt_node_set_ints(n, "dilations", 2, dil), 0);
        }
        if (c->float_output)
                assert_int_equal(cvopt_node_set_floats(n, "out_scale", (uint32_t) c->out_channels, out_scale), 0);
        else {
                assert_int_equal(cvopt_node_set_ints(n, "multiplier", (uint32_t) c->out_channels, mult), 0);
                assert_int_equal(cvopt_node_set_ints(n, "shift", (uint32_t) c->out_channels, shift), 0);
        }
        assert_int_equal(cvopt_graph_set_inputs(g, 1, &ix), 0);
        assert_int_equal(cvopt_graph_set_outputs(g, 1, &iy), 0);
        assert_int_equal(cvopt_graph_infer_shapes(g), 0);
        free(mult);
        free(shift);
        free(out_scale);
        return g;
}

/* The SIMD backend on threads threads (split into the smallest tasks when
 * more than 1). */
static int simd_session_new(const CvoptGraph *g, int threads, CvoptSession **ret) {
        int r;

        if (threads > 1)
                setenv("CVOPT_CPU_SPLIT", "all", 1);
        r = cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "cpu-simd", .threads = threads }, ret);
        unsetenv("CVOPT_CPU_SPLIT");
        return r;
}

static void run_case(const Case *c, const char *isa, int threads) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_graph(c);
        _cleanup_(cvopt_session_freep) CvoptSession *ref = NULL;
        _cleanup_(cvopt_session_freep) CvoptSession *simd = NULL;

        setenv("CVOPT_CPU_ISA", isa, 1);
        assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "cpu-ref" }, &ref), 0);
        assert_int_equal(simd_session_new(g, threads, &simd), 0);
        CvoptTensor *a = cvopt_session_input(ref, 0), *b = cvopt_session_input(simd, 0);
        /* Inputs over the whole byte range, with runs of the extremes. */
        for (size_t i = 0; i < cvopt_tensor_bytes(a); i++) {
                uint8_t v = (uint8_t) rng();
                if (i % 97 < 5)
                        v = 255;
                ((uint8_t *) a->data)[i] = ((uint8_t *) b->data)[i] = v;
        }
        assert_int_equal(cvopt_session_run(ref), 0);
        assert_int_equal(cvopt_session_run(simd), 0);
        assert_string_equal(cvopt_session_node_backend_name(simd, 0), "cpu-simd");
        const CvoptTensor *ya = cvopt_session_output(ref, 0), *yb = cvopt_session_output(simd, 0);
        assert_int_equal(cvopt_tensor_bytes(ya), cvopt_tensor_bytes(yb));
        if (memcmp(ya->data, yb->data, cvopt_tensor_bytes(ya)) != 0)
                fail_msg("%s on %s, %d threads: outputs differ from the reference", c->what, isa, threads);
        unsetenv("CVOPT_CPU_ISA");
}

static const Case cases[] = {
        { "conv 3x3 1->32 28x28 pad 1 (first layer)", CVOPT_OP_QCONV, 1, 28, 28, 32, 3, 1, 1, 1, false },
        { "conv 3x3 13->11 9x7 stride 2", CVOPT_OP_QCONV, 13, 9, 7, 11, 3, 2, 1, 1, false },
        { "conv 3x3 32->64 14x14", CVOPT_OP_QCONV, 32, 14, 14, 64, 3, 1, 1, 1, false },
        { "conv 1x1 17->9 5x5", CVOPT_OP_QCONV, 17, 5, 5, 9, 1, 1, 0, 1, false },
        { "conv 3x3 dilation 2 pad 2", CVOPT_OP_QCONV, 5, 11, 10, 7, 3, 1, 2, 2, false },
        { "conv 5x5 no pad float output", CVOPT_OP_QCONV, 3, 12, 12, 10, 5, 1, 0, 1, true },
        { "gemm 1x6272 -> 160", CVOPT_OP_QGEMM, 6272, 1, 0, 160, 0, 0, 0, 0, false },
        { "gemm 3x77 -> 13", CVOPT_OP_QGEMM, 77, 3, 0, 13, 0, 0, 0, 0, false },
        { "gemm 1x160 -> 10 float output", CVOPT_OP_QGEMM, 160, 1, 0, 10, 0, 0, 0, 0, true },
};

static void test_simd_matches_reference(void **state) {
        QIsa best = q_isa_detect();
        (void) state;

        if (best == Q_ISA_NONE)
                skip();
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                for (int threads = 1; threads <= 3; threads++) {
                        run_case(&cases[i], "avx2", threads);
                        if (best == Q_ISA_AVX512_VNNI)
                                run_case(&cases[i], "avx512-vnni", threads);
                }
}

/* The 2x2 stride-2 max pool: odd channel counts and widths that leave
 * every remainder of the 32-wide loop. */
static void test_maxpool2(void **state) {
        static const int64_t shapes[][3] = { { 32, 28, 28 }, { 3, 14, 14 }, { 5, 10, 70 }, { 1, 2, 2 }, { 2, 6, 130 },
                                             { 4, 4, 32 }, { 2, 4, 18 }, { 3, 6, 10 }, { 2, 2, 8 } };
        (void) state;

        if (q_isa_detect() == Q_ISA_NONE)
                skip();
        for (size_t t = 0; t < ELEMENTSOF(shapes) * 3; t++) {
                const int threads = 1 + (int) (t / ELEMENTSOF(shapes));
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                _cleanup_(cvopt_session_freep) CvoptSession *ref = NULL, *simd = NULL;
                const int64_t *shape = shapes[t % ELEMENTSOF(shapes)];
                int64_t dims[4] = { 1, shape[0], shape[1], shape[2] }, two[2] = { 2, 2 };
                int32_t ix, iy;

                assert_int_equal(cvopt_graph_new(&g), 0);
                assert_int_equal(cvopt_graph_add_tensor(g, "x", CVOPT_DTYPE_UINT8, 4, dims, &ix), 0);
                assert_int_equal(cvopt_graph_add_tensor(g, "y", CVOPT_DTYPE_UINT8, 0, NULL, &iy), 0);
                set_quant(&g->tensors[ix], 0.1f, 9);
                set_quant(&g->tensors[iy], 0.1f, 9);
                assert_int_equal(cvopt_graph_add_node(g, "pool", CVOPT_OP_QMAX_POOL, 1, &ix, 1, &iy, NULL), 0);
                assert_int_equal(cvopt_node_set_ints(&g->nodes[0], "kernel_shape", 2, two), 0);
                assert_int_equal(cvopt_node_set_ints(&g->nodes[0], "strides", 2, two), 0);
                assert_int_equal(cvopt_graph_set_inputs(g, 1, &ix), 0);
                assert_int_equal(cvopt_graph_set_outputs(g, 1, &iy), 0);
                assert_int_equal(cvopt_graph_infer_shapes(g), 0);
                assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "cpu-ref" }, &ref), 0);
                assert_int_equal(simd_session_new(g, threads, &simd), 0);
                CvoptTensor *a = cvopt_session_input(ref, 0), *b = cvopt_session_input(simd, 0);
                for (size_t i = 0; i < cvopt_tensor_bytes(a); i++)
                        ((uint8_t *) a->data)[i] = ((uint8_t *) b->data)[i] = (uint8_t) rng();
                assert_int_equal(cvopt_session_run(ref), 0);
                assert_int_equal(cvopt_session_run(simd), 0);
                assert_string_equal(cvopt_session_node_backend_name(simd, 0), "cpu-simd");
                assert_memory_equal(cvopt_session_output(ref, 0)->data, cvopt_session_output(simd, 0)->data,
                                    cvopt_tensor_bytes(cvopt_session_output(ref, 0)));
        }
}

/* Adds a QConv (3x3, pad 1) from x to a new uint8 tensor; returns it. */
static int32_t add_conv(CvoptGraph *g, const char *name, int32_t x, int64_t in_channels, int64_t out_channels) {
        const int64_t depth = in_channels * 9;
        int64_t wdims[4] = { out_channels, in_channels, 3, 3 }, bdims[1] = { out_channels };
        int64_t pads[4] = { 1, 1, 1, 1 }, mult[1], shift[1];
        /* The graph takes the weights and biases over. */
        int8_t *w = malloc((size_t) (out_channels * depth));
        int32_t *b = malloc((size_t) out_channels * sizeof(int32_t));
        char wname[64], bname[64];
        int32_t iw, ib, iy, node, m, sh;

        for (int64_t i = 0; i < out_channels * depth; i++)
                w[i] = (int8_t) ((int) (rng() % 255) - 127);
        for (int64_t o = 0; o < out_channels; o++)
                b[o] = (int32_t) (rng() % 20001) - 10000;
        assert_int_equal(cvopt_quantize_multiplier(0.3 / (double) depth, &m, &sh), 0);
        mult[0] = m;
        shift[0] = sh;
        snprintf(wname, sizeof(wname), "%s.w", name);
        snprintf(bname, sizeof(bname), "%s.b", name);
        assert_int_equal(cvopt_graph_add_constant(g, wname, CVOPT_DTYPE_INT8, 4, wdims, w, true, &iw), 0);
        assert_int_equal(cvopt_graph_add_constant(g, bname, CVOPT_DTYPE_INT32, 1, bdims, b, true, &ib), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, name, CVOPT_DTYPE_UINT8, 0, NULL, &iy), 0);
        set_quant(&g->tensors[iy], 0.05f, 3);
        assert_int_equal(cvopt_graph_add_node(g, name, CVOPT_OP_QCONV, 3, (int32_t[]) { x, iw, ib }, 1, &iy, &node), 0);
        assert_int_equal(cvopt_node_set_ints(&g->nodes[node], "pads", 4, pads), 0);
        assert_int_equal(cvopt_node_set_ints(&g->nodes[node], "multiplier", 1, mult), 0);
        assert_int_equal(cvopt_node_set_ints(&g->nodes[node], "shift", 1, shift), 0);
        return iy;
}

/* A whole int8 graph (conv, pool, conv) on 1 and 4 threads: the same
 * bytes, both with the backend's own choice of which nodes to split (the
 * first conv is large enough to be split) and with every node split. */
static void test_session_threads(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        int64_t xdims[4] = { 1, 8, 48, 48 }, two[2] = { 2, 2 };
        int32_t ix, ic1, ip, ic2;
        (void) state;

        if (q_isa_detect() == Q_ISA_NONE)
                skip();
        assert_int_equal(cvopt_graph_new(&g), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "x", CVOPT_DTYPE_UINT8, 4, xdims, &ix), 0);
        set_quant(&g->tensors[ix], 0.02f, 7);
        ic1 = add_conv(g, "conv1", ix, 8, 32);
        assert_int_equal(cvopt_graph_add_tensor(g, "pool", CVOPT_DTYPE_UINT8, 0, NULL, &ip), 0);
        set_quant(&g->tensors[ip], 0.05f, 3);
        assert_int_equal(cvopt_graph_add_node(g, "pool", CVOPT_OP_QMAX_POOL, 1, &ic1, 1, &ip, NULL), 0);
        assert_int_equal(cvopt_node_set_ints(&g->nodes[g->n_nodes - 1], "kernel_shape", 2, two), 0);
        assert_int_equal(cvopt_node_set_ints(&g->nodes[g->n_nodes - 1], "strides", 2, two), 0);
        ic2 = add_conv(g, "conv2", ip, 32, 20);
        assert_int_equal(cvopt_graph_set_inputs(g, 1, &ix), 0);
        assert_int_equal(cvopt_graph_set_outputs(g, 1, &ic2), 0);
        assert_int_equal(cvopt_graph_infer_shapes(g), 0);

        for (int forced = 0; forced <= 1; forced++) {
                _cleanup_(cvopt_session_freep) CvoptSession *one = NULL, *four = NULL;

                if (forced)
                        setenv("CVOPT_CPU_SPLIT", "all", 1);
                assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "cpu-simd", .threads = 1 }, &one), 0);
                assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "cpu-simd", .threads = 4 }, &four), 0);
                unsetenv("CVOPT_CPU_SPLIT");
                for (uint32_t k = 0; k < g->n_nodes; k++)
                        assert_string_equal(cvopt_session_node_backend_name(four, k), "cpu-simd");
                /* Several runs with new inputs: the pool's workers go back
                 * to waiting between them. */
                for (int run = 0; run < 5; run++) {
                        CvoptTensor *a = cvopt_session_input(one, 0), *b = cvopt_session_input(four, 0);
                        for (size_t i = 0; i < cvopt_tensor_bytes(a); i++)
                                ((uint8_t *) a->data)[i] = ((uint8_t *) b->data)[i] = (uint8_t) rng();
                        assert_int_equal(cvopt_session_run(one), 0);
                        assert_int_equal(cvopt_session_run(four), 0);
                        const CvoptTensor *ya = cvopt_session_output(one, 0), *yb = cvopt_session_output(four, 0);
                        assert_int_equal(cvopt_tensor_bytes(ya), cvopt_tensor_bytes(yb));
                        if (memcmp(ya->data, yb->data, cvopt_tensor_bytes(ya)) != 0)
                                fail_msg("run %d%s: 4 threads differ from 1", run, forced ? " (every node split)" : "");
                }
        }
}

/* threads outside 0..256 is an error, not a crash or a silent clamp. */
static void test_threads_range(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_graph(&cases[0]);
        CvoptSession *s = NULL;
        (void) state;

        if (q_isa_detect() == Q_ISA_NONE)
                skip();
        assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "cpu-simd", .threads = -1 }, &s), -EINVAL);
        assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "cpu-simd", .threads = 257 }, &s), -EINVAL);
        assert_null(s);
}

/* The vectorized requantization against the scalar formula, over every
 * multiplier size (shifts 1..62), both clamps and odd lengths. */
static void test_requant_row(void **state) {
        QIsa best = q_isa_detect();
        int32_t acc[67];
        uint8_t want[67], got[67];
        (void) state;

        if (best == Q_ISA_NONE)
                skip();
        for (int trial = 0; trial < 3000; trial++) {
                double real = ldexp(1.0 + (rng() % 1000) / 1000.0, (int) (rng() % 60) - 45);
                int32_t m, sh, zp = (int32_t) (rng() % 256), lo = (int32_t) (rng() % 40), hi = 215 + (int32_t) (rng() % 41);
                int32_t bias = (int32_t) (rng() % 2000001) - 1000000;
                int64_t n = rng() % 67;

                if (cvopt_quantize_multiplier(real, &m, &sh) < 0)
                        continue;
                for (int64_t i = 0; i < n; i++)
                        acc[i] = (int32_t) (rng() % 2000000001u) - 1000000000 - bias / 2;
                for (int64_t i = 0; i < n; i++)
                        want[i] = cvopt_requantize(acc[i] + bias, m, sh, zp, lo, hi);
                for (QIsa isa = Q_ISA_AVX2; isa <= best; isa++) {
                        memset(got, 0xAA, sizeof(got));
                        q_requant_row(isa, acc, n, bias, m, sh, zp, lo, hi, got);
                        if (memcmp(want, got, (size_t) n) != 0)
                                fail_msg("%s requantization differs (m %d, shift %d, zp %d)", q_isa_name(isa), m, sh, zp);
                }
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_simd_matches_reference),
                cmocka_unit_test(test_requant_row),
                cmocka_unit_test(test_maxpool2),
                cmocka_unit_test(test_session_threads),
                cmocka_unit_test(test_threads_range),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/* Every int8 op of every CPU backend against the scalar reference, byte
 * for byte (suite 'kernels'). Shapes are chosen to hit every remainder of
 * the kernels' blocking: channels not a multiple of 8, pixels not a
 * multiple of 32, depths not a multiple of 4 or 64, strides, pads,
 * dilations, and float outputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>

#include "cpu/q-simd.h"
#include "cvopt/cvopt.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptGraph *, cvopt_graph_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptSession *, cvopt_session_free);

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint32_t rng(void) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return (uint32_t) (rng_state >> 11);
}

static void set_quant(CvoptTensor *t, float scale, int32_t zero_point) {
        t->quant.axis = -1;
        t->quant.count = 1;
        t->quant.scale = malloc(sizeof(float));
        t->quant.zero_point = malloc(sizeof(int32_t));
        t->quant.scale[0] = scale;
        t->quant.zero_point[0] = zero_point;
}

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

static void run_case(const Case *c, const char *isa) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_graph(c);
        _cleanup_(cvopt_session_freep) CvoptSession *ref = NULL;
        _cleanup_(cvopt_session_freep) CvoptSession *simd = NULL;

        setenv("CVOPT_CPU_ISA", isa, 1);
        assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "cpu-ref" }, &ref), 0);
        assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "cpu-simd" }, &simd), 0);
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
                fail_msg("%s on %s: outputs differ from the reference", c->what, isa);
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
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                run_case(&cases[i], "avx2");
                if (best == Q_ISA_AVX512_VNNI)
                        run_case(&cases[i], "avx512-vnni");
        }
}

/* The 2x2 stride-2 max pool: odd channel counts and widths that leave
 * every remainder of the 32-wide loop. */
static void test_maxpool2(void **state) {
        static const int64_t shapes[][3] = { { 32, 28, 28 }, { 3, 14, 14 }, { 5, 10, 70 }, { 1, 2, 2 }, { 2, 6, 130 } };
        (void) state;

        if (q_isa_detect() == Q_ISA_NONE)
                skip();
        for (size_t t = 0; t < ELEMENTSOF(shapes); t++) {
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                _cleanup_(cvopt_session_freep) CvoptSession *ref = NULL, *simd = NULL;
                int64_t dims[4] = { 1, shapes[t][0], shapes[t][1], shapes[t][2] }, two[2] = { 2, 2 };
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
                assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "cpu-simd" }, &simd), 0);
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
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

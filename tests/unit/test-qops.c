/* SPDX-License-Identifier: MIT */
/* The int8 reference operators against independent computations: the
 * integer formula written out directly, and the float operation on the
 * dequantized values (within one output step). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "cpu/q-ops.h"
#include "cvopt/quant.h"
#include "cvopt/cvopt.h"
#include "macro.h"

#define QTEST_RNG_SEED 0x9e3779b97f4a7c15ull
#include "quant-test-util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptGraph *, cvopt_graph_free);

static void test_quantize_multiplier(void **state) {
        const double values[] = { 1e-9, 0.000123, 0.0123, 0.25, 0.5, 0.7071, 0.99999999, 1.0, 3.5, 1000.0 };
        int32_t m, s;
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(values); i++) {
                assert_int_equal(cvopt_quantize_multiplier(values[i], &m, &s), 0);
                assert_true(m >= (1 << 30));
                assert_true(s >= CVOPT_SHIFT_MIN && s <= CVOPT_SHIFT_MAX);
                assert_true(fabs(ldexp((double) m, -s) - values[i]) <= values[i] * 1e-9);
        }
        assert_int_equal(cvopt_quantize_multiplier(1e-30, &m, &s), 0);
        assert_int_equal(m, 0);
        assert_int_equal(cvopt_quantize_multiplier(-1.0, &m, &s), -EINVAL);
        assert_int_equal(cvopt_quantize_multiplier(ldexp(1.0, 40), &m, &s), -ERANGE);

        /* Halves round towards +infinity, for negative values too. */
        assert_int_equal(cvopt_quantize_multiplier(0.5, &m, &s), 0);
        assert_int_equal(cvopt_rounding_shift(3, m, s), 2);   /* 1.5 -> 2 */
        assert_int_equal(cvopt_rounding_shift(-3, m, s), -1); /* -1.5 -> -1 */
        assert_int_equal(cvopt_rounding_shift(-5, m, s), -2); /* -2.5 -> -2 */
        assert_int_equal(cvopt_requantize(INT32_MAX, m, s, 0, 0, 255), 255);
        assert_int_equal(cvopt_requantize(INT32_MIN, m, s, 0, 0, 255), 0);
        /* Identity multiplier (as used when concat scales already agree). */
        for (int v = -300; v <= 300; v++)
                assert_int_equal(cvopt_rounding_shift(v, 1 << 30, 30), v);
}

/* Builds a QConv graph with random data: x [1,C,H,W], w [OC,C/g,3,3]. */
static void check_qconv(int64_t channels, int64_t out_channels, int64_t group, int64_t stride, bool float_output) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        const int64_t h = 9, w = 7, k = 3, per_group = channels / group;
        int64_t xdims[4] = { 1, channels, h, w }, wdims[4] = { out_channels, per_group, k, k };
        int64_t bdims[1] = { out_channels }, pads[4] = { 1, 1, 1, 1 }, strides[2] = { stride, stride };
        const float sx = 0.05f, sy = 0.08f;
        const int32_t zx = 17, zy = 100;
        int32_t ix, iw, ib, iy, node;
        uint8_t *xdata = malloc((size_t) (channels * h * w));
        int8_t *wdata = malloc((size_t) (out_channels * per_group * k * k));
        int32_t *bdata = malloc((size_t) out_channels * sizeof(int32_t));
        float *sw = malloc((size_t) out_channels * sizeof(float));
        int64_t *mult = malloc((size_t) out_channels * sizeof(int64_t)), *shift = malloc((size_t) out_channels * sizeof(int64_t));
        float *out_scale = malloc((size_t) out_channels * sizeof(float));
        int32_t raw_bias[64];

        assert_true(out_channels <= 64);
        assert_int_equal(cvopt_graph_new(&g), 0);
        for (int64_t i = 0; i < channels * h * w; i++)
                xdata[i] = (uint8_t) (rng() & 0xff);
        for (int64_t i = 0; i < out_channels * per_group * k * k; i++)
                wdata[i] = (int8_t) ((int) (rng() % 255) - 127);
        for (int64_t oc = 0; oc < out_channels; oc++) {
                int64_t sum = 0;

                sw[oc] = 0.001f * (float) (1 + oc);
                raw_bias[oc] = (int32_t) (rng() % 2001) - 1000;
                for (int64_t i = 0; i < per_group * k * k; i++)
                        sum += wdata[oc * per_group * k * k + i];
                bdata[oc] = raw_bias[oc] - zx * (int32_t) sum;
                int32_t m, s;
                assert_int_equal(cvopt_quantize_multiplier((double) sx * sw[oc] / sy, &m, &s), 0);
                mult[oc] = m;
                shift[oc] = s;
                out_scale[oc] = sx * sw[oc];
        }
        assert_int_equal(cvopt_graph_add_tensor(g, "x", CVOPT_DTYPE_UINT8, 4, xdims, &ix), 0);
        assert_int_equal(cvopt_graph_add_constant(g, "w", CVOPT_DTYPE_INT8, 4, wdims, wdata, true, &iw), 0);
        assert_int_equal(cvopt_graph_add_constant(g, "b", CVOPT_DTYPE_INT32, 1, bdims, bdata, true, &ib), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "y", float_output ? CVOPT_DTYPE_FLOAT32 : CVOPT_DTYPE_UINT8, 0,
                                                NULL, &iy), 0);
        set_quant(&g->tensors[ix], sx, zx);
        if (!float_output)
                set_quant(&g->tensors[iy], sy, zy);
        assert_int_equal(cvopt_graph_add_node(g, "conv", CVOPT_OP_QCONV, 3, (int32_t[]) { ix, iw, ib }, 1, &iy, &node), 0);
        CvoptNode *n = &g->nodes[node];
        assert_int_equal(cvopt_node_set_ints(n, "pads", 4, pads), 0);
        assert_int_equal(cvopt_node_set_ints(n, "strides", 2, strides), 0);
        assert_int_equal(cvopt_node_set_int(n, "group", group), 0);
        if (float_output)
                assert_int_equal(cvopt_node_set_floats(n, "out_scale", (uint32_t) out_channels, out_scale), 0);
        else {
                assert_int_equal(cvopt_node_set_ints(n, "multiplier", (uint32_t) out_channels, mult), 0);
                assert_int_equal(cvopt_node_set_ints(n, "shift", (uint32_t) out_channels, shift), 0);
                assert_int_equal(cvopt_node_set_int(n, "out_min", zy), 0); /* fused ReLU */
        }
        g->tensors[ix].data = xdata;
        g->tensors[ix].owns_data = true;

        const RefOp *op = q_op_lookup(CVOPT_OP_QCONV);
        assert_non_null(op);
        assert_int_equal(op->infer(g, n), 0);
        CvoptTensor *y = &g->tensors[iy];
        const int64_t oh = (h + 2 - 3) / stride + 1, ow = (w + 2 - 3) / stride + 1;
        assert_int_equal(y->dims[2], oh);
        assert_int_equal(y->dims[3], ow);
        y->data = calloc(1, cvopt_tensor_bytes(y));
        y->owns_data = true;
        const CvoptTensor *ins[3] = { &g->tensors[ix], &g->tensors[iw], &g->tensors[ib] };
        CvoptTensor *outs[1] = { y };
        assert_int_equal(op->run(n, ins, outs), 0);

        for (int64_t oc = 0; oc < out_channels; oc++) {
                int64_t gi = oc / (out_channels / group);
                for (int64_t oy = 0; oy < oh; oy++)
                        for (int64_t ox = 0; ox < ow; ox++) {
                                int64_t acc = raw_bias[oc];
                                double real = (double) raw_bias[oc] * sx * sw[oc];

                                for (int64_t c = 0; c < per_group; c++)
                                        for (int64_t ky = 0; ky < k; ky++)
                                                for (int64_t kx = 0; kx < k; kx++) {
                                                        int64_t iy2 = oy * stride - 1 + ky, ix2 = ox * stride - 1 + kx;
                                                        if (iy2 < 0 || iy2 >= h || ix2 < 0 || ix2 >= w)
                                                                continue;
                                                        int32_t xv = xdata[((gi * per_group + c) * h + iy2) * w + ix2] - zx;
                                                        int32_t wv = wdata[((oc * per_group + c) * k + ky) * k + kx];
                                                        acc += xv * wv;
                                                        real += (double) xv * sx * wv * sw[oc];
                                                }
                                size_t at = (size_t) ((oc * oh + oy) * ow + ox);
                                if (float_output) {
                                        assert_float_equal(((float *) y->data)[at], (float) acc * out_scale[oc], 0);
                                        continue;
                                }
                                int32_t expect = cvopt_clamp_i32(zy + cvopt_rounding_shift(acc, (int32_t) mult[oc], (int32_t) shift[oc]), zy, 255);
                                assert_int_equal(((uint8_t *) y->data)[at], expect);
                                /* And the integer result means what the float conv means. */
                                double want = CLAMP(round(real / sy) + zy, zy, 255);
                                assert_true(fabs(((uint8_t *) y->data)[at] - want) <= 1.0);
                        }
        }
        free(sw);
        free(mult);
        free(shift);
        free(out_scale);
}

static void test_qconv_dense(void **state) {
        (void) state;
        check_qconv(3, 8, 1, 1, false);
        check_qconv(4, 6, 1, 2, false);
}

static void test_qconv_grouped_and_depthwise(void **state) {
        (void) state;
        check_qconv(4, 8, 2, 1, false);
        check_qconv(6, 6, 6, 1, false);
        check_qconv(6, 6, 6, 2, false);
}

static void test_qconv_float_output(void **state) {
        (void) state;
        check_qconv(3, 5, 1, 1, true);
}

static void test_qconv_rejects_bad_params(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        int64_t xdims[4] = { 1, 2, 4, 4 }, wdims[4] = { 3, 2, 3, 3 }, bad_mult[3] = { 1 << 30, 1 << 30, 1 << 30 };
        int64_t bad_shift[3] = { 31, 0, 31 };
        int32_t ix, iw, iy, node;
        (void) state;

        assert_int_equal(cvopt_graph_new(&g), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "x", CVOPT_DTYPE_UINT8, 4, xdims, &ix), 0);
        assert_int_equal(cvopt_graph_add_constant(g, "w", CVOPT_DTYPE_INT8, 4, wdims, calloc(54, 1), true, &iw), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "y", CVOPT_DTYPE_UINT8, 0, NULL, &iy), 0);
        set_quant(&g->tensors[ix], 0.1f, 0);
        set_quant(&g->tensors[iy], 0.1f, 0);
        assert_int_equal(cvopt_graph_add_node(g, "c", CVOPT_OP_QCONV, 2, (int32_t[]) { ix, iw }, 1, &iy, &node), 0);
        assert_int_equal(cvopt_node_set_ints(&g->nodes[node], "multiplier", 3, bad_mult), 0);
        assert_int_equal(cvopt_node_set_ints(&g->nodes[node], "shift", 3, bad_shift), 0);
        assert_int_equal(q_op_lookup(CVOPT_OP_QCONV)->infer(g, &g->nodes[node]), -CVOPT_E_FORMAT);
        assert_non_null(strstr(cvopt_error_detail(), "'c'"));
        bad_shift[1] = 31;
        assert_int_equal(cvopt_node_set_ints(&g->nodes[node], "shift", 3, bad_shift), 0);
        assert_int_equal(q_op_lookup(CVOPT_OP_QCONV)->infer(g, &g->nodes[node]), 0);
        /* A weight tensor in the wrong dtype (a hostile file) is refused. */
        g->tensors[iw].dtype = CVOPT_DTYPE_UINT8;
        assert_int_equal(q_op_lookup(CVOPT_OP_QCONV)->infer(g, &g->nodes[node]), -CVOPT_E_FORMAT);
}

static void test_qadd_and_quantize(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        int64_t dims[2] = { 1, 256 };
        const float sa = 0.02f, sb = 0.05f, sy = 0.06f;
        const int32_t za = 3, zb = 200, zy = 50;
        int32_t ia, ib, iy, node;
        (void) state;

        assert_int_equal(cvopt_graph_new(&g), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "a", CVOPT_DTYPE_UINT8, 2, dims, &ia), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "b", CVOPT_DTYPE_UINT8, 2, dims, &ib), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "y", CVOPT_DTYPE_UINT8, 0, NULL, &iy), 0);
        set_quant(&g->tensors[ia], sa, za);
        set_quant(&g->tensors[ib], sb, zb);
        set_quant(&g->tensors[iy], sy, zy);
        assert_int_equal(cvopt_graph_add_node(g, "add", CVOPT_OP_QADD, 2, (int32_t[]) { ia, ib }, 1, &iy, &node), 0);
        /* Common shift 31: the larger ratio (sb/sy = 0.83) fills 31 bits. */
        int64_t m[2] = { llround(ldexp(sa / sy, 31)), llround(ldexp(sb / sy, 31)) };
        assert_int_equal(cvopt_node_set_ints(&g->nodes[node], "multiplier", 2, m), 0);
        assert_int_equal(cvopt_node_set_int(&g->nodes[node], "shift", 31), 0);
        assert_int_equal(q_op_lookup(CVOPT_OP_QADD)->infer(g, &g->nodes[node]), 0);
        uint8_t a[256], b[256], y[256];
        for (int i = 0; i < 256; i++) {
                a[i] = (uint8_t) i;
                b[i] = (uint8_t) (rng() & 0xff);
        }
        g->tensors[ia].data = a;
        g->tensors[ib].data = b;
        g->tensors[iy].data = y;
        const CvoptTensor *ins[2] = { &g->tensors[ia], &g->tensors[ib] };
        CvoptTensor *outs[1] = { &g->tensors[iy] };
        assert_int_equal(q_op_lookup(CVOPT_OP_QADD)->run(&g->nodes[node], ins, outs), 0);
        for (int i = 0; i < 256; i++) {
                double real = sa * (a[i] - za) + sb * (b[i] - zb);
                double want = CLAMP(round(real / sy) + zy, 0, 255);
                assert_true(fabs(y[i] - want) <= 1.0);
        }
        g->tensors[ia].data = g->tensors[ib].data = g->tensors[iy].data = NULL;
}

static void test_quantize_rounds_half_to_even(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        int64_t dims[1] = { 6 };
        float x[6] = { 0.25f, 0.75f, -0.25f, 1000.0f, -1000.0f, NAN };
        uint8_t y[6];
        float back[6];
        int32_t ix, iy, iz, node;
        (void) state;

        assert_int_equal(cvopt_graph_new(&g), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "x", CVOPT_DTYPE_FLOAT32, 1, dims, &ix), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "y", CVOPT_DTYPE_UINT8, 0, NULL, &iy), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "z", CVOPT_DTYPE_FLOAT32, 0, NULL, &iz), 0);
        set_quant(&g->tensors[iy], 0.5f, 10);
        assert_int_equal(cvopt_graph_add_node(g, "q", CVOPT_OP_QUANTIZE, 1, &ix, 1, &iy, &node), 0);
        assert_int_equal(cvopt_node_set_float(&g->nodes[node], "inv_scale", 2.0f), 0);
        assert_int_equal(cvopt_graph_add_node(g, "dq", CVOPT_OP_DEQUANTIZE, 1, &iy, 1, &iz, NULL), 0);
        assert_int_equal(q_op_lookup(CVOPT_OP_QUANTIZE)->infer(g, &g->nodes[0]), 0);
        assert_int_equal(q_op_lookup(CVOPT_OP_DEQUANTIZE)->infer(g, &g->nodes[1]), 0);
        g->tensors[ix].data = x;
        g->tensors[iy].data = y;
        g->tensors[iz].data = back;
        const CvoptTensor *in1[1] = { &g->tensors[ix] }, *in2[1] = { &g->tensors[iy] };
        CvoptTensor *out1[1] = { &g->tensors[iy] }, *out2[1] = { &g->tensors[iz] };
        assert_int_equal(q_op_lookup(CVOPT_OP_QUANTIZE)->run(&g->nodes[0], in1, out1), 0);
        assert_int_equal(q_op_lookup(CVOPT_OP_DEQUANTIZE)->run(&g->nodes[1], in2, out2), 0);
        /* 0.5 -> 0 (even), 1.5 -> 2, -0.5 -> -0 (even), then + 10. */
        assert_int_equal(y[0], 10);
        assert_int_equal(y[1], 12);
        assert_int_equal(y[2], 10);
        assert_int_equal(y[3], 255);
        assert_int_equal(y[4], 0);
        assert_float_equal(back[1], 1.0f, 0);
        assert_float_equal(back[3], 122.5f, 0);
        g->tensors[ix].data = g->tensors[iy].data = g->tensors[iz].data = NULL;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_quantize_multiplier),
                cmocka_unit_test(test_qconv_dense),
                cmocka_unit_test(test_qconv_grouped_and_depthwise),
                cmocka_unit_test(test_qconv_float_output),
                cmocka_unit_test(test_qconv_rejects_bad_params),
                cmocka_unit_test(test_qadd_and_quantize),
                cmocka_unit_test(test_quantize_rounds_half_to_even),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

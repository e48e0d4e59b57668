/* SPDX-License-Identifier: MIT */
/* The compute-heavy reference operators (Conv, Gemm, MatMul, pools, fused
 * activations) against naive loops written independently here and against
 * hand-computed values, plus the errors a bad model must produce. */
#include "ref-test-util.h"

/* Conv against a direct 7-deep loop. */

typedef struct ConvCase {
        uint32_t spatial;
        int64_t batch, channels, out_channels, group;
        int64_t in[3], kernel[3], stride[3], dilation[3], pads[6];
        const char *auto_pad; /* NULL: attribute absent */
        bool bias;
        const char *activation;
        int64_t want_out[3]; /* hand-computed output spatial size */
} ConvCase;

static float activation_ref(const char *name, float v) {
        if (!name)
                return v;
        if (streq(name, "Relu"))
                return v > 0 ? v : 0;
        if (streq(name, "Clip"))
                return v < 0 ? 0 : v > 0.5f ? 0.5f : v;
        if (streq(name, "LeakyRelu"))
                return v >= 0 ? v : 0.1f * v;
        if (streq(name, "HardSwish"))
                return v * fmaxf(0, fminf(1, v / 6 + 0.5f));
        if (streq(name, "Sigmoid"))
                return 1 / (1 + expf(-v));
        if (streq(name, "HardSigmoid"))
                return fmaxf(0, fminf(1, 0.3f * v + 0.4f));
        if (streq(name, "Tanh"))
                return tanhf(v);
        fail_msg("unknown activation %s", name);
        return 0;
}

static void set_fused_activation(CvoptNode *n, const char *name) {
        if (!name)
                return;
        assert_int_equal(cvopt_node_set_string(n, "activation", name), 0);
        if (streq(name, "Clip")) {
                assert_int_equal(cvopt_node_set_float(n, "activation_min", 0), 0);
                assert_int_equal(cvopt_node_set_float(n, "activation_max", 0.5f), 0);
        } else if (streq(name, "LeakyRelu"))
                assert_int_equal(cvopt_node_set_float(n, "activation_alpha", 0.1f), 0);
        else if (streq(name, "HardSigmoid")) {
                assert_int_equal(cvopt_node_set_float(n, "activation_alpha", 0.3f), 0);
                assert_int_equal(cvopt_node_set_float(n, "activation_beta", 0.4f), 0);
        }
}

static void run_conv_case(const ConvCase *c) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        int64_t x_dims[5], w_dims[5], y_dims[5], in[3], k[3], s[3], d[3], pb[3], out[3];
        int64_t cg = c->channels / c->group, mg = c->out_channels / c->group;
        uint32_t nd = c->spatial + 2, off = 3 - c->spatial;
        _cleanup_free_ float *x = NULL, *w = NULL, *b = NULL, *want = NULL;
        int32_t ins[3], y;
        CvoptNode *n;

        x_dims[0] = c->batch;
        x_dims[1] = c->channels;
        w_dims[0] = c->out_channels;
        w_dims[1] = cg;
        y_dims[0] = c->batch;
        y_dims[1] = c->out_channels;
        for (uint32_t i = 0; i < 3; i++) {
                bool used = i >= off;

                in[i] = used ? c->in[i - off] : 1;
                k[i] = used ? c->kernel[i - off] : 1;
                s[i] = used && c->stride[i - off] ? c->stride[i - off] : 1;
                d[i] = used && c->dilation[i - off] ? c->dilation[i - off] : 1;
                out[i] = used ? c->want_out[i - off] : 1;
                pb[i] = used ? c->pads[i - off] : 0;
                if (used && c->auto_pad && startswith(c->auto_pad, "SAME")) {
                        int64_t total = MAX((out[i] - 1) * s[i] + (k[i] - 1) * d[i] + 1 - in[i], (int64_t) 0);

                        pb[i] = streq(c->auto_pad, "SAME_UPPER") ? total / 2 : (total + 1) / 2;
                }
                if (used) {
                        x_dims[2 + i - off] = in[i];
                        w_dims[2 + i - off] = k[i];
                        y_dims[2 + i - off] = out[i];
                }
        }
        x = rand_floats(dims_count(nd, x_dims));
        w = rand_floats(dims_count(nd, w_dims));
        b = rand_floats((size_t) c->out_channels);

        assert_int_equal(cvopt_graph_new(&g), 0);
        ins[0] = add_floats(g, "x", nd, x_dims, x);
        ins[1] = add_floats(g, "w", nd, w_dims, w);
        ins[2] = add_floats(g, "b", 1, &c->out_channels, b);
        y = add_output(g, "y");
        n = add_node(g, "conv", CVOPT_OP_CONV, c->bias ? 3 : 2, ins, y);
        if (c->group != 1)
                assert_int_equal(cvopt_node_set_int(n, "group", c->group), 0);
        if (c->stride[0])
                assert_int_equal(cvopt_node_set_ints(n, "strides", c->spatial, c->stride), 0);
        if (c->dilation[0])
                assert_int_equal(cvopt_node_set_ints(n, "dilations", c->spatial, c->dilation), 0);
        if (c->auto_pad)
                assert_int_equal(cvopt_node_set_string(n, "auto_pad", c->auto_pad), 0);
        else
                assert_int_equal(cvopt_node_set_ints(n, "pads", 2 * c->spatial, c->pads), 0);
        set_fused_activation(n, c->activation);

        assert_int_equal(eval_last(g), 0);
        assert_shape(&g->tensors[y], nd, y_dims);

        want = calloc(dims_count(nd, y_dims), sizeof(float));
        assert_non_null(want);
        for (int64_t img = 0; img < c->batch; img++)
                for (int64_t m = 0; m < c->out_channels; m++) {
                        int64_t grp = m / mg;

                        for (int64_t od = 0; od < out[0]; od++)
                                for (int64_t oh = 0; oh < out[1]; oh++)
                                        for (int64_t ow = 0; ow < out[2]; ow++) {
                                                double acc = c->bias ? b[m] : 0;

                                                for (int64_t ci = 0; ci < cg; ci++)
                                                        for (int64_t kd = 0; kd < k[0]; kd++)
                                                                for (int64_t kh = 0; kh < k[1]; kh++)
                                                                        for (int64_t kw = 0; kw < k[2]; kw++) {
                                                                                int64_t id = od * s[0] - pb[0] + kd * d[0];
                                                                                int64_t ih = oh * s[1] - pb[1] + kh * d[1];
                                                                                int64_t iw = ow * s[2] - pb[2] + kw * d[2];
                                                                                int64_t cin = grp * cg + ci;

                                                                                if (id < 0 || id >= in[0] || ih < 0 ||
                                                                                    ih >= in[1] || iw < 0 || iw >= in[2])
                                                                                        continue;
                                                                                acc += (double) x[(((img * c->channels + cin) * in[0] + id) * in[1] + ih) * in[2] + iw] *
                                                                                       w[(((m * cg + ci) * k[0] + kd) * k[1] + kh) * k[2] + kw];
                                                                        }
                                                want[(((img * c->out_channels + m) * out[0] + od) * out[1] + oh) * out[2] + ow] =
                                                        activation_ref(c->activation, (float) acc);
                                        }
                }
        assert_floats_near(g->tensors[y].data, want, dims_count(nd, y_dims), 1e-5f);
}

static void test_conv_against_naive(void **state) {
        static const ConvCase cases[] = {
                /* Plain 3x3, pad 1: the common CNN layer. */
                { 2, 2, 3, 5, 1, { 7, 6 }, { 3, 3 }, { 0 }, { 0 }, { 1, 1, 1, 1 }, NULL, true, NULL, { 7, 6 } },
                /* Stride 2, asymmetric pads, no bias. */
                { 2, 1, 4, 6, 1, { 9, 8 }, { 3, 2 }, { 2, 2 }, { 0 }, { 1, 0, 0, 1 }, NULL, false, NULL, { 4, 4 } },
                /* Dilation 2. */
                { 2, 1, 3, 4, 1, { 10, 9 }, { 3, 3 }, { 1, 1 }, { 2, 2 }, { 2, 2, 2, 2 }, NULL, true, NULL, { 10, 9 } },
                /* Grouped: 6 -> 4 channels in 2 groups. */
                { 2, 2, 6, 4, 2, { 5, 5 }, { 3, 3 }, { 1, 1 }, { 0 }, { 1, 1, 1, 1 }, NULL, true, NULL, { 5, 5 } },
                /* Depthwise, stride 2, pad 1. */
                { 2, 1, 8, 8, 8, { 9, 9 }, { 3, 3 }, { 2, 2 }, { 0 }, { 1, 1, 1, 1 }, NULL, true, NULL, { 5, 5 } },
                /* Depthwise with channel multiplier 2 and dilation. */
                { 2, 2, 3, 6, 3, { 8, 7 }, { 3, 3 }, { 1, 1 }, { 2, 1 }, { 2, 1, 2, 1 }, NULL, true, NULL, { 8, 7 } },
                /* Depthwise stride 1 (the padded-plane path): SAME_LOWER with
                 * an even kernel, and 1-D with asymmetric pads and dilation. */
                { 2, 1, 5, 5, 5, { 6, 9 }, { 2, 4 }, { 1, 1 }, { 0 }, { 0 }, "SAME_LOWER", true, NULL, { 6, 9 } },
                { 1, 2, 3, 3, 3, { 11 }, { 3 }, { 0 }, { 2 }, { 3, 0 }, NULL, false, NULL, { 10 } },
                /* Depthwise, strides 2x3, dilation, asymmetric pads, and 1-D stride 3. */
                { 2, 1, 4, 4, 4, { 11, 13 }, { 3, 2 }, { 2, 3 }, { 2, 1 }, { 1, 2, 0, 1 }, NULL, true, "Relu", { 4, 5 } },
                { 1, 1, 2, 4, 2, { 17 }, { 4 }, { 3 }, { 1 }, { 2, 2 }, NULL, true, NULL, { 6 } },
                /* 1x1, stride 1, no pad: the straight GEMM path. */
                { 2, 2, 16, 8, 1, { 5, 6 }, { 1, 1 }, { 0 }, { 0 }, { 0 }, NULL, true, NULL, { 5, 6 } },
                /* 1x1 stride 2: im2col path. */
                { 2, 1, 4, 3, 1, { 5, 6 }, { 1, 1 }, { 2, 2 }, { 0 }, { 0 }, NULL, true, NULL, { 3, 3 } },
                /* SAME_UPPER with stride 2: out = ceil(in / stride); total
                 * pad (3-1)*2+3-6 = 1 goes at the end. */
                { 2, 1, 2, 3, 1, { 6, 7 }, { 3, 3 }, { 2, 2 }, { 0 }, { 0 }, "SAME_UPPER", true, NULL, { 3, 4 } },
                /* SAME_LOWER: the odd pad goes at the beginning. */
                { 2, 1, 2, 3, 1, { 6, 7 }, { 3, 3 }, { 2, 2 }, { 0 }, { 0 }, "SAME_LOWER", true, NULL, { 3, 4 } },
                /* SAME_UPPER with an even kernel, stride 1: pad 0 before, 1 after. */
                { 2, 1, 2, 2, 1, { 5, 4 }, { 2, 2 }, { 1, 1 }, { 0 }, { 0 }, "SAME_UPPER", false, NULL, { 5, 4 } },
                /* VALID: no padding. */
                { 2, 1, 2, 2, 1, { 5, 4 }, { 3, 2 }, { 1, 1 }, { 0 }, { 0 }, "VALID", true, NULL, { 3, 3 } },
                /* 1-D, stride 3, dilation 2: (20 + 3 - 7) / 3 + 1 = 6. */
                { 1, 2, 3, 4, 1, { 20 }, { 4 }, { 3 }, { 2 }, { 2, 1 }, NULL, true, NULL, { 6 } },
                /* 3-D. */
                { 3, 1, 2, 3, 1, { 4, 5, 6 }, { 2, 3, 3 }, { 1, 2, 1 }, { 0 }, { 0, 1, 1, 1, 1, 1 }, NULL, true, NULL, { 4, 3, 6 } },
                /* 3-D depthwise (the direct loop). */
                { 3, 1, 3, 3, 3, { 4, 5, 6 }, { 2, 3, 3 }, { 1, 2, 1 }, { 2, 1, 1 }, { 1, 1, 0, 0, 1, 1 }, NULL, true, NULL, { 3, 3, 5 } },
                /* Large enough to cross the GEMM blocking (K = 288 > 256, N = 600 > 512). */
                { 2, 1, 32, 70, 1, { 20, 30 }, { 3, 3 }, { 0 }, { 0 }, { 1, 1, 1, 1 }, NULL, true, NULL, { 20, 30 } },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                print_message("conv case %zu\n", i);
                run_conv_case(&cases[i]);
        }
}

static void test_conv_fused_activations(void **state) {
        static const char *const names[] = { "Relu", "Clip", "LeakyRelu", "HardSwish", "Sigmoid", "HardSigmoid",
                                             "Tanh" };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                ConvCase c = { 2, 1, 3, 4, 1, { 5, 5 }, { 3, 3 }, { 0 }, { 0 }, { 1, 1, 1, 1 }, NULL, true, names[i], { 5, 5 } };
                ConvCase dw = { 2, 1, 4, 4, 4, { 5, 5 }, { 3, 3 }, { 0 }, { 0 }, { 1, 1, 1, 1 }, NULL, true, names[i], { 5, 5 } };

                run_conv_case(&c);
                run_conv_case(&dw);
        }
}

/* A conv graph x[1,4,5,5] * w[6, 4 / group, 3, 3] with attributes set by
 * the caller; returns the node's error. */
static int conv_error_case(int64_t w_in_channels, int64_t group, const char *attr, const char *value) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        _cleanup_free_ float *x = rand_floats(100), *w = rand_floats((size_t) (6 * w_in_channels * 9));
        int32_t ins[2], y;
        CvoptNode *n;

        assert_int_equal(cvopt_graph_new(&g), 0);
        ins[0] = add_floats(g, "x", 4, DIMS(1, 4, 5, 5), x);
        ins[1] = add_floats(g, "w", 4, DIMS(6, w_in_channels, 3, 3), w);
        y = add_output(g, "y");
        n = add_node(g, "conv_layer7", CVOPT_OP_CONV, 2, ins, y);
        assert_int_equal(cvopt_node_set_int(n, "group", group), 0);
        if (attr)
                assert_int_equal(cvopt_node_set_string(n, attr, value), 0);
        return eval_last(g);
}

static void test_conv_errors(void **state) {
        (void) state;

        assert_int_equal(conv_error_case(4, 1, NULL, NULL), 0);
        assert_int_equal(conv_error_case(2, 2, NULL, NULL), 0);
        /* group 3 does not divide 4 input channels. */
        assert_error_names_node(conv_error_case(4, 3, NULL, NULL), -CVOPT_E_SHAPE, "conv_layer7");
        /* group 4 divides 4 inputs but not 6 outputs. */
        assert_error_names_node(conv_error_case(1, 4, NULL, NULL), -CVOPT_E_SHAPE, "conv_layer7");
        /* Weight wants 3 input channels, the input has 4. */
        assert_error_names_node(conv_error_case(3, 1, NULL, NULL), -CVOPT_E_SHAPE, "conv_layer7");
        assert_error_names_node(conv_error_case(4, 0, NULL, NULL), -CVOPT_E_SHAPE, "conv_layer7");
        assert_error_names_node(conv_error_case(4, 1, "auto_pad", "SAME"), -CVOPT_E_UNSUPPORTED, "conv_layer7");
        assert_error_names_node(conv_error_case(4, 1, "activation", "Gelu"), -CVOPT_E_UNSUPPORTED, "conv_layer7");
        assert_error_names_node(conv_error_case(4, 1, "strides", "2"), -CVOPT_E_UNSUPPORTED, "conv_layer7");
}

static void test_conv_kernel_too_large(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        float x[4] = { 0 }, w[9] = { 0 };
        int32_t ins[2], y;
        (void) state;

        assert_int_equal(cvopt_graph_new(&g), 0);
        ins[0] = add_floats(g, "x", 4, DIMS(1, 1, 2, 2), x);
        ins[1] = add_floats(g, "w", 4, DIMS(1, 1, 3, 3), w);
        y = add_output(g, "y");
        add_node(g, "big_kernel", CVOPT_OP_CONV, 2, ins, y);
        assert_error_names_node(eval_last(g), -CVOPT_E_SHAPE, "big_kernel");
}

/* Gemm against a naive triple loop: every transpose combination and every
 * shape of C. */

static void run_gemm_case(int64_t m, int64_t n_cols, int64_t k, int trans_a, int trans_b, uint32_t c_ndim,
                          const int64_t *c_dims, float alpha, float beta, const char *activation) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        _cleanup_free_ float *a = rand_floats((size_t) (m * k)), *b = rand_floats((size_t) (k * n_cols)),
                             *c = rand_floats((size_t) (m * n_cols)), *want = NULL;
        int64_t a_dims[2] = { trans_a ? k : m, trans_a ? m : k }, b_dims[2] = { trans_b ? n_cols : k, trans_b ? k : n_cols };
        int32_t ins[3], y;
        CvoptNode *node;

        assert_int_equal(cvopt_graph_new(&g), 0);
        ins[0] = add_floats(g, "a", 2, a_dims, a);
        ins[1] = add_floats(g, "b", 2, b_dims, b);
        if (c_dims || c_ndim == 0)
                ins[2] = add_floats(g, "c", c_ndim, c_dims, c);
        y = add_output(g, "y");
        node = add_node(g, "gemm", CVOPT_OP_GEMM, c_ndim == UINT32_MAX ? 2 : 3, ins, y);
        assert_int_equal(cvopt_node_set_int(node, "transA", trans_a), 0);
        assert_int_equal(cvopt_node_set_int(node, "transB", trans_b), 0);
        assert_int_equal(cvopt_node_set_float(node, "alpha", alpha), 0);
        assert_int_equal(cvopt_node_set_float(node, "beta", beta), 0);
        set_fused_activation(node, activation);
        assert_int_equal(eval_last(g), 0);
        assert_shape(&g->tensors[y], 2, DIMS(m, n_cols));

        want = malloc((size_t) (m * n_cols) * sizeof(float));
        assert_non_null(want);
        for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n_cols; j++) {
                        double acc = 0, cv = 0;

                        for (int64_t p = 0; p < k; p++)
                                acc += (double) (trans_a ? a[p * m + i] : a[i * k + p]) *
                                       (trans_b ? b[j * k + p] : b[p * n_cols + j]);
                        if (c_ndim == 0)
                                cv = c[0];
                        else if (c_ndim == 1)
                                cv = c[c_dims[0] == 1 ? 0 : j];
                        else if (c_ndim == 2)
                                cv = c[(c_dims[0] == 1 ? 0 : i) * c_dims[1] + (c_dims[1] == 1 ? 0 : j)];
                        want[i * n_cols + j] = activation_ref(activation, (float) (alpha * acc + beta * cv));
                }
        assert_floats_near(g->tensors[y].data, want, (size_t) (m * n_cols), 1e-5f);
}

static void test_gemm(void **state) {
        (void) state;

        for (int ta = 0; ta < 2; ta++)
                for (int tb = 0; tb < 2; tb++) {
                        run_gemm_case(3, 5, 4, ta, tb, 2, DIMS(3, 5), 1.0f, 1.0f, NULL);
                        run_gemm_case(7, 19, 300, ta, tb, 1, DIMS(19), 0.5f, 2.0f, NULL);
                }
        run_gemm_case(4, 6, 5, 0, 1, 0, NULL, 1.0f, 0.5f, NULL);      /* scalar C */
        run_gemm_case(4, 6, 5, 0, 1, 2, DIMS(4, 1), 1.0f, 1.0f, NULL); /* column C */
        run_gemm_case(4, 6, 5, 0, 1, 2, DIMS(1, 6), 1.0f, 1.0f, NULL); /* row C */
        run_gemm_case(4, 6, 5, 0, 1, 1, DIMS(1), 1.0f, 1.0f, NULL);    /* 1-element C */
        run_gemm_case(4, 6, 5, 1, 0, UINT32_MAX, NULL, 2.0f, 1.0f, NULL); /* no C */
        run_gemm_case(70, 530, 260, 0, 1, 1, DIMS(530), 1.0f, 1.0f, "Relu"); /* crosses every block */
        run_gemm_case(5, 10, 8, 0, 1, 1, DIMS(10), 1.0f, 1.0f, "HardSigmoid");
        /* Batch 1 (the row-vector path), both layouts of B. */
        run_gemm_case(1, 37, 301, 0, 1, 1, DIMS(37), 1.0f, 1.0f, "Relu");
        run_gemm_case(1, 37, 301, 0, 0, 2, DIMS(1, 37), 0.5f, 2.0f, NULL);
        run_gemm_case(1, 37, 301, 1, 1, UINT32_MAX, NULL, 1.0f, 1.0f, NULL);
}

static void test_gemm_errors(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        float a[6] = { 0 }, b[6] = { 0 }, c[4] = { 0 };
        int32_t ins[3], y;
        (void) state;

        assert_int_equal(cvopt_graph_new(&g), 0);
        ins[0] = add_floats(g, "a", 2, DIMS(2, 3), a);
        ins[1] = add_floats(g, "b", 2, DIMS(2, 3), b);
        ins[2] = add_floats(g, "c", 1, DIMS(4), c);
        y = add_output(g, "y");
        add_node(g, "fc1", CVOPT_OP_GEMM, 2, ins, y);
        /* K = 3 against B's 2 rows. */
        assert_error_names_node(eval_last(g), -CVOPT_E_SHAPE, "fc1");
        assert_int_equal(cvopt_node_set_int(&g->nodes[0], "transB", 1), 0);
        assert_int_equal(eval_last(g), 0);
        /* C of 4 does not broadcast to 2x2. */
        assert_int_equal(cvopt_node_set_int(add_node(g, "fc2", CVOPT_OP_GEMM, 3, ins, add_output(g, "y2")), "transB", 1),
                         0);
        assert_error_names_node(eval_last(g), -CVOPT_E_SHAPE, "fc2");
}

/* MatMul: numpy semantics including 1-D operands and batch broadcasting. */

static void run_matmul_case(uint32_t a_ndim, const int64_t *a_dims, uint32_t b_ndim, const int64_t *b_dims,
                            uint32_t y_ndim, const int64_t *y_dims) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        size_t a_count = dims_count(a_ndim, a_dims), b_count = dims_count(b_ndim, b_dims);
        _cleanup_free_ float *a = rand_floats(a_count), *b = rand_floats(b_count), *want = NULL;
        int64_t m = a_ndim == 1 ? 1 : a_dims[a_ndim - 2], k = a_dims[a_ndim - 1];
        int64_t n_cols = b_ndim == 1 ? 1 : b_dims[b_ndim - 1];
        size_t batches = dims_count(y_ndim, y_dims) / (size_t) (m * n_cols);
        size_t a_batches = a_count / (size_t) (m * k), b_batches = b_count / (size_t) (k * n_cols);
        int32_t ins[2], y;

        assert_int_equal(cvopt_graph_new(&g), 0);
        ins[0] = add_floats(g, "a", a_ndim, a_dims, a);
        ins[1] = add_floats(g, "b", b_ndim, b_dims, b);
        y = add_output(g, "y");
        add_node(g, "matmul", CVOPT_OP_MATMUL, 2, ins, y);
        assert_int_equal(eval_last(g), 0);
        assert_shape(&g->tensors[y], y_ndim, y_dims);
        want = malloc(dims_count(y_ndim, y_dims) * sizeof(float));
        assert_non_null(want);
        /* The cases below broadcast only whole operands (batch count 1 or
         * equal), which keeps this loop simple. */
        for (size_t bi = 0; bi < batches; bi++) {
                const float *pa = a + (a_batches == 1 ? 0 : bi) * (size_t) (m * k);
                const float *pb = b + (b_batches == 1 ? 0 : bi) * (size_t) (k * n_cols);

                for (int64_t i = 0; i < m; i++)
                        for (int64_t j = 0; j < n_cols; j++) {
                                double acc = 0;

                                for (int64_t p = 0; p < k; p++)
                                        acc += (double) pa[i * k + p] * pb[p * n_cols + j];
                                want[bi * (size_t) (m * n_cols) + (size_t) (i * n_cols + j)] = (float) acc;
                        }
        }
        assert_floats_near(g->tensors[y].data, want, dims_count(y_ndim, y_dims), 1e-5f);
}

static void test_matmul(void **state) {
        (void) state;

        run_matmul_case(2, DIMS(3, 4), 2, DIMS(4, 5), 2, DIMS(3, 5));
        run_matmul_case(3, DIMS(2, 3, 4), 2, DIMS(4, 5), 3, DIMS(2, 3, 5));
        run_matmul_case(2, DIMS(3, 4), 4, DIMS(2, 3, 4, 5), 4, DIMS(2, 3, 3, 5));
        run_matmul_case(4, DIMS(2, 1, 3, 4), 3, DIMS(1, 4, 6), 4, DIMS(2, 1, 3, 6));
        run_matmul_case(1, DIMS(4), 2, DIMS(4, 5), 1, DIMS(5));
        run_matmul_case(3, DIMS(2, 3, 4), 1, DIMS(4), 2, DIMS(2, 3));
        run_matmul_case(1, DIMS(4), 1, DIMS(4), 0, NULL);
}

static void test_matmul_batch_broadcast(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        /* a: [2, 1, 1, 2], b: [3, 2, 1]: out [2, 3, 1, 1], out[i][j] = a[i] . b[j]. */
        float a[4] = { 1, 2, 3, 4 }, b[6] = { 1, 0, 0, 1, 1, 1 };
        int32_t ins[2], y;
        (void) state;

        assert_int_equal(cvopt_graph_new(&g), 0);
        ins[0] = add_floats(g, "a", 4, DIMS(2, 1, 1, 2), a);
        ins[1] = add_floats(g, "b", 3, DIMS(3, 2, 1), b);
        y = add_output(g, "y");
        add_node(g, "mm", CVOPT_OP_MATMUL, 2, ins, y);
        assert_int_equal(eval_last(g), 0);
        assert_shape(&g->tensors[y], 4, DIMS(2, 3, 1, 1));
        assert_floats_near(g->tensors[y].data, FLOATS(1, 2, 3, 3, 4, 7), 6, 0);
        /* A fused Clip applies to every batch's output. */
        assert_int_equal(cvopt_node_set_string(&g->nodes[0], "activation", "Clip"), 0);
        assert_int_equal(cvopt_node_set_float(&g->nodes[0], "activation_max", 3.5f), 0);
        assert_int_equal(eval_last(g), 0);
        assert_floats_near(g->tensors[y].data, FLOATS(1, 2, 3, 3, 3.5f, 3.5f), 6, 0);
}

/* Pools against hand-computed values (the first two are ONNX's own
 * maxpool_2d_ceil and averagepool_2d_pads_count_include_pad cases). */

static CvoptTensor *run_pool(CvoptGraph *g, CvoptOp op, uint32_t ndim, const int64_t *dims, const float *x,
                             uint32_t spatial, const int64_t *kernel, const int64_t *strides, const int64_t *pads,
                             int64_t ceil_mode, int64_t include_pad) {
        int32_t in = add_floats(g, "x", ndim, dims, x), y = add_output(g, "y");
        CvoptNode *n = add_node(g, "pool", op, 1, &in, y);

        assert_int_equal(cvopt_node_set_ints(n, "kernel_shape", spatial, kernel), 0);
        if (strides)
                assert_int_equal(cvopt_node_set_ints(n, "strides", spatial, strides), 0);
        if (pads)
                assert_int_equal(cvopt_node_set_ints(n, "pads", 2 * spatial, pads), 0);
        assert_int_equal(cvopt_node_set_int(n, "ceil_mode", ceil_mode), 0);
        if (op == CVOPT_OP_AVERAGE_POOL)
                assert_int_equal(cvopt_node_set_int(n, "count_include_pad", include_pad), 0);
        assert_int_equal(eval_last(g), 0);
        return &g->tensors[y];
}

static void test_pools(void **state) {
        float x16[16], x9[9], x5[5] = { 1, 2, 3, 4, 5 };
        CvoptTensor *y;
        (void) state;

        for (int i = 0; i < 16; i++)
                x16[i] = (float) (i + 1);
        for (int i = 0; i < 9; i++)
                x9[i] = (float) (i + 1);
        {
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                assert_int_equal(cvopt_graph_new(&g), 0);
                y = run_pool(g, CVOPT_OP_MAX_POOL, 4, DIMS(1, 1, 4, 4), x16, 2, DIMS(3, 3), DIMS(2, 2), NULL, 1, 0);
                assert_shape(y, 4, DIMS(1, 1, 2, 2));
                assert_floats_near(y->data, FLOATS(11, 12, 15, 16), 4, 0);
        }
        {
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                assert_int_equal(cvopt_graph_new(&g), 0);
                y = run_pool(g, CVOPT_OP_MAX_POOL, 4, DIMS(1, 1, 4, 4), x16, 2, DIMS(3, 3), DIMS(2, 2), NULL, 0, 0);
                assert_shape(y, 4, DIMS(1, 1, 1, 1));
                assert_floats_near(y->data, FLOATS(11), 1, 0);
        }
        {
                /* 3x3 input, 2x2 kernel, pad 1 all round, count_include_pad. */
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                assert_int_equal(cvopt_graph_new(&g), 0);
                y = run_pool(g, CVOPT_OP_AVERAGE_POOL, 4, DIMS(1, 1, 3, 3), x9, 2, DIMS(2, 2), NULL, DIMS(1, 1, 1, 1), 0, 1);
                assert_shape(y, 4, DIMS(1, 1, 4, 4));
                assert_floats_near(y->data,
                                   FLOATS(0.25f, 0.75f, 1.25f, 0.75f, 1.25f, 3, 4, 2.25f, 2.75f, 6, 7, 3.75f, 1.75f,
                                          3.75f, 4.25f, 2.25f),
                                   16, 1e-6f);
        }
        {
                /* The same without count_include_pad: corners average 1 value. */
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                assert_int_equal(cvopt_graph_new(&g), 0);
                y = run_pool(g, CVOPT_OP_AVERAGE_POOL, 4, DIMS(1, 1, 3, 3), x9, 2, DIMS(2, 2), NULL, DIMS(1, 1, 1, 1), 0, 0);
                assert_floats_near(y->data,
                                   FLOATS(1, 1.5f, 2.5f, 3, 2.5f, 3, 4, 4.5f, 5.5f, 6, 7, 7.5f, 7, 7.5f, 8.5f, 9),
                                   16, 1e-6f);
        }
        {
                /* 1-D, ceil_mode: the last window covers only x[4]; with
                 * count_include_pad it still divides by 1, not 2, since the
                 * overhang is not padding. */
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                assert_int_equal(cvopt_graph_new(&g), 0);
                y = run_pool(g, CVOPT_OP_AVERAGE_POOL, 3, DIMS(1, 1, 5), x5, 1, DIMS(2), DIMS(2), NULL, 1, 1);
                assert_shape(y, 3, DIMS(1, 1, 3));
                assert_floats_near(y->data, FLOATS(1.5f, 3.5f, 5), 3, 1e-6f);
        }
        {
                /* ceil_mode never starts a window in the end padding: in 5,
                 * k 2, s 2, pad 1+1: ceil((5 + 2 - 2) / 2) + 1 = 4, but the
                 * 4th window would start at 6 >= 5 + 1, so 3 windows. */
                _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
                assert_int_equal(cvopt_graph_new(&g), 0);
                y = run_pool(g, CVOPT_OP_MAX_POOL, 3, DIMS(1, 1, 5), x5, 1, DIMS(2), DIMS(2), DIMS(1, 1), 1, 0);
                assert_shape(y, 3, DIMS(1, 1, 3));
                assert_floats_near(y->data, FLOATS(1, 3, 5), 3, 0);
        }
}

static void test_pool_auto_pad_and_dilation(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        float x[16];
        int32_t in, y;
        CvoptNode *n;
        (void) state;

        for (int i = 0; i < 16; i++)
                x[i] = (float) (i + 1);
        assert_int_equal(cvopt_graph_new(&g), 0);
        in = add_floats(g, "x", 4, DIMS(1, 1, 4, 4), x);
        y = add_output(g, "y");
        n = add_node(g, "mp", CVOPT_OP_MAX_POOL, 1, &in, y);
        /* SAME_UPPER, kernel 2, stride 1: out 4x4, pad one at the end. */
        assert_int_equal(cvopt_node_set_ints(n, "kernel_shape", 2, DIMS(2, 2)), 0);
        assert_int_equal(cvopt_node_set_string(n, "auto_pad", "SAME_UPPER"), 0);
        assert_int_equal(eval_last(g), 0);
        assert_shape(&g->tensors[y], 4, DIMS(1, 1, 4, 4));
        assert_floats_near(g->tensors[y].data, FLOATS(6, 7, 8, 8, 10, 11, 12, 12, 14, 15, 16, 16, 14, 15, 16, 16),
                           16, 0);
        /* SAME_LOWER pads at the start instead. */
        assert_int_equal(cvopt_node_set_string(&g->nodes[0], "auto_pad", "SAME_LOWER"), 0);
        assert_int_equal(eval_last(g), 0);
        assert_floats_near(g->tensors[y].data, FLOATS(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16), 16, 0);
        /* Dilation 2, kernel 2, VALID: out 2x2, window {0,2}x{0,2}. */
        assert_int_equal(cvopt_node_set_string(&g->nodes[0], "auto_pad", "VALID"), 0);
        assert_int_equal(cvopt_node_set_ints(&g->nodes[0], "dilations", 2, DIMS(2, 2)), 0);
        assert_int_equal(eval_last(g), 0);
        assert_shape(&g->tensors[y], 4, DIMS(1, 1, 2, 2));
        assert_floats_near(g->tensors[y].data, FLOATS(11, 12, 15, 16), 4, 0);
}

static void test_global_pools(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        float x[12] = { 1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6 };
        int32_t in, y_avg, y_max;
        (void) state;

        assert_int_equal(cvopt_graph_new(&g), 0);
        in = add_floats(g, "x", 4, DIMS(1, 2, 2, 3), x);
        y_avg = add_output(g, "avg");
        y_max = add_output(g, "max");
        add_node(g, "gap", CVOPT_OP_GLOBAL_AVERAGE_POOL, 1, &in, y_avg);
        assert_int_equal(eval_last(g), 0);
        add_node(g, "gmp", CVOPT_OP_GLOBAL_MAX_POOL, 1, &in, y_max);
        assert_int_equal(eval_last(g), 0);
        assert_shape(&g->tensors[y_avg], 4, DIMS(1, 2, 1, 1));
        assert_floats_near(g->tensors[y_avg].data, FLOATS(3.5f, -3.5f), 2, 1e-6f);
        assert_floats_near(g->tensors[y_max].data, FLOATS(6, -1), 2, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_conv_against_naive),
                cmocka_unit_test(test_conv_fused_activations),
                cmocka_unit_test(test_conv_errors),
                cmocka_unit_test(test_conv_kernel_too_large),
                cmocka_unit_test(test_gemm),
                cmocka_unit_test(test_gemm_errors),
                cmocka_unit_test(test_matmul),
                cmocka_unit_test(test_matmul_batch_broadcast),
                cmocka_unit_test(test_pools),
                cmocka_unit_test(test_pool_auto_pad_and_dilation),
                cmocka_unit_test(test_global_pools),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}

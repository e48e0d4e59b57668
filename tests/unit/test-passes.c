/* SPDX-License-Identifier: MIT */
/* Graph passes: each must keep the graph's outputs (checked by running the
 * graph before and after on the reference backend) while removing the nodes
 * it promises to remove. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cpu/ref-ops.h"
#include "cvopt/cvopt.h"
#include "graph-builder.h"
#include "macro.h"

/* Random BatchNormalization parameters, with a variance well away from 0
 * (a real network's running variance is) and a non-default epsilon, so a
 * fold that ignores epsilon shows. */
static int32_t add_batchnorm(CvoptGraph *g, const char *name, int32_t x, int64_t channels, const char *out_name) {
        int64_t dims[1] = { channels };
        char param_name[64];
        int32_t inputs[5], y, node;
        static const char *const suffixes[4] = { "scale", "shift", "mean", "var" };
        static const float lo[4] = { 0.5f, -1, -1, 0.2f }, hi[4] = { 1.5f, 1, 1, 2 };

        inputs[0] = x;
        for (unsigned i = 0; i < 4; i++) {
                snprintf(param_name, sizeof(param_name), "%s.%s", name, suffixes[i]);
                inputs[i + 1] = add_random_constant(g, param_name, 1, dims, lo[i], hi[i]);
        }
        y = add_unshaped(g, out_name);
        assert_int_equal(cvopt_graph_add_node(g, name, CVOPT_OP_BATCH_NORMALIZATION, 5, inputs, 1, &y, &node), 0);
        assert_int_equal(cvopt_node_set_float(&g->nodes[node], "epsilon", 1e-3f), 0);
        return y;
}

static CvoptGraph *clone_of(const CvoptGraph *g) {
        CvoptGraph *c;

        assert_int_equal(cvopt_graph_clone(g, &c), 0);
        return c;
}

/* x[1,6,7,7] -> Conv 3x3 -> BN -> y; grouped: 3 groups of 2 channels in,
 * 2 channels out each (weight [6, 2, 3, 3]), like MobileNet's grouped and
 * depthwise layers. */
static CvoptGraph *make_conv_bn(bool with_bias, bool grouped) {
        CvoptGraph *g;
        int64_t x_dims[4] = { 1, 6, 7, 7 };
        int32_t x, y, node;

        rng_state = 2024;
        assert_int_equal(cvopt_graph_new(&g), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "x", CVOPT_DTYPE_FLOAT32, 4, x_dims, &x), 0);
        node = add_conv_node(g, "conv", x, grouped ? 2 : 6, grouped ? 6 : 5, 3, with_bias, "c");
        if (grouped)
                assert_int_equal(cvopt_node_set_int(&g->nodes[node], "group", 3), 0);
        y = add_batchnorm(g, "bn", cvopt_graph_find_tensor(g, "c"), grouped ? 6 : 5, "y");
        assert_int_equal(cvopt_graph_set_inputs(g, 1, &x), 0);
        assert_int_equal(cvopt_graph_set_outputs(g, 1, &y), 0);
        assert_int_equal(cvopt_graph_infer_shapes(g), 0);
        return g;
}

static void check_conv_bn_fold(bool with_bias, bool grouped) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_conv_bn(with_bias, grouped);
        _cleanup_(cvopt_graph_freep) CvoptGraph *reference = clone_of(g);
        const CvoptNode *conv;

        assert_int_equal(cvopt_graph_fold_batchnorm(g), 0);
        assert_int_equal(cvopt_graph_validate(g), 0);
        assert_int_equal(count_op(g, CVOPT_OP_BATCH_NORMALIZATION), 0);
        assert_int_equal(g->n_nodes, 1);
        conv = find_node(g, "conv");
        /* The conv took over the BN's output, and has a bias now. */
        assert_string_equal(cvopt_node_output(g, conv, 0)->name, "y");
        assert_int_equal(conv->n_inputs, 3);
        assert_non_null(cvopt_node_input(g, conv, 2));
        assert_true(cvopt_node_input(g, conv, 2)->is_constant);
        assert_graphs_agree(g, reference, 31, 1e-5);

        /* The old weights are orphans now; pruning drops them and keeps a valid graph. */
        assert_int_equal(cvopt_graph_prune_unused(g), 0);
        assert_int_equal(cvopt_graph_validate(g), 0);
        assert_int_equal(cvopt_graph_find_tensor(g, "conv.w"), -ENOENT);
        assert_int_equal(cvopt_graph_find_tensor(g, "bn.var"), -ENOENT);
        assert_graphs_agree(g, reference, 32, 1e-5);
}

static void test_fold_batchnorm_conv(void **state) {
        (void) state;
        check_conv_bn_fold(true, false);
        check_conv_bn_fold(true, true);
}

static void test_fold_batchnorm_conv_creates_bias(void **state) {
        (void) state;
        check_conv_bn_fold(false, false);
}

/* x[4,6] -> Gemm (alpha, beta, C) -> BN over the 8 output columns -> y */
static void check_gemm_bn_fold(bool trans_b, bool with_c) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL, *reference = NULL;
        int64_t x_dims[2] = { 4, 6 }, w_dims[2], c_dims[1] = { 8 };
        int32_t x, mid, y, inputs[3], node;

        rng_state = 77;
        w_dims[0] = trans_b ? 8 : 6;
        w_dims[1] = trans_b ? 6 : 8;
        assert_int_equal(cvopt_graph_new(&g), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "x", CVOPT_DTYPE_FLOAT32, 2, x_dims, &x), 0);
        inputs[0] = x;
        inputs[1] = add_random_constant(g, "fc.w", 2, w_dims, -1, 1);
        if (with_c)
                inputs[2] = add_random_constant(g, "fc.c", 1, c_dims, -1, 1);
        mid = add_unshaped(g, "mid");
        assert_int_equal(cvopt_graph_add_node(g, "fc", CVOPT_OP_GEMM, with_c ? 3 : 2, inputs, 1, &mid, &node), 0);
        assert_int_equal(cvopt_node_set_int(&g->nodes[node], "transB", trans_b), 0);
        assert_int_equal(cvopt_node_set_float(&g->nodes[node], "alpha", 0.7f), 0);
        assert_int_equal(cvopt_node_set_float(&g->nodes[node], "beta", 1.3f), 0);
        y = add_batchnorm(g, "bn", mid, 8, "y");
        assert_int_equal(cvopt_graph_set_inputs(g, 1, &x), 0);
        assert_int_equal(cvopt_graph_set_outputs(g, 1, &y), 0);
        assert_int_equal(cvopt_graph_infer_shapes(g), 0);
        reference = clone_of(g);

        assert_int_equal(cvopt_graph_fold_batchnorm(g), 0);
        assert_int_equal(cvopt_graph_validate(g), 0);
        assert_int_equal(g->n_nodes, 1);
        assert_int_equal(g->nodes[0].op, CVOPT_OP_GEMM);
        assert_graphs_agree(g, reference, 5, 1e-5);
}

static void test_fold_batchnorm_gemm(void **state) {
        (void) state;
        check_gemm_bn_fold(true, true);
        check_gemm_bn_fold(false, true);
        check_gemm_bn_fold(true, false);
}

/* When the conv's output is read by someone else too, that reader wants the
 * value before BN: no fold. */
static void test_fold_batchnorm_skips_shared_output(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL, *reference = NULL;
        int64_t x_dims[4] = { 1, 2, 5, 5 };
        int32_t x, c, outs[2];
        (void) state;

        rng_state = 9;
        assert_int_equal(cvopt_graph_new(&g), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "x", CVOPT_DTYPE_FLOAT32, 4, x_dims, &x), 0);
        c = add_conv(g, "conv", x, 2, 3, 3, "c");
        outs[0] = add_batchnorm(g, "bn", c, 3, "y");
        outs[1] = add_unary(g, "relu", CVOPT_OP_RELU, c, "side");
        assert_int_equal(cvopt_graph_set_inputs(g, 1, &x), 0);
        assert_int_equal(cvopt_graph_set_outputs(g, 2, outs), 0);
        assert_int_equal(cvopt_graph_infer_shapes(g), 0);
        reference = clone_of(g);

        assert_int_equal(cvopt_graph_fold_batchnorm(g), 0);
        assert_int_equal(count_op(g, CVOPT_OP_BATCH_NORMALIZATION), 1);
        assert_graphs_agree(g, reference, 1, 0);
}

static void set_clip_bounds(CvoptGraph *g, float min, float max) {
        CvoptNode *clip = &g->nodes[g->n_nodes - 1];

        assert_int_equal(clip->op, CVOPT_OP_CLIP);
        assert_int_equal(cvopt_node_set_float(clip, "min", min), 0);
        assert_int_equal(cvopt_node_set_float(clip, "max", max), 0);
}

/* x -> conv1 -> Relu -> conv2 -> Clip(0, 6) -> y, and conv3 on x ->
 * Clip(-0.25, 0.5) -> z. */
static CvoptGraph *make_conv_activations(void) {
        CvoptGraph *g;
        int64_t x_dims[4] = { 1, 2, 6, 6 };
        int32_t x, t, outs[2];

        rng_state = 4;
        assert_int_equal(cvopt_graph_new(&g), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "x", CVOPT_DTYPE_FLOAT32, 4, x_dims, &x), 0);
        t = add_conv(g, "conv1", x, 2, 4, 3, "c1");
        t = add_unary(g, "relu", CVOPT_OP_RELU, t, "r1");
        t = add_conv(g, "conv2", t, 4, 4, 3, "c2");
        outs[0] = add_unary(g, "clip", CVOPT_OP_CLIP, t, "y");
        set_clip_bounds(g, 0, 6);
        t = add_conv(g, "conv3", x, 2, 3, 1, "c3");
        outs[1] = add_unary(g, "clip_attr", CVOPT_OP_CLIP, t, "z");
        set_clip_bounds(g, -0.25f, 0.5f);
        assert_int_equal(cvopt_graph_set_inputs(g, 1, &x), 0);
        assert_int_equal(cvopt_graph_set_outputs(g, 2, outs), 0);
        return g;
}

static void test_fuse_relu_and_clip(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_conv_activations();
        _cleanup_(cvopt_graph_freep) CvoptGraph *reference = NULL;
        const CvoptNode *n;
        (void) state;

        assert_int_equal(cvopt_graph_infer_shapes(g), 0);
        reference = clone_of(g);
        assert_int_equal(cvopt_graph_fuse_activations(g), 0);
        assert_int_equal(cvopt_graph_validate(g), 0);
        assert_int_equal(count_op(g, CVOPT_OP_RELU), 0);
        assert_int_equal(count_op(g, CVOPT_OP_CLIP), 0);
        assert_int_equal(g->n_nodes, 3);

        n = find_node(g, "conv1");
        assert_string_equal(cvopt_node_get_string(n, "activation", ""), "Relu");
        assert_string_equal(cvopt_node_output(g, n, 0)->name, "r1");
        n = find_node(g, "conv2");
        assert_string_equal(cvopt_node_get_string(n, "activation", ""), "Clip");
        assert_true(cvopt_node_get_float(n, "activation_min", NAN) == 0.0f);
        assert_true(cvopt_node_get_float(n, "activation_max", NAN) == 6.0f);
        /* The fused node took over the graph output. */
        assert_string_equal(cvopt_node_output(g, n, 0)->name, "y");
        n = find_node(g, "conv3");
        assert_string_equal(cvopt_node_get_string(n, "activation", ""), "Clip");
        assert_true(cvopt_node_get_float(n, "activation_min", NAN) == -0.25f);
        assert_true(cvopt_node_get_float(n, "activation_max", NAN) == 0.5f);

        assert_graphs_agree(g, reference, 8, 1e-6);
        assert_int_equal(cvopt_graph_prune_unused(g), 0);
        assert_int_equal(cvopt_graph_validate(g), 0);
        assert_int_equal(cvopt_graph_find_tensor(g, "c2"), -ENOENT);
        assert_graphs_agree(g, reference, 9, 1e-6);
}

/* MatMul (a classifier head without bias) -> Relu -> y. */
static void test_fuse_matmul(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL, *reference = NULL;
        int64_t x_dims[2] = { 3, 4 }, w_dims[2] = { 4, 5 };
        int32_t x, mm_in[2], t, y;
        (void) state;

        rng_state = 8;
        assert_int_equal(cvopt_graph_new(&g), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "x", CVOPT_DTYPE_FLOAT32, 2, x_dims, &x), 0);
        mm_in[0] = x;
        mm_in[1] = add_random_constant(g, "w", 2, w_dims, -1, 1);
        t = add_unshaped(g, "m");
        assert_int_equal(cvopt_graph_add_node(g, "mm", CVOPT_OP_MATMUL, 2, mm_in, 1, &t, NULL), 0);
        y = add_unary(g, "relu", CVOPT_OP_RELU, t, "y");
        assert_int_equal(cvopt_graph_set_inputs(g, 1, &x), 0);
        assert_int_equal(cvopt_graph_set_outputs(g, 1, &y), 0);
        assert_int_equal(cvopt_graph_infer_shapes(g), 0);
        reference = clone_of(g);

        assert_int_equal(cvopt_graph_fuse_activations(g), 0);
        assert_int_equal(g->n_nodes, 1);
        assert_string_equal(cvopt_node_get_string(&g->nodes[0], "activation", ""), "Relu");
        assert_graphs_agree(g, reference, 2, 1e-6);
}

/* Parameters are written out with ONNX's defaults, so kernels need not know
 * them; a second activation on an already fused node is left alone. */
static void test_fuse_writes_parameters(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        int64_t x_dims[2] = { 1, 4 }, w_dims[2] = { 4, 4 };
        int32_t x, w, mm_in[2], t, outs[4], clip_in[3];
        float zero = 0;
        const CvoptNode *n;
        (void) state;

        assert_int_equal(cvopt_graph_new(&g), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "x", CVOPT_DTYPE_FLOAT32, 2, x_dims, &x), 0);
        w = add_random_constant(g, "w", 2, w_dims, -1, 1);
        mm_in[0] = x;
        mm_in[1] = w;
        t = add_unshaped(g, "m1");
        assert_int_equal(cvopt_graph_add_node(g, "mm1", CVOPT_OP_MATMUL, 2, mm_in, 1, &t, NULL), 0);
        outs[0] = add_unary(g, "leaky", CVOPT_OP_LEAKY_RELU, t, "a1");
        t = add_unshaped(g, "m2");
        assert_int_equal(cvopt_graph_add_node(g, "mm2", CVOPT_OP_MATMUL, 2, mm_in, 1, &t, NULL), 0);
        t = add_unary(g, "hsig", CVOPT_OP_HARD_SIGMOID, t, "a2");
        outs[1] = add_unary(g, "tanh", CVOPT_OP_TANH, t, "a3");
        /* mm3's output is a graph output itself: its pre-activation value is wanted. */
        t = add_unshaped(g, "m3");
        assert_int_equal(cvopt_graph_add_node(g, "mm3", CVOPT_OP_MATMUL, 2, mm_in, 1, &t, NULL), 0);
        outs[2] = t;
        add_unary(g, "sig", CVOPT_OP_SIGMOID, t, "a4");
        /* Clip as opset 11 writes it, bounds as inputs: min given, max absent. */
        t = add_unshaped(g, "m4");
        assert_int_equal(cvopt_graph_add_node(g, "mm4", CVOPT_OP_MATMUL, 2, mm_in, 1, &t, NULL), 0);
        clip_in[0] = t;
        clip_in[1] = add_constant_values(g, "clip.min", CVOPT_DTYPE_FLOAT32, 0, NULL, &zero);
        clip_in[2] = -1;
        outs[3] = add_unshaped(g, "a5");
        assert_int_equal(cvopt_graph_add_node(g, "clip", CVOPT_OP_CLIP, 3, clip_in, 1, &outs[3], NULL), 0);
        assert_int_equal(cvopt_graph_set_inputs(g, 1, &x), 0);
        assert_int_equal(cvopt_graph_set_outputs(g, 4, outs), 0);

        assert_int_equal(cvopt_graph_fuse_activations(g), 0);
        assert_int_equal(cvopt_graph_validate(g), 0);
        n = find_node(g, "mm1");
        assert_string_equal(cvopt_node_get_string(n, "activation", ""), "LeakyRelu");
        assert_true(cvopt_node_get_float(n, "activation_alpha", NAN) == 0.01f);
        n = find_node(g, "mm2");
        assert_string_equal(cvopt_node_get_string(n, "activation", ""), "HardSigmoid");
        assert_true(cvopt_node_get_float(n, "activation_alpha", NAN) == 0.2f);
        assert_true(cvopt_node_get_float(n, "activation_beta", NAN) == 0.5f);
        assert_true(has_node(g, "tanh"));
        assert_false(has_node(g, "leaky"));
        assert_false(has_node(g, "hsig"));
        assert_null(cvopt_node_attr(find_node(g, "mm3"), "activation"));
        assert_true(has_node(g, "sig"));
        n = find_node(g, "mm4");
        assert_string_equal(cvopt_node_get_string(n, "activation", ""), "Clip");
        assert_true(cvopt_node_get_float(n, "activation_min", NAN) == 0.0f);
        assert_true(cvopt_node_get_float(n, "activation_max", NAN) == INFINITY);
        assert_string_equal(cvopt_node_output(g, n, 0)->name, "a5");
}

static int32_t add_int64_tensor(CvoptGraph *g, const char *name) {
        int32_t t;

        assert_int_equal(cvopt_graph_add_tensor(g, name, CVOPT_DTYPE_INT64, 0, NULL, &t), 0);
        g->tensors[t].has_shape = false;
        return t;
}

/* x[2,3,4,4] -> Conv -> c; c.view(c.size(0), -1) as PyTorch exports it:
 * Shape -> Gather(0) -> Unsqueeze -> Concat(-1) -> Reshape; then Gemm -> y.
 * exported adds what an exported model carries besides: an Identity on the
 * input, a bias-less Conv followed by BatchNormalization and Relu, a
 * Dropout before the Gemm and a Clip after it. */
static CvoptGraph *make_flatten_net(bool exported) {
        CvoptGraph *g;
        int64_t x_dims[4] = { 2, 3, 4, 4 }, one[1] = { 1 }, w_dims[2] = { 5, 64 }, b_dims[1] = { 5 };
        int64_t zero = 0, minus_one = -1, axes = 0;
        int32_t x, t, c, s, b, b1, shape, flat, y, in[3], node;

        rng_state = 321;
        assert_int_equal(cvopt_graph_new(&g), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "x", CVOPT_DTYPE_FLOAT32, 4, x_dims, &x), 0);
        if (exported) {
                t = add_unary(g, "id", CVOPT_OP_IDENTITY, x, "x_alias");
                node = add_conv_node(g, "conv", t, 3, 4, 3, false, "c_raw");
                t = add_batchnorm(g, "bn", g->nodes[node].outputs[0], 4, "bn_out");
                c = add_unary(g, "relu", CVOPT_OP_RELU, t, "c");
        } else
                c = add_conv(g, "conv", x, 3, 4, 3, "c");

        s = add_int64_tensor(g, "s");
        assert_int_equal(cvopt_graph_add_node(g, "shape", CVOPT_OP_SHAPE, 1, &c, 1, &s, NULL), 0);
        in[0] = s;
        in[1] = add_constant_values(g, "index0", CVOPT_DTYPE_INT64, 0, NULL, &zero);
        b = add_int64_tensor(g, "b");
        assert_int_equal(cvopt_graph_add_node(g, "gather", CVOPT_OP_GATHER, 2, in, 1, &b, &node), 0);
        assert_int_equal(cvopt_node_set_int(&g->nodes[node], "axis", 0), 0);
        /* axes as an attribute (opset < 13; the importer turns opset-13
         * axes inputs into it). */
        b1 = add_int64_tensor(g, "b1");
        assert_int_equal(cvopt_graph_add_node(g, "unsqueeze", CVOPT_OP_UNSQUEEZE, 1, &b, 1, &b1, &node), 0);
        assert_int_equal(cvopt_node_set_ints(&g->nodes[node], "axes", 1, &axes), 0);
        in[0] = b1;
        in[1] = add_constant_values(g, "minus_one", CVOPT_DTYPE_INT64, 1, one, &minus_one);
        shape = add_int64_tensor(g, "shape_value");
        assert_int_equal(cvopt_graph_add_node(g, "concat", CVOPT_OP_CONCAT, 2, in, 1, &shape, &node), 0);
        assert_int_equal(cvopt_node_set_int(&g->nodes[node], "axis", 0), 0);
        in[0] = c;
        in[1] = shape;
        flat = add_unshaped(g, "flat");
        assert_int_equal(cvopt_graph_add_node(g, "reshape", CVOPT_OP_RESHAPE, 2, in, 1, &flat, NULL), 0);

        in[0] = exported ? add_unary(g, "drop", CVOPT_OP_DROPOUT, flat, "flat_dropped") : flat;
        in[1] = add_random_constant(g, "fc.w", 2, w_dims, -1, 1);
        in[2] = add_random_constant(g, "fc.b", 1, b_dims, -1, 1);
        y = add_unshaped(g, exported ? "fc_out" : "y");
        assert_int_equal(cvopt_graph_add_node(g, "fc", CVOPT_OP_GEMM, 3, in, 1, &y, &node), 0);
        assert_int_equal(cvopt_node_set_int(&g->nodes[node], "transB", 1), 0);
        if (exported) {
                y = add_unary(g, "clip", CVOPT_OP_CLIP, y, "y");
                assert_int_equal(cvopt_node_set_float(&g->nodes[g->n_nodes - 1], "min", -0.5f), 0);
                assert_int_equal(cvopt_node_set_float(&g->nodes[g->n_nodes - 1], "max", 0.5f), 0);
        }
        assert_int_equal(cvopt_graph_set_inputs(g, 1, &x), 0);
        assert_int_equal(cvopt_graph_set_outputs(g, 1, &y), 0);
        assert_int_equal(cvopt_graph_validate(g), 0);
        return g;
}

static void test_flatten_chain_folds(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_flatten_net(false);
        const CvoptTensor *shape, *flat, *y;
        const CvoptNode *reshape;
        (void) state;

        assert_int_equal(cvopt_graph_infer_shapes(g), 0);
        assert_int_equal(cvopt_graph_validate(g), 0);
        assert_int_equal(g->n_nodes, 3);
        assert_int_equal(g->nodes[0].op, CVOPT_OP_CONV);
        assert_int_equal(g->nodes[1].op, CVOPT_OP_RESHAPE);
        assert_int_equal(g->nodes[2].op, CVOPT_OP_GEMM);

        reshape = &g->nodes[1];
        shape = cvopt_node_input(g, reshape, 1);
        assert_true(shape->is_constant);
        assert_int_equal(shape->dtype, CVOPT_DTYPE_INT64);
        assert_int_equal(cvopt_tensor_count(shape), 2);
        assert_int_equal(((const int64_t *) shape->data)[0], 2);
        assert_int_equal(((const int64_t *) shape->data)[1], -1);
        flat = cvopt_node_output(g, reshape, 0);
        assert_int_equal(flat->ndim, 2);
        assert_int_equal(flat->dims[0], 2);
        assert_int_equal(flat->dims[1], 64);
        y = &g->tensors[g->outputs[0]];
        assert_true(y->has_shape);
        assert_int_equal(y->ndim, 2);
        assert_int_equal(y->dims[0], 2);
        assert_int_equal(y->dims[1], 5);

        /* The chain's tensors are gone after pruning, the graph still valid. */
        assert_int_equal(cvopt_graph_prune_unused(g), 0);
        assert_int_equal(cvopt_graph_validate(g), 0);
        assert_int_equal(cvopt_graph_find_tensor(g, "s"), -ENOENT);
        assert_int_equal(cvopt_graph_find_tensor(g, "index0"), -ENOENT);

        /* Running it agrees with reshaping by hand. */
        {
                _cleanup_(cvopt_session_freep) CvoptSession *s = NULL;

                assert_int_equal(cvopt_session_new(g, NULL, &s), 0);
                fill_input(s, 0, 1);
                assert_int_equal(cvopt_session_run(s), 0);
                assert_int_equal(cvopt_tensor_count(cvopt_session_output(s, 0)), 10);
        }
}

/* x -> Identity -> Conv -> Dropout -> Relu -> Identity -> y, and x -> Identity -> x_copy. */
static CvoptGraph *make_identity_net(bool with_identities) {
        CvoptGraph *g;
        int64_t x_dims[4] = { 1, 2, 5, 5 };
        int32_t x, t, outs[2];

        rng_state = 55;
        assert_int_equal(cvopt_graph_new(&g), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "x", CVOPT_DTYPE_FLOAT32, 4, x_dims, &x), 0);
        t = with_identities ? add_unary(g, "id_in", CVOPT_OP_IDENTITY, x, "x_alias") : x;
        t = add_conv(g, "conv", t, 2, 3, 3, "c");
        if (with_identities)
                t = add_unary(g, "drop", CVOPT_OP_DROPOUT, t, "d");
        t = add_unary(g, "relu", CVOPT_OP_RELU, t, with_identities ? "r" : "y");
        outs[0] = with_identities ? add_unary(g, "id_out", CVOPT_OP_IDENTITY, t, "y") : t;
        outs[1] = add_unary(g, "id_copy", CVOPT_OP_IDENTITY, x, "x_copy");
        assert_int_equal(cvopt_graph_set_inputs(g, 1, &x), 0);
        assert_int_equal(cvopt_graph_set_outputs(g, 2, outs), 0);
        return g;
}

static void test_remove_identities(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_identity_net(true);
        _cleanup_(cvopt_graph_freep) CvoptGraph *plain = make_identity_net(false);
        const CvoptNode *conv, *relu, *copy;
        (void) state;

        assert_int_equal(cvopt_graph_remove_identities(g), 0);
        assert_int_equal(cvopt_graph_validate(g), 0);
        assert_int_equal(count_op(g, CVOPT_OP_DROPOUT), 0);
        /* Only the input-to-output copy stays: nothing else could write x_copy. */
        assert_int_equal(count_op(g, CVOPT_OP_IDENTITY), 1);
        assert_int_equal(g->n_nodes, 3);
        conv = find_node(g, "conv");
        relu = find_node(g, "relu");
        copy = find_node(g, "id_copy");
        assert_int_equal(copy->op, CVOPT_OP_IDENTITY);
        assert_string_equal(cvopt_node_input(g, conv, 0)->name, "x");
        assert_string_equal(cvopt_node_input(g, relu, 0)->name, "c");
        /* The graph output keeps its name: relu now writes y. */
        assert_string_equal(cvopt_node_output(g, relu, 0)->name, "y");
        assert_string_equal(g->tensors[g->outputs[0]].name, "y");
        assert_string_equal(g->tensors[g->outputs[1]].name, "x_copy");

        assert_int_equal(cvopt_graph_prune_unused(g), 0);
        assert_int_equal(cvopt_graph_validate(g), 0);
        assert_int_equal(cvopt_graph_find_tensor(g, "x_alias"), -ENOENT);
        assert_int_equal(cvopt_graph_find_tensor(g, "d"), -ENOENT);

        assert_int_equal(cvopt_graph_infer_shapes(g), 0);
        assert_int_equal(cvopt_graph_infer_shapes(plain), 0);
        assert_graphs_agree(g, plain, 3, 0);
}

/* Everything at once, as the optimizer runs it on an imported model. */
static void test_optimize_pipeline(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_flatten_net(true);
        _cleanup_(cvopt_graph_freep) CvoptGraph *reference = clone_of(g);
        const CvoptNode *conv, *gemm;
        (void) state;

        assert_int_equal(cvopt_graph_optimize(g), 0);
        assert_int_equal(cvopt_graph_validate(g), 0);
        assert_int_equal(g->n_nodes, 3);
        conv = &g->nodes[0];
        assert_int_equal(conv->op, CVOPT_OP_CONV);
        assert_string_equal(cvopt_node_get_string(conv, "activation", ""), "Relu");
        assert_non_null(cvopt_node_input(g, conv, 2));
        assert_int_equal(g->nodes[1].op, CVOPT_OP_RESHAPE);
        gemm = &g->nodes[2];
        assert_int_equal(gemm->op, CVOPT_OP_GEMM);
        assert_string_equal(cvopt_node_get_string(gemm, "activation", ""), "Clip");
        assert_string_equal(cvopt_node_output(g, gemm, 0)->name, "y");
        /* Pruned: every tensor is used by a node or is a graph input/output. */
        for (uint32_t i = 0; i < g->n_tensors; i++) {
                bool used = false;

                for (uint32_t k = 0; k < g->n_nodes; k++) {
                        for (uint32_t s = 0; s < g->nodes[k].n_inputs; s++)
                                used |= g->nodes[k].inputs[s] == (int32_t) i;
                        for (uint32_t s = 0; s < g->nodes[k].n_outputs; s++)
                                used |= g->nodes[k].outputs[s] == (int32_t) i;
                }
                if (!used)
                        fail_msg("tensor '%s' left after pruning", g->tensors[i].name);
        }

        /* The reference keeps BN, Relu and Clip as nodes (identity removal
         * has its own test, and needs no kernel to compare against). */
        assert_int_equal(cvopt_graph_remove_identities(reference), 0);
        assert_int_equal(cvopt_graph_infer_shapes(reference), 0);
        assert_int_equal(count_op(reference, CVOPT_OP_BATCH_NORMALIZATION), 1);
        assert_graphs_agree(g, reference, 12, 1e-5);

        /* A second run finds nothing left to do: loading an optimized
         * model and optimizing it again must be harmless. */
        assert_int_equal(cvopt_graph_optimize(g), 0);
        assert_int_equal(g->n_nodes, 3);
        assert_graphs_agree(g, reference, 13, 1e-5);
}

static void test_infer_shapes_errors(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_flatten_net(false);
        int32_t x = cvopt_graph_find_tensor(g, "x");
        (void) state;

        g->tensors[x].has_shape = false;
        assert_int_equal(cvopt_graph_infer_shapes(g), -CVOPT_E_SHAPE);
        assert_non_null(strstr(cvopt_error_detail(), "graph input 'x' has no known shape"));
        /* A dynamic batch size must be fixed before planning. */
        g->tensors[x].has_shape = true;
        g->tensors[x].dims[0] = -1;
        assert_int_equal(cvopt_graph_infer_shapes(g), -CVOPT_E_SHAPE);
        assert_non_null(strstr(cvopt_error_detail(), "'x'"));
        /* Unchanged in meaning: nothing was folded away. */
        assert_int_equal(g->n_nodes, 7);
}

/* A failure after some nodes were folded still leaves a valid graph: here
 * the Reshape's target shape is a run-time input, which no shape function
 * can know ahead of time, and the Shape chain before it was already folded. */
static void test_infer_shapes_failure_leaves_valid_graph(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_flatten_net(false);
        int64_t two[1] = { 2 };
        int32_t x = cvopt_graph_find_tensor(g, "x"), dyn, inputs[2];
        CvoptNode *reshape = (CvoptNode *) find_node(g, "reshape");
        (void) state;

        /* The Reshape reads its shape from a graph input instead of the chain. */
        assert_int_equal(cvopt_graph_add_tensor(g, "dyn_shape", CVOPT_DTYPE_INT64, 1, two, &dyn), 0);
        reshape->inputs[1] = dyn;
        inputs[0] = x;
        inputs[1] = dyn;
        assert_int_equal(cvopt_graph_set_inputs(g, 2, inputs), 0);
        assert_int_equal(cvopt_graph_validate(g), 0);

        assert_true(cvopt_graph_infer_shapes(g) < 0);
        assert_true(strlen(cvopt_error_detail()) > 0);
        assert_int_equal(count_op(g, CVOPT_OP_SHAPE), 0);
        assert_int_equal(cvopt_graph_validate(g), 0);
}

/* An op with no reference implementation (today every ONNX op in the enum
 * has one, so an op number from a newer file stands in for it). */
static void test_infer_shapes_unsupported_op(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        int64_t dims[2] = { 1, 4 };
        int missing = _CVOPT_OP_MAX;
        int32_t x, y, node;
        char expected[128];
        (void) state;

        for (int op = 0; op < _CVOPT_OP_MAX && missing == _CVOPT_OP_MAX; op++)
                if (!ref_op_lookup((CvoptOp) op))
                        missing = op;
        assert_int_equal(cvopt_graph_new(&g), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "x", CVOPT_DTYPE_FLOAT32, 2, dims, &x), 0);
        y = add_unshaped(g, "y");
        assert_int_equal(cvopt_graph_add_node(g, "mystery", CVOPT_OP_RELU, 1, &x, 1, &y, &node), 0);
        g->nodes[node].op = (CvoptOp) missing;
        assert_int_equal(cvopt_graph_set_inputs(g, 1, &x), 0);
        assert_int_equal(cvopt_graph_set_outputs(g, 1, &y), 0);
        assert_int_equal(cvopt_graph_infer_shapes(g), -CVOPT_E_UNSUPPORTED);
        snprintf(expected, sizeof(expected), "node 'mystery' (op %s): no implementation",
                 missing == _CVOPT_OP_MAX ? "invalid" : cvopt_op_name((CvoptOp) missing));
        assert_string_equal(cvopt_error_detail(), expected);
        assert_int_equal(g->n_nodes, 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fold_batchnorm_conv),
                cmocka_unit_test(test_fold_batchnorm_conv_creates_bias),
                cmocka_unit_test(test_fold_batchnorm_gemm),
                cmocka_unit_test(test_fold_batchnorm_skips_shared_output),
                cmocka_unit_test(test_fuse_relu_and_clip),
                cmocka_unit_test(test_fuse_matmul),
                cmocka_unit_test(test_fuse_writes_parameters),
                cmocka_unit_test(test_flatten_chain_folds),
                cmocka_unit_test(test_remove_identities),
                cmocka_unit_test(test_optimize_pipeline),
                cmocka_unit_test(test_infer_shapes_errors),
                cmocka_unit_test(test_infer_shapes_failure_leaves_valid_graph),
                cmocka_unit_test(test_infer_shapes_unsupported_op),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}

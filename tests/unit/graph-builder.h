/* SPDX-License-Identifier: MIT */
#pragma once

/* Helpers for tests that build small graphs by hand and compare runs
 * (test-passes, test-session). Include after <cmocka.h>. */

#include <math.h>
#include <stdio.h>

#include "cvopt/cvopt.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptGraph *, cvopt_graph_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptSession *, cvopt_session_free);

/* A fixed-seed generator, so a failure reproduces on every machine. */
static uint32_t rng_state = 12345;

static inline float random_uniform(float lo, float hi) {
        rng_state = rng_state * 1664525u + 1013904223u;
        return lo + (hi - lo) * (float) (rng_state >> 8) / (float) (1u << 24);
}

static inline int32_t add_constant_values(CvoptGraph *g, const char *name, CvoptDType dtype, uint32_t ndim,
                                          const int64_t *dims, const void *values) {
        int64_t count = 1;
        size_t bytes;
        void *data;
        int32_t index;

        for (uint32_t i = 0; i < ndim; i++)
                count *= dims[i];
        bytes = (size_t) count * cvopt_dtype_size(dtype);
        data = malloc(MAX(bytes, 1u));
        assert_non_null(data);
        memcpy(data, values, bytes);
        assert_int_equal(cvopt_graph_add_constant(g, name, dtype, ndim, dims, data, true, &index), 0);
        return index;
}

/* Uniform in [lo, hi). */
static inline int32_t add_random_constant(CvoptGraph *g, const char *name, uint32_t ndim, const int64_t *dims,
                                          float lo, float hi) {
        int64_t count = 1;
        float *data;
        int32_t index;

        for (uint32_t i = 0; i < ndim; i++)
                count *= dims[i];
        data = malloc(MAX(count, 1) * sizeof(float));
        assert_non_null(data);
        for (int64_t i = 0; i < count; i++)
                data[i] = random_uniform(lo, hi);
        assert_int_equal(cvopt_graph_add_constant(g, name, CVOPT_DTYPE_FLOAT32, ndim, dims, data, true, &index), 0);
        return index;
}

/* A tensor whose shape shape inference will find. */
static inline int32_t add_unshaped(CvoptGraph *g, const char *name) {
        int32_t t;

        assert_int_equal(cvopt_graph_add_tensor(g, name, CVOPT_DTYPE_FLOAT32, 0, NULL, &t), 0);
        g->tensors[t].has_shape = false;
        return t;
}

/* Conv k x k, stride 1, "same" padding, random weights and (if with_bias) bias.
 * Returns the node index; the output tensor is named out_name. */
static inline int32_t add_conv_node(CvoptGraph *g, const char *name, int32_t x, int64_t c_in, int64_t c_out,
                                    int64_t k, bool with_bias, const char *out_name) {
        int64_t w_dims[4] = { c_out, c_in, k, k }, b_dims[1] = { c_out };
        int64_t pads[4] = { k / 2, k / 2, k / 2, k / 2 }, strides[2] = { 1, 1 }, kernel[2] = { k, k };
        char w_name[64], b_name[64];
        int32_t inputs[3], y, node;

        snprintf(w_name, sizeof(w_name), "%s.w", name);
        snprintf(b_name, sizeof(b_name), "%s.b", name);
        inputs[0] = x;
        inputs[1] = add_random_constant(g, w_name, 4, w_dims, -1, 1);
        if (with_bias)
                inputs[2] = add_random_constant(g, b_name, 1, b_dims, -1, 1);
        y = add_unshaped(g, out_name);
        assert_int_equal(cvopt_graph_add_node(g, name, CVOPT_OP_CONV, with_bias ? 3 : 2, inputs, 1, &y, &node), 0);
        assert_int_equal(cvopt_node_set_ints(&g->nodes[node], "pads", 4, pads), 0);
        assert_int_equal(cvopt_node_set_ints(&g->nodes[node], "strides", 2, strides), 0);
        assert_int_equal(cvopt_node_set_ints(&g->nodes[node], "kernel_shape", 2, kernel), 0);
        return node;
}

static inline int32_t add_conv(CvoptGraph *g, const char *name, int32_t x, int64_t c_in, int64_t c_out, int64_t k,
                               const char *out_name) {
        int32_t node = add_conv_node(g, name, x, c_in, c_out, k, true, out_name);

        return g->nodes[node].outputs[0];
}

/* Node with one input and one new output; returns the output. */
static inline int32_t add_unary(CvoptGraph *g, const char *name, CvoptOp op, int32_t x, const char *out_name) {
        int32_t y = add_unshaped(g, out_name);

        assert_int_equal(cvopt_graph_add_node(g, name, op, 1, &x, 1, &y, NULL), 0);
        return y;
}

static inline bool has_node(const CvoptGraph *g, const char *name) {
        for (uint32_t k = 0; k < g->n_nodes; k++)
                if (streq(g->nodes[k].name, name))
                        return true;
        return false;
}

/* The node called name; fails the test if there is none. */
static inline const CvoptNode *find_node(const CvoptGraph *g, const char *name) {
        for (uint32_t k = 0; k < g->n_nodes; k++)
                if (streq(g->nodes[k].name, name))
                        return &g->nodes[k];
        fail_msg("no node '%s'", name);
        abort();
}

static inline uint32_t count_op(const CvoptGraph *g, CvoptOp op) {
        uint32_t count = 0;

        for (uint32_t k = 0; k < g->n_nodes; k++)
                count += g->nodes[k].op == op;
        return count;
}

static inline void fill_input(CvoptSession *s, uint32_t index, uint32_t seed) {
        CvoptTensor *in = cvopt_session_input(s, index);
        int64_t count = cvopt_tensor_count(in);

        rng_state = seed;
        for (int64_t i = 0; i < count; i++)
                ((float *) in->data)[i] = random_uniform(-2, 2);
}

/* |a - b| <= rel_tol * max(1, |b|), element by element. */
static inline void assert_close(const float *a, const float *b, size_t count, double rel_tol) {
        for (size_t i = 0; i < count; i++) {
                double scale = MAX(1.0, fabs((double) b[i]));

                if (!(fabs((double) a[i] - b[i]) <= rel_tol * scale))
                        fail_msg("element %zu: %.9g != %.9g", i, (double) a[i], (double) b[i]);
        }
}

/* Runs a and b (graphs with the same inputs and outputs) on the same random
 * input and checks every output agrees within rel_tol. */
static inline void assert_graphs_agree(const CvoptGraph *a, const CvoptGraph *b, uint32_t seed, double rel_tol) {
        _cleanup_(cvopt_session_freep) CvoptSession *sa = NULL, *sb = NULL;

        assert_int_equal(cvopt_session_new(a, NULL, &sa), 0);
        assert_int_equal(cvopt_session_new(b, NULL, &sb), 0);
        assert_int_equal(cvopt_session_n_inputs(sa), cvopt_session_n_inputs(sb));
        assert_int_equal(cvopt_session_n_outputs(sa), cvopt_session_n_outputs(sb));
        for (uint32_t i = 0; i < cvopt_session_n_inputs(sa); i++) {
                fill_input(sa, i, seed + i);
                fill_input(sb, i, seed + i);
        }
        assert_int_equal(cvopt_session_run(sa), 0);
        assert_int_equal(cvopt_session_run(sb), 0);
        for (uint32_t i = 0; i < cvopt_session_n_outputs(sa); i++) {
                const CvoptTensor *ta = cvopt_session_output(sa, i), *tb = cvopt_session_output(sb, i);

                assert_string_equal(ta->name, tb->name);
                assert_int_equal(cvopt_tensor_count(ta), cvopt_tensor_count(tb));
                assert_close(ta->data, tb->data, cvopt_tensor_count(ta), rel_tol);
        }
}

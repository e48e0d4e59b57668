/* SPDX-License-Identifier: MIT */
#pragma once

/* Helpers for the reference-operator tests: one-node graphs with constant
 * inputs, evaluated through the op table's infer and run. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "cpu/ref-ops.h"
#include "cvopt/cvopt.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptGraph *, cvopt_graph_free);

/* A deterministic generator, so a failure reproduces. */
_unused_ static uint32_t rng_state = 12345;

static inline float rand_float(void) {
        rng_state = rng_state * 1664525u + 1013904223u;
        return (float) ((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static inline float *rand_floats(size_t count) {
        float *v = malloc(MAX(count, (size_t) 1) * sizeof(float));

        assert_non_null(v);
        for (size_t i = 0; i < count; i++)
                v[i] = rand_float();
        return v;
}

static inline size_t dims_count(uint32_t ndim, const int64_t *dims) {
        size_t c = 1;

        for (uint32_t i = 0; i < ndim; i++)
                c *= (size_t) dims[i];
        return c;
}

/* Adds a constant holding a copy of data. */
static inline int32_t add_const(CvoptGraph *g, const char *name, CvoptDType dtype, uint32_t ndim, const int64_t *dims,
                         const void *data) {
        size_t bytes = dims_count(ndim, dims) * cvopt_dtype_size(dtype);
        void *copy = malloc(MAX(bytes, (size_t) 1));
        int32_t index;

        assert_non_null(copy);
        if (bytes)
                memcpy(copy, data, bytes);
        assert_int_equal(cvopt_graph_add_constant(g, name, dtype, ndim, dims, copy, true, &index), 0);
        return index;
}

static inline int32_t add_floats(CvoptGraph *g, const char *name, uint32_t ndim, const int64_t *dims, const float *data) {
        return add_const(g, name, CVOPT_DTYPE_FLOAT32, ndim, dims, data);
}

static inline int32_t add_output(CvoptGraph *g, const char *name) {
        int32_t index;

        assert_int_equal(cvopt_graph_add_tensor(g, name, CVOPT_DTYPE_UNDEFINED, 0, NULL, &index), 0);
        g->tensors[index].has_shape = false;
        return index;
}

static inline CvoptNode *add_node(CvoptGraph *g, const char *name, CvoptOp op, uint32_t n_in, const int32_t *in,
                           int32_t out) {
        int32_t index;

        assert_int_equal(cvopt_graph_add_node(g, name, op, n_in, in, 1, &out, &index), 0);
        return &g->nodes[index];
}

/* Runs infer and run of node (by index, since the node array may move),
 * allocating its outputs. Returns the first error. */
static inline int eval_node(CvoptGraph *g, uint32_t node_index) {
        CvoptNode *n = &g->nodes[node_index];
        const RefOp *op = ref_op_lookup(n->op);
        const CvoptTensor *inputs[16] = { NULL };
        CvoptTensor *outputs[4] = { NULL };
        int r;

        assert_non_null(op);
        assert_true(n->n_inputs <= 16 && n->n_outputs <= 4);
        cvopt_error_clear();
        r = op->infer(g, n);
        if (r < 0)
                return r;
        for (uint32_t i = 0; i < n->n_inputs; i++)
                inputs[i] = cvopt_node_input(g, n, i);
        for (uint32_t i = 0; i < n->n_outputs; i++) {
                CvoptTensor *t = cvopt_node_output(g, n, i);

                outputs[i] = t;
                if (!t || t->is_constant)
                        continue;
                assert_true(t->has_shape);
                free(t->data);
                t->data = malloc(MAX(cvopt_tensor_bytes(t), (size_t) 1));
                assert_non_null(t->data);
                t->owns_data = true;
        }
        return op->run(n, inputs, outputs);
}

/* Last node of g. */
static inline int eval_last(CvoptGraph *g) {
        return eval_node(g, g->n_nodes - 1);
}

static inline void assert_shape(const CvoptTensor *t, uint32_t ndim, const int64_t *dims) {
        char got[128];

        cvopt_tensor_shape_str(t, got, sizeof(got));
        if (t->ndim != ndim || (ndim > 0 && memcmp(t->dims, dims, ndim * sizeof(int64_t)) != 0))
                fail_msg("shape of '%s' is %s", t->name, got);
}

static inline void assert_floats_near(const float *got, const float *want, size_t count, float rel) {
        for (size_t i = 0; i < count; i++) {
                float tol = rel * MAX(1.0f, fabsf(want[i]));

                if (!(fabsf(got[i] - want[i]) <= tol))
                        fail_msg("element %zu: got %.9g, want %.9g", i, (double) got[i], (double) want[i]);
        }
}

static inline void assert_error_names_node(int r, int want, const char *node) {
        assert_int_equal(r, want);
        if (!strstr(cvopt_error_detail(), node))
                fail_msg("detail '%s' does not name node '%s'", cvopt_error_detail(), node);
}

#define DIMS(...) ((const int64_t[]) { __VA_ARGS__ })
#define FLOATS(...) ((const float[]) { __VA_ARGS__ })


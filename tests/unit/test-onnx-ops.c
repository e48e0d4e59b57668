/* SPDX-License-Identifier: MIT */
/* ONNX importer, Slice and the reductions: each opset form becomes the IR's
 * one form (Slice: parameters as inputs; ReduceMean/Max/Sum: axes as an
 * attribute), attributes an opset does not have fail, and parameters that
 * stay run-time values are refused with the node named. Models are built
 * with onnx-builder.h; the Debian test data covers opset 13 only. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "cvopt/cvopt.h"
#include "macro.h"
#include "onnx-import.h"
#include "onnx.pb-c.h"
#include "onnx-builder.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptModel *, cvopt_model_free);

/* x: [3, 4] holding 0..11, the Slice tests' input. */
static const int64_t x34_dims[2] = { 3, 4 };

static Onnx__ModelProto *model_slice(int64_t opset, Onnx__NodeProto **ret_node) {
        Onnx__ModelProto *m = model_new(opset);

        add_input(m, "x", 2, x34_dims);
        add_output(m, "y");
        *ret_node = add_node(m, "Slice", "x", NULL, "y");
        return m;
}

/* Infers shapes and runs the imported graph on x = 0..11; returns y. */
static void run_x34(CvoptModel *m, uint32_t count, const float *want) {
        CvoptSession *s = NULL;
        const CvoptTensor *y;
        float *x;

        if (cvopt_graph_optimize(m->graph) < 0)
                fail_msg("optimize: %s", cvopt_error_detail());
        assert_int_equal(cvopt_session_new(m->graph, NULL, &s), 0);
        x = cvopt_session_input(s, 0)->data;
        for (int i = 0; i < 12; i++)
                x[i] = (float) i;
        assert_int_equal(cvopt_session_run(s), 0);
        y = cvopt_session_output(s, 0);
        assert_int_equal(cvopt_tensor_count(y), count);
        for (uint32_t i = 0; i < count; i++)
                assert_true(((const float *) y->data)[i] == want[i]);
        cvopt_session_free(s);
}

static const CvoptTensor *node_input(const CvoptModel *m, uint32_t slot) {
        const CvoptTensor *t = cvopt_node_input(m->graph, &m->graph->nodes[0], slot);

        assert_non_null(t);
        return t;
}

static void test_slice_opset9_attributes_become_inputs(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
        Onnx__ModelProto *mp;
        Onnx__NodeProto *n;
        (void) state;

        /* x[1:100, -3:], the axes given (one negative). */
        mp = model_slice(9, &n);
        attr_ints(n, "starts", 2, (int64_t[]) { 1, -3 });
        attr_ints(n, "ends", 2, (int64_t[]) { 100, INT64_MAX });
        attr_ints(n, "axes", 2, (int64_t[]) { 0, -1 });
        assert_int_equal(import_model(mp, &m), 0);
        assert_int_equal(m->graph->n_nodes, 1);
        assert_int_equal(m->graph->nodes[0].op, CVOPT_OP_SLICE);
        assert_int_equal(m->graph->nodes[0].n_inputs, 4);
        assert_int_equal(m->graph->nodes[0].n_attrs, 0);
        assert_string_equal(node_input(m, 1)->name, "y/starts");
        assert_true(node_input(m, 1)->is_constant);
        assert_int_equal(node_input(m, 1)->dtype, CVOPT_DTYPE_INT64);
        assert_memory_equal(node_input(m, 2)->data, ((int64_t[]) { 100, INT64_MAX }), 2 * sizeof(int64_t));
        assert_memory_equal(node_input(m, 3)->data, ((int64_t[]) { 0, -1 }), 2 * sizeof(int64_t));
        run_x34(m, 6, (const float[]) { 5, 6, 7, 9, 10, 11 });
        m = cvopt_model_free(m);

        /* Without axes: the first len(starts) dims. */
        mp = model_slice(9, &n);
        attr_ints(n, "starts", 1, (int64_t[]) { 2 });
        attr_ints(n, "ends", 1, (int64_t[]) { 3 });
        assert_int_equal(import_model(mp, &m), 0);
        assert_int_equal(m->graph->nodes[0].n_inputs, 3);
        run_x34(m, 4, (const float[]) { 8, 9, 10, 11 });
        m = cvopt_model_free(m);

        mp = model_slice(9, &n);
        attr_ints(n, "starts", 1, (int64_t[]) { 2 });
        assert_int_equal(import_model(mp, &m), -CVOPT_E_FORMAT);
        assert_non_null(strstr(cvopt_error_detail(), "node 'y' (op Slice): attribute 'ends' missing"));

        /* An opset-9 Slice has no inputs beyond data. */
        mp = model_slice(9, &n);
        attr_ints(n, "starts", 1, (int64_t[]) { 2 });
        attr_ints(n, "ends", 1, (int64_t[]) { 3 });
        add_int64_init(mp, "s", 1, (int64_t[]) { 0 });
        node_add_input(n, "s");
        assert_int_equal(import_model(mp, &m), -CVOPT_E_FORMAT);
        assert_non_null(strstr(cvopt_error_detail(), "opset 9 Slice takes 1"));
}

static void test_slice_opset13_inputs(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
        Onnx__ModelProto *mp;
        Onnx__NodeProto *n;
        (void) state;

        /* x[::-1, 3::-2] with every parameter an initializer. */
        mp = model_slice(13, &n);
        add_int64_init(mp, "starts", 2, (int64_t[]) { -1, 3 });
        add_int64_init(mp, "ends", 2, (int64_t[]) { INT64_MIN, -100 });
        add_int64_init(mp, "axes", 2, (int64_t[]) { 0, 1 });
        add_int64_init(mp, "steps", 2, (int64_t[]) { -1, -2 });
        node_add_input(n, "starts");
        node_add_input(n, "ends");
        node_add_input(n, "axes");
        node_add_input(n, "steps");
        assert_int_equal(import_model(mp, &m), 0);
        assert_int_equal(m->graph->nodes[0].n_inputs, 5);
        run_x34(m, 6, (const float[]) { 11, 9, 7, 5, 3, 1 });
        m = cvopt_model_free(m);

        /* Absent axes ("") with steps: the first dims. */
        mp = model_slice(13, &n);
        add_int64_init(mp, "starts", 1, (int64_t[]) { 0 });
        add_int64_init(mp, "ends", 1, (int64_t[]) { 3 });
        add_int64_init(mp, "steps", 1, (int64_t[]) { 2 });
        node_add_input(n, "starts");
        node_add_input(n, "ends");
        node_add_input(n, "");
        node_add_input(n, "steps");
        assert_int_equal(import_model(mp, &m), 0);
        run_x34(m, 8, (const float[]) { 0, 1, 2, 3, 8, 9, 10, 11 });
        m = cvopt_model_free(m);

        /* The opset-9 attributes do not exist in 13. */
        mp = model_slice(13, &n);
        attr_ints(n, "starts", 1, (int64_t[]) { 2 });
        assert_int_equal(import_model(mp, &m), -CVOPT_E_UNSUPPORTED);
        assert_non_null(strstr(cvopt_error_detail(), "(op Slice): attribute 'starts' = [2] not supported"));

        mp = model_slice(13, &n);
        add_int64_init(mp, "starts", 1, (int64_t[]) { 0 });
        node_add_input(n, "starts");
        assert_int_equal(import_model(mp, &m), -CVOPT_E_FORMAT);
        assert_non_null(strstr(cvopt_error_detail(), "inputs 'starts' and 'ends' are required"));
}

/* starts fed at run time: the import keeps it (it may fold), and shape
 * inference refuses it with op, node and reason. */
static void test_slice_runtime_starts_refused(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
        Onnx__ModelProto *mp;
        Onnx__NodeProto *n;
        (void) state;

        mp = model_slice(13, &n);
        n->name = arena_strdup("chunk0");
        APPEND(mp->graph->n_input, mp->graph->input,
               value_info("starts", ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, (int64_t[]) { 1 }));
        add_int64_init(mp, "ends", 1, (int64_t[]) { 2 });
        node_add_input(n, "starts");
        node_add_input(n, "ends");
        assert_int_equal(import_model(mp, &m), 0);
        assert_int_equal(cvopt_graph_optimize(m->graph), -CVOPT_E_UNSUPPORTED);
        assert_non_null(strstr(cvopt_error_detail(),
                               "node 'chunk0' (Slice): starts input 'starts' is computed at run time, not supported"));
}

/* ---- reductions ---- */

static Onnx__ModelProto *model_reduce(int64_t opset, const char *op, Onnx__NodeProto **ret_node) {
        Onnx__ModelProto *m = model_new(opset);

        add_input(m, "x", 4, (int64_t[]) { 1, 3, 2, 2 });
        add_output(m, "y");
        *ret_node = add_node(m, op, "x", NULL, "y");
        return m;
}

static void assert_reduce_shape(CvoptModel *m, uint32_t ndim, const int64_t *dims) {
        const CvoptTensor *y;

        if (cvopt_graph_infer_shapes(m->graph) < 0)
                fail_msg("infer: %s", cvopt_error_detail());
        y = &m->graph->tensors[cvopt_graph_find_tensor(m->graph, "y")];
        assert_int_equal(y->ndim, ndim);
        for (uint32_t d = 0; d < ndim; d++)
                assert_int_equal(y->dims[d], dims[d]);
}

static void test_reduce_mean_opsets(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
        Onnx__ModelProto *mp;
        Onnx__NodeProto *n;
        const CvoptAttr *a;
        (void) state;

        /* torchvision's x.mean([2, 3]) at opset 13: the attribute. */
        mp = model_reduce(13, "ReduceMean", &n);
        attr_ints(n, "axes", 2, (int64_t[]) { 2, 3 });
        attr_int(n, "keepdims", 0);
        assert_int_equal(import_model(mp, &m), 0);
        assert_int_equal(m->graph->nodes[0].op, CVOPT_OP_REDUCE_MEAN);
        assert_int_equal(cvopt_node_get_int(&m->graph->nodes[0], "keepdims", 1), 0);
        assert_reduce_shape(m, 2, (int64_t[]) { 1, 3 });
        m = cvopt_model_free(m);

        /* Opset 18: axes is an input; a constant one becomes the attribute. */
        mp = model_reduce(18, "ReduceMean", &n);
        add_int64_init(mp, "axes", 2, (int64_t[]) { -1, -2 });
        node_add_input(n, "axes");
        assert_int_equal(import_model(mp, &m), 0);
        assert_int_equal(m->graph->nodes[0].n_inputs, 1);
        a = cvopt_node_attr(&m->graph->nodes[0], "axes");
        assert_non_null(a);
        assert_int_equal(a->count, 2);
        assert_int_equal(a->ints[0], -1);
        assert_reduce_shape(m, 4, (int64_t[]) { 1, 3, 1, 1 });
        m = cvopt_model_free(m);

        /* Opset 18 with an empty axes input and noop_with_empty_axes: a copy. */
        mp = model_reduce(18, "ReduceMax", &n);
        add_int64_init(mp, "axes", 0, NULL);
        node_add_input(n, "axes");
        attr_int(n, "noop_with_empty_axes", 1);
        assert_int_equal(import_model(mp, &m), 0);
        assert_null(cvopt_node_attr(&m->graph->nodes[0], "axes"));
        assert_reduce_shape(m, 4, (int64_t[]) { 1, 3, 2, 2 });
        m = cvopt_model_free(m);

        /* Opset 18 has no axes attribute, and 13 no axes input. */
        mp = model_reduce(18, "ReduceMean", &n);
        attr_ints(n, "axes", 1, (int64_t[]) { 2 });
        assert_int_equal(import_model(mp, &m), -CVOPT_E_UNSUPPORTED);
        assert_non_null(strstr(cvopt_error_detail(), "(op ReduceMean): attribute 'axes' = [2] not supported"));
        mp = model_reduce(13, "ReduceMean", &n);
        add_int64_init(mp, "axes", 1, (int64_t[]) { 2 });
        node_add_input(n, "axes");
        assert_int_equal(import_model(mp, &m), -CVOPT_E_FORMAT);
        assert_non_null(strstr(cvopt_error_detail(), "2 inputs, opset 13 takes 1"));
        mp = model_reduce(13, "ReduceMean", &n);
        attr_int(n, "noop_with_empty_axes", 1);
        assert_int_equal(import_model(mp, &m), -CVOPT_E_UNSUPPORTED);

        /* A run-time axes input is refused at import. */
        mp = model_reduce(18, "ReduceMean", &n);
        APPEND(mp->graph->n_input, mp->graph->input,
               value_info("axes", ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, (int64_t[]) { 1 }));
        node_add_input(n, "axes");
        assert_int_equal(import_model(mp, &m), -CVOPT_E_UNSUPPORTED);
        assert_non_null(strstr(cvopt_error_detail(), "axes input 'axes' is computed at run time"));
}

static void test_reduce_sum_opset13(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
        Onnx__ModelProto *mp;
        Onnx__NodeProto *n;
        (void) state;

        /* ReduceSum took axes as an input five opsets before the others. */
        mp = model_reduce(13, "ReduceSum", &n);
        add_int64_init(mp, "axes", 1, (int64_t[]) { 1 });
        node_add_input(n, "axes");
        assert_int_equal(import_model(mp, &m), 0);
        assert_reduce_shape(m, 4, (int64_t[]) { 1, 1, 2, 2 });
        m = cvopt_model_free(m);

        mp = model_reduce(12, "ReduceSum", &n);
        attr_ints(n, "axes", 1, (int64_t[]) { 1 });
        attr_int(n, "keepdims", 0);
        assert_int_equal(import_model(mp, &m), 0);
        assert_reduce_shape(m, 3, (int64_t[]) { 1, 2, 2 });
        m = cvopt_model_free(m);

        mp = model_reduce(13, "ReduceSum", &n);
        attr_ints(n, "axes", 1, (int64_t[]) { 1 });
        assert_int_equal(import_model(mp, &m), -CVOPT_E_UNSUPPORTED);

        /* A run-time axes input is refused at import, naming the node. */
        mp = model_reduce(13, "ReduceSum", &n);
        APPEND(mp->graph->n_input, mp->graph->input,
               value_info("axes", ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, (int64_t[]) { 1 }));
        node_add_input(n, "axes");
        assert_int_equal(import_model(mp, &m), -CVOPT_E_UNSUPPORTED);
        assert_non_null(strstr(cvopt_error_detail(),
                               "node 'y' (op ReduceSum): axes input 'axes' is computed at run time"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_slice_opset9_attributes_become_inputs, arena_free),
                cmocka_unit_test_teardown(test_slice_opset13_inputs, arena_free),
                cmocka_unit_test_teardown(test_slice_runtime_starts_refused, arena_free),
                cmocka_unit_test_teardown(test_reduce_mean_opsets, arena_free),
                cmocka_unit_test_teardown(test_reduce_sum_opset13, arena_free),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}

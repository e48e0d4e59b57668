/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cvopt/cvopt.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptGraph *, cvopt_graph_free);

/* x -> Relu -> y, plus a dead branch x -> Sigmoid -> z that nobody reads. */
static CvoptGraph *make_graph(void) {
        CvoptGraph *g;
        int64_t dims[2] = { 1, 4 };
        int32_t x, y, z;

        assert_int_equal(cvopt_graph_new(&g), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "x", CVOPT_DTYPE_FLOAT32, 2, dims, &x), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "z", CVOPT_DTYPE_FLOAT32, 2, dims, &z), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "y", CVOPT_DTYPE_FLOAT32, 2, dims, &y), 0);
        assert_int_equal(cvopt_graph_add_node(g, "dead", CVOPT_OP_SIGMOID, 1, &x, 1, &z, NULL), 0);
        assert_int_equal(cvopt_graph_add_node(g, "relu", CVOPT_OP_RELU, 1, &x, 1, &y, NULL), 0);
        assert_int_equal(cvopt_graph_set_inputs(g, 1, &x), 0);
        assert_int_equal(cvopt_graph_set_outputs(g, 1, &y), 0);
        return g;
}

static void test_build_and_validate(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_graph();
        (void) state;

        assert_int_equal(cvopt_graph_validate(g), 0);
        assert_int_equal(cvopt_graph_find_tensor(g, "y"), 2);
        assert_int_equal(cvopt_graph_find_tensor(g, "nope"), -ENOENT);
        assert_int_equal(cvopt_graph_add_tensor(g, "y", CVOPT_DTYPE_FLOAT32, 0, NULL, NULL), -EEXIST);
        assert_string_equal(cvopt_op_name(CVOPT_OP_GLOBAL_AVERAGE_POOL), "GlobalAveragePool");
        assert_int_equal(cvopt_op_from_name("HardSwish"), CVOPT_OP_HARD_SWISH);
        assert_int_equal(cvopt_op_from_name("Loop"), -ENOENT);
}

static void test_validate_rejects_use_before_def(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_graph();
        (void) state;

        g->nodes[1].inputs[0] = 1; /* relu reads z, computed by nobody before? no: by node 0 */
        assert_int_equal(cvopt_graph_validate(g), 0);
        g->nodes[0].inputs[0] = 2; /* dead reads y, which relu computes later */
        assert_int_equal(cvopt_graph_validate(g), -CVOPT_E_FORMAT);
        assert_non_null(strstr(cvopt_error_detail(), "before it is computed"));
        g->nodes[0].inputs[0] = 99;
        assert_int_equal(cvopt_graph_validate(g), -CVOPT_E_FORMAT);
        assert_non_null(strstr(cvopt_error_detail(), "out of range"));
}

static void test_prune_unused(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_graph();
        (void) state;

        assert_int_equal(cvopt_graph_prune_unused(g), 0);
        assert_int_equal(g->n_nodes, 1);
        assert_int_equal(g->n_tensors, 2);
        assert_string_equal(g->nodes[0].name, "relu");
        assert_string_equal(g->tensors[g->nodes[0].outputs[0]].name, "y");
        assert_string_equal(g->tensors[g->outputs[0]].name, "y");
        assert_string_equal(g->tensors[g->inputs[0]].name, "x");
        assert_int_equal(cvopt_graph_validate(g), 0);
}

static void test_attributes_and_clone(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_graph();
        _cleanup_(cvopt_graph_freep) CvoptGraph *c = NULL;
        int64_t pads[4] = { 1, 1, 2, 2 };
        float *w = malloc(4 * sizeof(float));
        int64_t dims[1] = { 4 };
        (void) state;

        assert_non_null(w);
        for (int i = 0; i < 4; i++)
                w[i] = (float) i;
        assert_int_equal(cvopt_graph_add_constant(g, "w", CVOPT_DTYPE_FLOAT32, 1, dims, w, true, NULL), 0);
        assert_int_equal(cvopt_node_set_int(&g->nodes[1], "group", 3), 0);
        assert_int_equal(cvopt_node_set_int(&g->nodes[1], "group", 4), 0);
        assert_int_equal(cvopt_node_set_ints(&g->nodes[1], "pads", 4, pads), 0);
        assert_int_equal(cvopt_node_set_string(&g->nodes[1], "auto_pad", "SAME_UPPER"), 0);
        assert_int_equal(g->nodes[1].n_attrs, 3);
        assert_int_equal(cvopt_node_get_int(&g->nodes[1], "group", 1), 4);
        assert_int_equal(cvopt_node_get_int(&g->nodes[1], "missing", 7), 7);
        assert_float_equal(cvopt_node_get_float(&g->nodes[1], "group", 0.5f), 0.5f, 0);

        assert_int_equal(cvopt_graph_clone(g, &c), 0);
        assert_int_equal(c->n_tensors, g->n_tensors);
        assert_string_equal(cvopt_node_get_string(&c->nodes[1], "auto_pad", ""), "SAME_UPPER");
        assert_int_equal(cvopt_node_attr(&c->nodes[1], "pads")->ints[3], 2);
        assert_ptr_not_equal(c->tensors[3].data, w);
        assert_float_equal(((float *) c->tensors[3].data)[3], 3.0f, 0);
        assert_int_equal(cvopt_node_remove_attr(&c->nodes[1], "group"), 0);
        assert_int_equal(c->nodes[1].n_attrs, 2);
}

static void test_errors(void **state) {
        (void) state;
        assert_string_equal(cvopt_strerror(-CVOPT_E_CRC), "checksum mismatch");
        assert_string_equal(cvopt_strerror(-ENOENT), strerror(ENOENT));
        assert_int_equal(cvopt_error_set(-EIO, "file %s", "a.cvm"), -EIO);
        assert_int_equal(cvopt_error_prefix(-EIO, "loading"), -EIO);
        assert_string_equal(cvopt_error_detail(), "loading: file a.cvm");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_build_and_validate),
                cmocka_unit_test(test_validate_rejects_use_before_def),
                cmocka_unit_test(test_prune_unused),
                cmocka_unit_test(test_attributes_and_clone),
                cmocka_unit_test(test_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

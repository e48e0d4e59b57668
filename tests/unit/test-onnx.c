/* SPDX-License-Identifier: MIT */
/* ONNX importer: real node-test models from Debian's libonnx-testdata, and
 * models built here with the protobuf-c bindings for what the test data
 * lacks (old opsets, labels, hostile fields). Each test checks the IR a
 * later pass or the executor would read: ops, attributes, constants, shapes. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>
#include <dirent.h>

#include "cvopt/cvopt.h"
#include "macro.h"
#include "onnx-import.h"
#include "onnx.pb-c.h"
#include "onnx-builder.h"

#define NODE_DIR "/usr/share/libonnx-testdata/data/node/"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptModel *, cvopt_model_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptTensor *, onnx_tensor_free);

/* ---- helpers: read files, find things in the IR ---- */

static void *read_all(const char *path, size_t *ret_size) {
        FILE *f = fopen(path, "rb");
        uint8_t *buf;
        long size;

        assert_non_null(f);
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        size = ftell(f);
        assert_true(size > 0);
        rewind(f);
        buf = malloc((size_t) size);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, (size_t) size, f), (size_t) size);
        fclose(f);
        *ret_size = (size_t) size;
        return buf;
}

static CvoptModel *import_ok(const char *test) {
        char path[256];
        CvoptModel *m = NULL;
        int r;

        snprintf(path, sizeof(path), NODE_DIR "%s/model.onnx", test);
        r = onnx_import_file(path, &m);
        if (r < 0)
                fail_msg("%s: %d %s", test, r, cvopt_error_detail());
        assert_non_null(m);
        assert_int_equal(cvopt_graph_validate(m->graph), 0);
        return m;
}

static int import_fails(const char *test) {
        char path[256];
        CvoptModel *m = NULL;
        int r;

        snprintf(path, sizeof(path), NODE_DIR "%s/model.onnx", test);
        r = onnx_import_file(path, &m);
        assert_true(r < 0);
        assert_null(m);
        assert_non_null(strstr(cvopt_error_detail(), path));
        return r;
}

static CvoptTensor *load_pb(const char *test, const char *file) {
        char path[256];
        CvoptTensor *t = NULL;
        int r;

        snprintf(path, sizeof(path), NODE_DIR "%s/test_data_set_0/%s", test, file);
        r = onnx_tensor_load_file(path, &t);
        if (r < 0)
                fail_msg("%s: %d %s", path, r, cvopt_error_detail());
        return t;
}

static const CvoptTensor *tensor(const CvoptModel *m, const char *name) {
        int i = cvopt_graph_find_tensor(m->graph, name);

        if (i < 0)
                fail_msg("no tensor '%s'", name);
        return &m->graph->tensors[i];
}

static void assert_dims(const CvoptTensor *t, uint32_t ndim, ...) {
        va_list ap;

        assert_true(t->has_shape);
        assert_int_equal(t->ndim, ndim);
        va_start(ap, ndim);
        for (uint32_t i = 0; i < ndim; i++)
                assert_int_equal(t->dims[i], va_arg(ap, int));
        va_end(ap);
}

static void assert_ints(const CvoptNode *n, const char *name, uint32_t count, ...) {
        const CvoptAttr *a = cvopt_node_attr(n, name);
        va_list ap;

        assert_non_null(a);
        assert_int_equal(a->type, CVOPT_ATTR_INTS);
        assert_int_equal(a->count, count);
        va_start(ap, count);
        for (uint32_t i = 0; i < count; i++)
                assert_int_equal(a->ints[i], va_arg(ap, int));
        va_end(ap);
}

/* ---- real models from libonnx-testdata ---- */

static void test_conv(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = import_ok("test_conv_with_strides_padding");
        _cleanup_(onnx_tensor_freep) CvoptTensor *x = load_pb("test_conv_with_strides_padding", "input_0.pb");
        const CvoptGraph *g = m->graph;
        const CvoptNode *n;
        (void) state;

        assert_int_equal(g->n_nodes, 1);
        n = &g->nodes[0];
        assert_int_equal(n->op, CVOPT_OP_CONV);
        assert_int_equal(n->n_inputs, 2);
        assert_string_equal(cvopt_node_input(g, n, 0)->name, "x");
        assert_string_equal(cvopt_node_input(g, n, 1)->name, "W");
        assert_ints(n, "kernel_shape", 2, 3, 3);
        assert_ints(n, "pads", 4, 1, 1, 1, 1);
        assert_ints(n, "strides", 2, 2, 2);
        assert_null(cvopt_node_attr(n, "group"));
        assert_int_equal(g->n_inputs, 2);
        assert_dims(&g->tensors[g->inputs[0]], 4, 1, 1, 7, 5);
        assert_dims(&g->tensors[g->inputs[1]], 4, 1, 1, 3, 3);
        assert_int_equal(g->n_outputs, 1);
        assert_string_equal(g->tensors[g->outputs[0]].name, "y");
        assert_dims(&g->tensors[g->outputs[0]], 4, 1, 1, 4, 3);
        assert_int_equal(g->tensors[g->outputs[0]].dtype, CVOPT_DTYPE_FLOAT32);
        assert_int_equal(m->n_labels, 0);

        /* The data set's input: np.arange(35) as float32, 1x1x7x5. */
        assert_string_equal(x->name, "x");
        assert_int_equal(x->dtype, CVOPT_DTYPE_FLOAT32);
        assert_dims(x, 4, 1, 1, 7, 5);
        for (int i = 0; i < 35; i++)
                assert_true(((const float *) x->data)[i] == (float) i);
}

static void test_clip_inputs_become_attributes(void **state) {
        _cleanup_(onnx_tensor_freep) CvoptTensor *min = load_pb("test_clip_default_min", "input_1.pb");
        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
        const CvoptNode *n;
        (void) state;

        /* Opset 13 passes min as a graph input: on its own, unsupported. */
        assert_int_equal(import_fails("test_clip_default_min"), -CVOPT_E_UNSUPPORTED);
        assert_non_null(strstr(cvopt_error_detail(), "(op Clip): min input 'min'"));

        /* Bound to the data set's value, it becomes the "min" attribute. */
        assert_string_equal(min->name, "min");
        assert_int_equal(min->ndim, 0);
        assert_int_equal(onnx_import_file_bound(NODE_DIR "test_clip_default_min/model.onnx", 1, &min, &m), 0);
        assert_int_equal(m->graph->n_nodes, 1);
        assert_int_equal(m->graph->n_inputs, 1);
        n = &m->graph->nodes[0];
        assert_int_equal(n->op, CVOPT_OP_CLIP);
        assert_int_equal(n->n_inputs, 1);
        assert_true(cvopt_node_get_float(n, "min", NAN) == *(const float *) min->data);
        assert_null(cvopt_node_attr(n, "max"));
        /* The bound constant is no longer read and was pruned. */
        assert_int_equal(cvopt_graph_find_tensor(m->graph, "min"), -ENOENT);
}

static void test_clip_old_and_new_opsets(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
        Onnx__ModelProto *mp;
        Onnx__NodeProto *n;
        const float six = 6.0f, zero = 0.0f;
        (void) state;

        /* Opset 7: bounds are attributes, kept as they are. */
        mp = model_unary(7, "Clip", &n);
        attr_float(n, "min", 0.0f);
        attr_float(n, "max", 6.0f);
        assert_int_equal(import_model(mp, &m), 0);
        assert_int_equal(m->graph->nodes[0].n_inputs, 1);
        assert_true(cvopt_node_get_float(&m->graph->nodes[0], "min", NAN) == 0.0f);
        assert_true(cvopt_node_get_float(&m->graph->nodes[0], "max", NAN) == 6.0f);
        m = cvopt_model_free(m);

        /* Opset 11: bounds are constant inputs (here initializers; min absent). */
        mp = model_unary(11, "Clip", &n);
        add_float_init(mp, "lo", 0, NULL, &zero, 1);
        add_float_init(mp, "hi", 0, NULL, &six, 1);
        n->n_input = 1;
        APPEND(n->n_input, n->input, arena_strdup(""));
        APPEND(n->n_input, n->input, arena_strdup("hi"));
        assert_int_equal(import_model(mp, &m), 0);
        assert_int_equal(m->graph->nodes[0].n_inputs, 1);
        assert_null(cvopt_node_attr(&m->graph->nodes[0], "min"));
        assert_true(cvopt_node_get_float(&m->graph->nodes[0], "max", NAN) == 6.0f);
        assert_int_equal(cvopt_graph_find_tensor(m->graph, "hi"), -ENOENT);
        m = cvopt_model_free(m);

        /* Opset 13 with the old attribute: refused, not ignored. */
        mp = model_unary(13, "Clip", &n);
        attr_float(n, "max", 6.0f);
        assert_int_equal(import_model(mp, &m), -CVOPT_E_UNSUPPORTED);
        assert_string_equal(cvopt_error_detail(), "built.onnx: node 'y' (op Clip): attribute 'max' = 6 not supported");
}

static void test_softmax_opsets(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = import_ok("test_softmax_axis_0");
        Onnx__ModelProto *mp;
        Onnx__NodeProto *n;
        (void) state;

        assert_int_equal(m->graph->nodes[0].op, CVOPT_OP_SOFTMAX);
        assert_int_equal(cvopt_node_get_int(&m->graph->nodes[0], "axis", 99), 0);
        assert_null(cvopt_node_attr(&m->graph->nodes[0], "coerce_2d"));
        m = cvopt_model_free(m);

        m = import_ok("test_softmax_default_axis");
        assert_int_equal(cvopt_node_get_int(&m->graph->nodes[0], "axis", 99), -1);
        assert_null(cvopt_node_attr(&m->graph->nodes[0], "coerce_2d"));
        m = cvopt_model_free(m);

        /* Opset 11 without axis: coerce to 2-D at axis 1. */
        mp = model_unary(11, "Softmax", &n);
        assert_int_equal(import_model(mp, &m), 0);
        assert_int_equal(cvopt_node_get_int(&m->graph->nodes[0], "axis", 99), 1);
        assert_int_equal(cvopt_node_get_int(&m->graph->nodes[0], "coerce_2d", 0), 1);
        m = cvopt_model_free(m);

        mp = model_unary(12, "Softmax", &n);
        attr_int(n, "axis", 2);
        assert_int_equal(import_model(mp, &m), 0);
        assert_int_equal(cvopt_node_get_int(&m->graph->nodes[0], "axis", 99), 2);
        assert_int_equal(cvopt_node_get_int(&m->graph->nodes[0], "coerce_2d", 0), 1);
}

static void test_unsqueeze_opsets(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = import_ok("test_unsqueeze_axis_3"); /* opset 11 */
        _cleanup_(onnx_tensor_freep) CvoptTensor *axes = load_pb("test_unsqueeze_two_axes", "input_1.pb");
        (void) state;

        assert_int_equal(m->graph->nodes[0].op, CVOPT_OP_UNSQUEEZE);
        assert_int_equal(m->graph->nodes[0].n_inputs, 1);
        assert_ints(&m->graph->nodes[0], "axes", 1, 3);
        assert_dims(tensor(m, "y"), 4, 3, 4, 5, 1);
        m = cvopt_model_free(m);

        /* Opset 13: axes is an input; bound, it becomes the attribute. */
        assert_int_equal(axes->dtype, CVOPT_DTYPE_INT64);
        assert_dims(axes, 1, 2);
        assert_int_equal(onnx_import_file_bound(NODE_DIR "test_unsqueeze_two_axes/model.onnx", 1, &axes, &m), 0);
        assert_int_equal(m->graph->nodes[0].n_inputs, 1);
        assert_ints(&m->graph->nodes[0], "axes", 2, 1, 4);
        m = cvopt_model_free(m);

        assert_int_equal(import_fails("test_unsqueeze_two_axes"), -CVOPT_E_UNSUPPORTED);
        assert_non_null(strstr(cvopt_error_detail(), "axes input 'axes' is computed at run time"));
}

static void test_squeeze_without_axes(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
        Onnx__ModelProto *mp;
        Onnx__NodeProto *n;
        (void) state;

        mp = model_unary(13, "Squeeze", &n);
        assert_int_equal(import_model(mp, &m), 0);
        assert_int_equal(m->graph->nodes[0].op, CVOPT_OP_SQUEEZE);
        assert_null(cvopt_node_attr(&m->graph->nodes[0], "axes"));
        m = cvopt_model_free(m);

        mp = model_unary(13, "Unsqueeze", &n);
        assert_int_equal(import_model(mp, &m), -CVOPT_E_FORMAT);
        assert_non_null(strstr(cvopt_error_detail(), "input 'axes' missing"));
}

static void test_constant(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = import_ok("test_constant");
        _cleanup_(onnx_tensor_freep) CvoptTensor *expected = load_pb("test_constant", "output_0.pb");
        const CvoptTensor *t = tensor(m, "values");
        (void) state;

        /* The Constant node became a constant tensor; no node is left. */
        assert_int_equal(m->graph->n_nodes, 0);
        assert_true(t->is_constant);
        assert_int_equal(t->dtype, CVOPT_DTYPE_FLOAT32);
        assert_dims(t, 2, 5, 5);
        assert_int_equal(expected->dtype, CVOPT_DTYPE_FLOAT32);
        assert_int_equal(cvopt_tensor_bytes(expected), 25 * sizeof(float));
        assert_memory_equal(t->data, expected->data, 25 * sizeof(float));
        assert_int_equal(m->graph->n_outputs, 1);
}

static void test_constant_value_forms(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
        Onnx__ModelProto *mp = model_new(13);
        Onnx__NodeProto *n;
        Onnx__AttributeProto *a;
        static int64_t ints[3] = { 7, -8, 9 };
        (void) state;

        add_input(mp, "x", 4, nchw);
        add_output(mp, "y");
        n = add_node(mp, "Constant", NULL, NULL, "shape");
        a = add_attr(n, "value_ints", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
        a->ints = ints;
        a->n_ints = 3;
        n = add_node(mp, "Constant", NULL, NULL, "half");
        attr_float(n, "value_float", 0.5f);
        add_node(mp, "Reshape", "x", "shape", "r");
        add_node(mp, "Mul", "r", "half", "y");
        assert_int_equal(import_model(mp, &m), 0);
        assert_int_equal(m->graph->n_nodes, 2);
        assert_int_equal(m->graph->nodes[0].op, CVOPT_OP_RESHAPE);
        assert_int_equal(tensor(m, "shape")->dtype, CVOPT_DTYPE_INT64);
        assert_dims(tensor(m, "shape"), 1, 3);
        assert_memory_equal(tensor(m, "shape")->data, ints, sizeof(ints));
        assert_int_equal(tensor(m, "half")->ndim, 0);
        assert_true(*(const float *) tensor(m, "half")->data == 0.5f);
        /* Node outputs without value_info take their first input's type. */
        assert_int_equal(tensor(m, "r")->dtype, CVOPT_DTYPE_FLOAT32);
        assert_false(tensor(m, "r")->has_shape);
}

static void test_dropout_batchnorm_maxpool(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = import_ok("test_dropout_default");
        (void) state;

        assert_int_equal(m->graph->nodes[0].op, CVOPT_OP_DROPOUT);
        assert_int_equal(m->graph->nodes[0].n_inputs, 1);
        assert_int_equal(m->graph->nodes[0].n_outputs, 1);
        m = cvopt_model_free(m);

        assert_int_equal(import_fails("test_dropout_default_mask"), -CVOPT_E_UNSUPPORTED);
        assert_non_null(strstr(cvopt_error_detail(), "training output"));
        /* Its training_mode input is a BOOL graph input, a type the IR lacks. */
        assert_int_equal(import_fails("test_training_dropout"), -CVOPT_E_UNSUPPORTED);
        assert_non_null(strstr(cvopt_error_detail(), "tensor 't': element type BOOL (9) not supported"));

        m = import_ok("test_batchnorm_example");
        assert_int_equal(m->graph->nodes[0].op, CVOPT_OP_BATCH_NORMALIZATION);
        assert_int_equal(m->graph->nodes[0].n_inputs, 5);
        m = cvopt_model_free(m);
        assert_int_equal(import_fails("test_batchnorm_example_training_mode"), -CVOPT_E_UNSUPPORTED);

        assert_int_equal(import_fails("test_maxpool_with_argmax_2d_precomputed_pads"), -CVOPT_E_UNSUPPORTED);
        assert_non_null(strstr(cvopt_error_detail(), "(op MaxPool): output 'Indices'"));
}

static void test_unsupported(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
        Onnx__ModelProto *mp;
        Onnx__NodeProto *n;
        Onnx__AttributeProto *a;
        (void) state;

        assert_int_equal(import_fails("test_abs"), -CVOPT_E_UNSUPPORTED);
        assert_non_null(strstr(cvopt_error_detail(), "(op Abs): not supported"));

        /* Opset 6 (pytorch-converted) is below what we normalize. */
        assert_int_equal(onnx_import_file("/usr/share/libonnx-testdata/data/pytorch-converted/test_ReLU/model.onnx",
                                          &m),
                         -CVOPT_E_UNSUPPORTED);
        assert_non_null(strstr(cvopt_error_detail(), "opset 6 not supported"));
        assert_int_equal(import_model(model_unary(19, "Relu", &n), &m), -CVOPT_E_UNSUPPORTED);
        assert_non_null(strstr(cvopt_error_detail(), "opset 19 not supported"));

        mp = model_unary(13, "MaxPool", &n);
        attr_int(n, "storage_order", 1);
        assert_int_equal(import_model(mp, &m), -CVOPT_E_UNSUPPORTED);
        assert_string_equal(cvopt_error_detail(),
                            "built.onnx: node 'y' (op MaxPool): attribute 'storage_order' = 1 not supported");

        mp = model_unary(13, "AveragePool", &n);
        a = add_attr(n, "auto_pad", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
        a->has_s = true;
        a->s.data = (uint8_t *) arena_strdup("SAME_MIDDLE");
        a->s.len = 11;
        assert_int_equal(import_model(mp, &m), -CVOPT_E_UNSUPPORTED);
        assert_non_null(strstr(cvopt_error_detail(), "attribute 'auto_pad' = 'SAME_MIDDLE' not supported"));

        /* Right name, wrong type. */
        mp = model_unary(13, "LeakyRelu", &n);
        attr_int(n, "alpha", 1);
        assert_int_equal(import_model(mp, &m), -CVOPT_E_UNSUPPORTED);
        assert_non_null(strstr(cvopt_error_detail(), "attribute 'alpha' of type INT not supported"));

        /* An attribute the op does not have. */
        mp = model_unary(13, "Relu", &n);
        attr_int(n, "beta", 1);
        assert_int_equal(import_model(mp, &m), -CVOPT_E_UNSUPPORTED);
        assert_non_null(strstr(cvopt_error_detail(), "attribute 'beta' = 1 not supported"));

        mp = model_unary(13, "HardSwish", &n);
        assert_int_equal(import_model(mp, &m), -CVOPT_E_FORMAT);
        assert_non_null(strstr(cvopt_error_detail(), "(op HardSwish): not an operator of opset 13"));

        mp = model_unary(13, "Relu", &n);
        n->domain = arena_strdup("com.microsoft");
        assert_int_equal(import_model(mp, &m), -CVOPT_E_UNSUPPORTED);
        assert_null(m);
}

static void test_initializers_shapes_labels(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
        Onnx__ModelProto *mp = model_new(13);
        static const float w[3] = { 1.5f, -2.0f, 3.25f };
        static const int64_t wdims[4] = { 3, 1, 1, 1 };
        Onnx__NodeProto *n;
        (void) state;

        add_input(mp, "x", 4, nchw);
        /* Before IR 4 initializers were also listed as inputs. */
        add_input(mp, "w", 4, wdims);
        add_float_init(mp, "w", 4, wdims, w, 3);
        add_output(mp, "y");
        n = add_node(mp, "Conv", "x", "w", "y");
        attr_int(n, "group", 3);
        add_label_prop(mp, "[\"t-shirt\", \"tr\\u00e4ger\", \"a,b\"]");
        assert_int_equal(import_model(mp, &m), 0);

        assert_int_equal(m->graph->n_inputs, 1);
        assert_string_equal(m->graph->tensors[m->graph->inputs[0]].name, "x");
        /* The symbolic batch dim became 1. */
        assert_dims(&m->graph->tensors[m->graph->inputs[0]], 4, 1, 3, 4, 4);
        assert_true(tensor(m, "w")->is_constant);
        assert_dims(tensor(m, "w"), 4, 3, 1, 1, 1);
        assert_memory_equal(tensor(m, "w")->data, w, sizeof(w));
        assert_int_equal(cvopt_node_get_int(&m->graph->nodes[0], "group", 0), 3);
        assert_int_equal(m->n_labels, 3);
        assert_string_equal(m->labels[0], "t-shirt");
        assert_string_equal(m->labels[1], "tr\xc3\xa4ger");
        assert_string_equal(m->labels[2], "a,b");
        m = cvopt_model_free(m);

        mp->metadata_props[0]->value = arena_strdup(" cat , dog,bird ");
        assert_int_equal(import_model(mp, &m), 0);
        assert_int_equal(m->n_labels, 3);
        assert_string_equal(m->labels[0], "cat");
        assert_string_equal(m->labels[1], "dog");
        assert_string_equal(m->labels[2], "bird");
        m = cvopt_model_free(m);

        mp->metadata_props[0]->value = arena_strdup("[\"cat\", 3]");
        assert_int_equal(import_model(mp, &m), -CVOPT_E_FORMAT);
        assert_non_null(strstr(cvopt_error_detail(), "labels"));
}

/* ---- hostile models: each must fail with a clear detail ---- */

static void test_hostile_fields(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
        static const float w[4] = { 1, 2, 3, 4 };
        static const int64_t dims2[2] = { 2, 2 }, neg[2] = { 2, -2 }, big[9] = { 1, 1, 1, 1, 1, 1, 1, 1, 4 };
        Onnx__ModelProto *mp;
        Onnx__NodeProto *n;
        Onnx__TensorProto *t;
        Onnx__StringStringEntryProto *e;
        (void) state;

        /* raw_data shorter than the dims say. */
        mp = model_unary(13, "Add", &n);
        t = add_float_init(mp, "b", 2, dims2, w, 4);
        t->raw_data.len = 12;
        APPEND(n->n_input, n->input, arena_strdup("b"));
        assert_int_equal(import_model(mp, &m), -CVOPT_E_FORMAT);
        assert_string_equal(cvopt_error_detail(),
                            "built.onnx: initializer 'b': raw_data has 12 bytes, dims and type float32 need 16");

        t->raw_data.len = 16;
        t->dims = (int64_t *) neg;
        assert_int_equal(import_model(mp, &m), -CVOPT_E_FORMAT);
        assert_non_null(strstr(cvopt_error_detail(), "dim 1 is negative"));

        t->dims = (int64_t *) big;
        t->n_dims = 9;
        assert_int_equal(import_model(mp, &m), -CVOPT_E_UNSUPPORTED);
        assert_non_null(strstr(cvopt_error_detail(), "9 dims"));

        t->dims = (int64_t *) dims2;
        t->n_dims = 2;
        t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
        assert_int_equal(import_model(mp, &m), -CVOPT_E_UNSUPPORTED);
        assert_non_null(strstr(cvopt_error_detail(), "element type DOUBLE"));

        t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
        t->has_data_location = true;
        t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
        e = arena_alloc(sizeof(*e));
        onnx__string_string_entry_proto__init(e);
        e->key = arena_strdup("location");
        e->value = arena_strdup("weights.bin");
        APPEND(t->n_external_data, t->external_data, e);
        assert_int_equal(import_model(mp, &m), -CVOPT_E_UNSUPPORTED);
        assert_non_null(strstr(cvopt_error_detail(), "external data (location 'weights.bin')"));

        /* Duplicate initializer names. */
        mp = model_unary(13, "Add", &n);
        add_float_init(mp, "b", 2, dims2, w, 4);
        add_float_init(mp, "b", 2, dims2, w, 4);
        APPEND(n->n_input, n->input, arena_strdup("b"));
        assert_int_equal(import_model(mp, &m), -CVOPT_E_FORMAT);
        assert_non_null(strstr(cvopt_error_detail(), "initializer 'b' defined twice"));

        /* A node reading a tensor nobody defines. */
        mp = model_unary(13, "Add", &n);
        APPEND(n->n_input, n->input, arena_strdup("ghost"));
        assert_int_equal(import_model(mp, &m), -CVOPT_E_FORMAT);
        assert_string_equal(cvopt_error_detail(), "built.onnx: node 'y' (op Add): input 'ghost' is not a graph "
                                                  "input, initializer or output of an earlier node");

        /* A node writing a graph input. */
        mp = model_unary(13, "Relu", &n);
        n->output[0] = arena_strdup("x");
        assert_int_equal(import_model(mp, &m), -CVOPT_E_FORMAT);
        assert_non_null(strstr(cvopt_error_detail(), "output 'x' defined twice"));

        /* A graph output nothing computes. */
        mp = model_unary(13, "Relu", &n);
        add_output(mp, "z");
        assert_int_equal(import_model(mp, &m), -CVOPT_E_FORMAT);
        assert_non_null(strstr(cvopt_error_detail(), "graph output 'z' is not computed"));

        /* A negative dim in a value_info. */
        mp = model_unary(13, "Relu", &n);
        mp->graph->input[0]->type->tensor_type->shape->dim[2]->dim_value = -5;
        assert_int_equal(import_model(mp, &m), -CVOPT_E_FORMAT);
        assert_non_null(strstr(cvopt_error_detail(), "tensor 'x': dim 2 is negative"));

        /* Wrong input count. */
        mp = model_unary(13, "Conv", &n);
        assert_int_equal(import_model(mp, &m), -CVOPT_E_FORMAT);
        assert_non_null(strstr(cvopt_error_detail(), "1 inputs, expected 2 to 3"));
        assert_null(m);
}

static void test_tensor_typed_fields(void **state) {
        _cleanup_(onnx_tensor_freep) CvoptTensor *t = NULL;
        Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
        int64_t dims[2] = { 2, 2 }, i64[4] = { -1, 0, INT64_MAX, 5 };
        int32_t i32[4] = { -128, 0, 127, 5 };
        uint8_t buf[256];
        size_t size;
        (void) state;

        tp.name = (char *) "q";
        tp.n_dims = 2;
        tp.dims = dims;
        tp.has_data_type = true;
        tp.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT8;
        tp.n_int32_data = 4;
        tp.int32_data = i32;
        size = onnx__tensor_proto__pack(&tp, buf);
        assert_int_equal(onnx_tensor_load_buffer(buf, size, "q.pb", &t), 0);
        assert_int_equal(t->dtype, CVOPT_DTYPE_INT8);
        assert_dims(t, 2, 2, 2);
        assert_int_equal(((int8_t *) t->data)[0], -128);
        assert_int_equal(((int8_t *) t->data)[2], 127);
        t = onnx_tensor_free(t);

        /* 200 does not fit int8. */
        i32[1] = 200;
        size = onnx__tensor_proto__pack(&tp, buf);
        assert_int_equal(onnx_tensor_load_buffer(buf, size, "q.pb", &t), -CVOPT_E_FORMAT);
        assert_non_null(strstr(cvopt_error_detail(), "value 200 out of range for int8"));
        assert_null(t);

        tp.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
        tp.n_int32_data = 0;
        tp.n_int64_data = 4;
        tp.int64_data = i64;
        size = onnx__tensor_proto__pack(&tp, buf);
        assert_int_equal(onnx_tensor_load_buffer(buf, size, "q.pb", &t), 0);
        assert_int_equal(t->dtype, CVOPT_DTYPE_INT64);
        assert_memory_equal(t->data, i64, sizeof(i64));
        t = onnx_tensor_free(t);

        tp.n_int64_data = 3;
        size = onnx__tensor_proto__pack(&tp, buf);
        assert_int_equal(onnx_tensor_load_buffer(buf, size, "q.pb", &t), -CVOPT_E_FORMAT);
        assert_non_null(strstr(cvopt_error_detail(), "has 3 values, dims say 4"));

        assert_int_equal(onnx_tensor_load_file("/nonexistent/x.pb", &t), -ENOENT);
        assert_non_null(strstr(cvopt_error_detail(), "/nonexistent/x.pb"));
}

/* Every prefix and many single-byte corruptions of a real model: each must
 * fail cleanly or give a valid graph (some cuts fall between fields), and
 * never crash or leak (the suite also runs under ASan). */
static void test_truncated_and_corrupted(void **state) {
        size_t size;
        _cleanup_free_ uint8_t *data = read_all(NODE_DIR "test_conv_with_strides_padding/model.onnx", &size);
        _cleanup_free_ uint8_t *copy = malloc(size);
        unsigned failed = 0;
        (void) state;

        assert_non_null(copy);
        for (size_t len = 0; len < size; len++) {
                CvoptModel *m = NULL;
                int r = onnx_import_buffer(data, len, "cut.onnx", &m);

                if (r < 0) {
                        assert_null(m);
                        assert_true(strlen(cvopt_error_detail()) > 0);
                        failed++;
                } else {
                        assert_int_equal(cvopt_graph_validate(m->graph), 0);
                        cvopt_model_free(m);
                }
        }
        /* Most prefixes cut a message short; the empty one has no graph. */
        assert_true(failed > size / 2);

        for (size_t pos = 0; pos < size; pos++)
                for (unsigned flip = 1; flip < 256; flip <<= 1) {
                        CvoptModel *m = NULL;
                        int r;

                        memcpy(copy, data, size);
                        copy[pos] ^= (uint8_t) flip;
                        r = onnx_import_buffer(copy, size, "bad.onnx", &m);
                        if (r < 0)
                                assert_null(m);
                        else {
                                assert_int_equal(cvopt_graph_validate(m->graph), 0);
                                cvopt_model_free(m);
                        }
                }
}

/* 200000 nested TypeProtos overflowed protobuf-c's recursion before the
 * nesting check; now anything deeper than its limit (100) fails with a
 * detail. 1000 levels show it without a slow test. */
static void test_deep_nesting(void **state) {
        size_t levels = 1000, cap = levels * 8 + 16, len = 0;
        _cleanup_free_ uint8_t *buf = malloc(cap), *tmp = malloc(cap);
        CvoptModel *m = NULL;
        (void) state;

        assert_non_null(buf);
        assert_non_null(tmp);
        /* Built inside out: TypeProto.sequence_type (field 4) holds a
         * Sequence whose elem_type (field 1) is a TypeProto, and so on;
         * the outermost is wrapped as ModelProto.graph (field 7). */
        for (size_t i = 0; i <= levels; i++) {
                uint8_t tag = i == levels ? 0x3a : (i % 2 ? 0x22 : 0x0a);
                size_t n = 0, v = len;

                tmp[n++] = tag;
                do {
                        tmp[n++] = (uint8_t) ((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
                        v >>= 7;
                } while (v);
                assert_true(n + len <= cap);
                memmove(buf + n, buf, len);
                memcpy(buf, tmp, n);
                len += n;
        }
        assert_int_equal(onnx_import_buffer(buf, len, "deep.onnx", &m), -CVOPT_E_FORMAT);
        assert_non_null(strstr(cvopt_error_detail(), "nested more than"));
        assert_null(m);
}

/* Every node test in libonnx-testdata: each imports into a valid graph or
 * fails with a detail naming the file; none crashes. Models that fail only
 * because a parameter (Clip bounds, axes) is a graph input must import once
 * the data set's inputs 1..N are bound, as the conformance tests do. */
static void test_node_sweep(void **state) {
        DIR *d = opendir(NODE_DIR);
        struct dirent *de;
        unsigned imported = 0, bound = 0;
        (void) state;

        assert_non_null(d);
        while ((de = readdir(d))) {
                char path[512];
                CvoptModel *m = NULL;
                int r;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), NODE_DIR "%s/model.onnx", de->d_name);
                r = onnx_import_file(path, &m);
                if (r >= 0) {
                        assert_int_equal(cvopt_graph_validate(m->graph), 0);
                        cvopt_model_free(m);
                        imported++;
                        continue;
                }
                assert_null(m);
                if (strncmp(cvopt_error_detail(), path, strlen(path)) != 0)
                        fail_msg("%s: detail does not name the file: %s", path, cvopt_error_detail());
                if (r == -CVOPT_E_UNSUPPORTED && strstr(cvopt_error_detail(), "computed at run time")) {
                        CvoptTensor *bind[8] = {};
                        size_t n = 0;

                        for (; n < ELEMENTSOF(bind); n++) {
                                char file[64];

                                snprintf(path, sizeof(path), NODE_DIR "%s/test_data_set_0/input_%zu.pb", de->d_name,
                                         n + 1);
                                if (access(path, F_OK) < 0)
                                        break;
                                snprintf(file, sizeof(file), "input_%zu.pb", n + 1);
                                bind[n] = load_pb(de->d_name, file);
                        }
                        snprintf(path, sizeof(path), NODE_DIR "%s/model.onnx", de->d_name);
                        r = onnx_import_file_bound(path, n, bind, &m);
                        if (r < 0)
                                fail_msg("%s with bound inputs: %s", path, cvopt_error_detail());
                        assert_int_equal(cvopt_graph_validate(m->graph), 0);
                        cvopt_model_free(m);
                        for (size_t i = 0; i < n; i++)
                                onnx_tensor_free(bind[i]);
                        bound++;
                }
        }
        closedir(d);
        /* What imported when this test was written (Debian libonnx-testdata 1.12
         * test data): fewer means a regression. */
        assert_true(imported >= 143);
        assert_true(bound >= 18);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_conv, arena_free),
                cmocka_unit_test_teardown(test_clip_inputs_become_attributes, arena_free),
                cmocka_unit_test_teardown(test_clip_old_and_new_opsets, arena_free),
                cmocka_unit_test_teardown(test_softmax_opsets, arena_free),
                cmocka_unit_test_teardown(test_unsqueeze_opsets, arena_free),
                cmocka_unit_test_teardown(test_squeeze_without_axes, arena_free),
                cmocka_unit_test_teardown(test_constant, arena_free),
                cmocka_unit_test_teardown(test_constant_value_forms, arena_free),
                cmocka_unit_test_teardown(test_dropout_batchnorm_maxpool, arena_free),
                cmocka_unit_test_teardown(test_unsupported, arena_free),
                cmocka_unit_test_teardown(test_initializers_shapes_labels, arena_free),
                cmocka_unit_test_teardown(test_hostile_fields, arena_free),
                cmocka_unit_test_teardown(test_tensor_typed_fields, arena_free),
                cmocka_unit_test_teardown(test_truncated_and_corrupted, arena_free),
                cmocka_unit_test_teardown(test_deep_nesting, arena_free),
                cmocka_unit_test_teardown(test_node_sweep, arena_free),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}

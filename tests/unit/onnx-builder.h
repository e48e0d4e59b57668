/* SPDX-License-Identifier: MIT */
#pragma once

/* Builds ONNX models in memory with the protobuf-c bindings, for importer
 * tests that need what Debian's test data lacks (old opsets, labels,
 * hostile fields). Included by test-onnx.c and test-onnx-ops.c (static
 * inline helpers, so that a file need not use all of them; cmocka asserts). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cvopt/cvopt.h"
#include "macro.h"
#include "onnx-import.h"
#include "onnx.pb-c.h"

/* Every allocation goes into an arena freed after each test (as cmocka
 * teardown), so ASan sees no leak. */

static void *arena[4096];
static size_t arena_used;

static inline void *arena_alloc(size_t size) {
        void *p = calloc(1, MAX(size, 1u));

        assert_non_null(p);
        assert_true(arena_used < ELEMENTSOF(arena));
        arena[arena_used++] = p;
        return p;
}

static inline int arena_free(void **state) {
        (void) state;
        while (arena_used > 0)
                free(arena[--arena_used]);
        return 0;
}

static inline char *arena_strdup(const char *s) {
        char *p = arena_alloc(strlen(s) + 1);

        return strcpy(p, s);
}

/* Appends item to a protobuf-c repeated field (size_t n, T **array). */
#define APPEND(count, array, item)                                                        \
        do {                                                                              \
                __typeof__(array) grown_ = arena_alloc(((count) + 1) * sizeof(*(array))); \
                if (count)                                                                \
                        memcpy(grown_, (array), (count) * sizeof(*(array)));              \
                grown_[(count)++] = (item);                                               \
                (array) = grown_;                                                         \
        } while (0)

static inline Onnx__ModelProto *model_new(int64_t opset) {
        Onnx__ModelProto *m = arena_alloc(sizeof(*m));
        Onnx__OperatorSetIdProto *o = arena_alloc(sizeof(*o));

        onnx__model_proto__init(m);
        onnx__operator_set_id_proto__init(o);
        o->domain = arena_strdup("");
        o->has_version = true;
        o->version = opset;
        APPEND(m->n_opset_import, m->opset_import, o);
        m->has_ir_version = true;
        m->ir_version = 7;
        m->graph = arena_alloc(sizeof(*m->graph));
        onnx__graph_proto__init(m->graph);
        m->graph->name = arena_strdup("test");
        return m;
}

/* A float tensor value_info; a negative dim is symbolic ("N"). */
static inline Onnx__ValueInfoProto *value_info(const char *name, int32_t elem_type, size_t ndim, const int64_t *dims) {
        Onnx__ValueInfoProto *vi = arena_alloc(sizeof(*vi));
        Onnx__TypeProto *tp = arena_alloc(sizeof(*tp));
        Onnx__TypeProto__Tensor *tt = arena_alloc(sizeof(*tt));
        Onnx__TensorShapeProto *shape = arena_alloc(sizeof(*shape));

        onnx__value_info_proto__init(vi);
        onnx__type_proto__init(tp);
        onnx__type_proto__tensor__init(tt);
        onnx__tensor_shape_proto__init(shape);
        for (size_t i = 0; i < ndim; i++) {
                Onnx__TensorShapeProto__Dimension *d = arena_alloc(sizeof(*d));

                onnx__tensor_shape_proto__dimension__init(d);
                if (dims[i] < 0) {
                        d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                        d->dim_param = arena_strdup("N");
                } else {
                        d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                        d->dim_value = dims[i];
                }
                APPEND(shape->n_dim, shape->dim, d);
        }
        tt->has_elem_type = true;
        tt->elem_type = elem_type;
        tt->shape = shape;
        tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
        tp->tensor_type = tt;
        vi->name = arena_strdup(name);
        vi->type = tp;
        return vi;
}

static inline void add_input(Onnx__ModelProto *m, const char *name, size_t ndim, const int64_t *dims) {
        APPEND(m->graph->n_input, m->graph->input,
               value_info(name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, ndim, dims));
}

static inline void add_output(Onnx__ModelProto *m, const char *name) {
        APPEND(m->graph->n_output, m->graph->output, value_info(name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 0, NULL));
        m->graph->output[m->graph->n_output - 1]->type->tensor_type->shape = NULL;
}

/* A float initializer in raw_data. */
static inline Onnx__TensorProto *add_float_init(Onnx__ModelProto *m, const char *name, size_t ndim, const int64_t *dims,
                                         const float *values, size_t count) {
        Onnx__TensorProto *t = arena_alloc(sizeof(*t));

        onnx__tensor_proto__init(t);
        t->name = arena_strdup(name);
        t->has_data_type = true;
        t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
        t->dims = arena_alloc(MAX(ndim, 1u) * sizeof(int64_t));
        if (ndim)
                memcpy(t->dims, dims, ndim * sizeof(int64_t));
        t->n_dims = ndim;
        t->has_raw_data = true;
        t->raw_data.len = count * sizeof(float);
        t->raw_data.data = arena_alloc(t->raw_data.len);
        memcpy(t->raw_data.data, values, t->raw_data.len);
        APPEND(m->graph->n_initializer, m->graph->initializer, t);
        return t;
}

static inline Onnx__NodeProto *add_node(Onnx__ModelProto *m, const char *op, const char *in0, const char *in1,
                                 const char *out) {
        Onnx__NodeProto *n = arena_alloc(sizeof(*n));
        char *s;

        onnx__node_proto__init(n);
        n->op_type = arena_strdup(op);
        n->name = arena_strdup(out);
        if (in0) {
                s = arena_strdup(in0);
                APPEND(n->n_input, n->input, s);
        }
        if (in1) {
                s = arena_strdup(in1);
                APPEND(n->n_input, n->input, s);
        }
        s = arena_strdup(out);
        APPEND(n->n_output, n->output, s);
        APPEND(m->graph->n_node, m->graph->node, n);
        return n;
}

static inline Onnx__AttributeProto *add_attr(Onnx__NodeProto *n, const char *name,
                                             Onnx__AttributeProto__AttributeType type) {
        Onnx__AttributeProto *a = arena_alloc(sizeof(*a));

        onnx__attribute_proto__init(a);
        a->name = arena_strdup(name);
        a->has_type = true;
        a->type = type;
        APPEND(n->n_attribute, n->attribute, a);
        return a;
}

static inline void attr_float(Onnx__NodeProto *n, const char *name, float v) {
        Onnx__AttributeProto *a = add_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);

        a->has_f = true;
        a->f = v;
}

static inline void attr_int(Onnx__NodeProto *n, const char *name, int64_t v) {
        Onnx__AttributeProto *a = add_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);

        a->has_i = true;
        a->i = v;
}

static inline void add_label_prop(Onnx__ModelProto *m, const char *value) {
        Onnx__StringStringEntryProto *e = arena_alloc(sizeof(*e));

        onnx__string_string_entry_proto__init(e);
        e->key = arena_strdup("labels");
        e->value = arena_strdup(value);
        APPEND(m->n_metadata_props, m->metadata_props, e);
}

static inline int import_model(const Onnx__ModelProto *m, CvoptModel **ret) {
        size_t size = onnx__model_proto__get_packed_size(m);
        uint8_t *buf = arena_alloc(size);

        assert_int_equal(onnx__model_proto__pack(m, buf), size);
        *ret = NULL;
        return onnx_import_buffer(buf, size, "built.onnx", ret);
}

/* An int64 initializer in raw_data (Slice parameters, axes). */
static inline Onnx__TensorProto *add_int64_init(Onnx__ModelProto *m, const char *name, size_t count,
                                                const int64_t *values) {
        Onnx__TensorProto *t = arena_alloc(sizeof(*t));

        onnx__tensor_proto__init(t);
        t->name = arena_strdup(name);
        t->has_data_type = true;
        t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
        t->dims = arena_alloc(sizeof(int64_t));
        t->dims[0] = (int64_t) count;
        t->n_dims = 1;
        t->has_raw_data = true;
        t->raw_data.len = count * sizeof(int64_t);
        t->raw_data.data = arena_alloc(t->raw_data.len);
        if (count)
                memcpy(t->raw_data.data, values, t->raw_data.len);
        APPEND(m->graph->n_initializer, m->graph->initializer, t);
        return t;
}

/* Appends one more input (name, or "" for an absent optional one) to n. */
static inline void node_add_input(Onnx__NodeProto *n, const char *name) {
        char *s = arena_strdup(name);

        APPEND(n->n_input, n->input, s);
}

static inline void attr_ints(Onnx__NodeProto *n, const char *name, size_t count, const int64_t *values) {
        Onnx__AttributeProto *a = add_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);

        a->ints = arena_alloc(MAX(count, 1u) * sizeof(int64_t));
        if (count)
                memcpy(a->ints, values, count * sizeof(int64_t));
        a->n_ints = count;
}

/* x[1,3,4,4] -> op -> y, the usual shape of our synthetic tests. */
_unused_ static const int64_t nchw[4] = { -1, 3, 4, 4 };

static inline Onnx__ModelProto *model_unary(int64_t opset, const char *op, Onnx__NodeProto **ret_node) {
        Onnx__ModelProto *m = model_new(opset);

        add_input(m, "x", 4, nchw);
        add_output(m, "y");
        *ret_node = add_node(m, op, "x", NULL, "y");
        return m;
}

/* SPDX-License-Identifier: MIT */
/* The .cvm reader and writer: exact round trips of every field and storage
 * kind, constants mapped without a copy, and refusal of truncated, corrupted,
 * newer or inconsistent files with a detail naming the file and the fault.
 *
 * Run as `test-cvm --write-corpus DIR` it writes the small valid models that
 * seed the fuzz corpus (tests/fuzz/corpus/cvm/). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cvopt/cvopt.h"
#include "format/cvm-layout.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptModel *, cvopt_model_free);

static uint32_t rng_state = 12345;

static uint32_t rng_next(void) {
        rng_state = rng_state * 1664525u + 1013904223u;
        return rng_state >> 8;
}

static float rng_float(void) {
        return (float) rng_next() / (float) (1u << 24) * 2.0f - 1.0f;
}

static void *xmemdup(const void *p, size_t n) {
        void *q = malloc(n);

        assert_non_null(q);
        memcpy(q, p, n);
        return q;
}

static int32_t add_const(CvoptGraph *g, const char *name, CvoptDType dtype, uint32_t ndim, const int64_t *dims,
                         const void *data, size_t bytes) {
        int32_t index;

        assert_int_equal(cvopt_graph_add_constant(g, name, dtype, ndim, dims, xmemdup(data, bytes), true, &index),
                         0);
        return index;
}

/* A small model touching every field: each dtype, per-tensor and per-channel
 * quantization, each attribute type, an absent optional input, labels, an
 * input spec and provenance. Its constants are dense (random, non-zero). */
static CvoptModel *make_model(bool big) {
        CvoptModel *m;
        CvoptGraph *g;
        int64_t xd[4] = { 1, 3, 8, 8 }, wd[4] = { 4, 3, 3, 3 }, bd[1] = { 4 }, sd[1] = { 2 }, yd[4] = { 1, 4, 8, 8 };
        int64_t od[2] = { 1, -1 }, qd[2] = { 4, 27 }, ud[1] = { 5 };
        float w[4 * 3 * 3 * 3];
        int32_t b[4] = { 1, -2, 300000, -4 };
        int64_t shape[2] = { 1, -1 };
        int8_t q[4 * 27];
        uint8_t u[5] = { 1, 2, 3, 254, 255 };
        int32_t x, wi, bi, si, qi, ui, y, z, o, out;
        int64_t ints[3] = { 1, -1, INT64_MIN };
        float floats[2] = { 0.5f, -0.0f };
        CvoptTensor *qt;

        for (size_t i = 0; i < ELEMENTSOF(w); i++)
                w[i] = rng_float() + 2.0f;
        for (size_t i = 0; i < ELEMENTSOF(q); i++)
                q[i] = (int8_t) (rng_next() % 255 - 127) ?: 1;
        assert_int_equal(cvopt_model_new(&m), 0);
        g = m->graph;
        assert_int_equal(cvopt_graph_add_tensor(g, "x", CVOPT_DTYPE_FLOAT32, 4, xd, &x), 0);
        wi = add_const(g, "conv1.weight", CVOPT_DTYPE_FLOAT32, 4, wd, w, sizeof(w));
        bi = add_const(g, "conv1.bias", CVOPT_DTYPE_INT32, 1, bd, b, sizeof(b));
        si = add_const(g, "shape", CVOPT_DTYPE_INT64, 1, sd, shape, sizeof(shape));
        qi = add_const(g, "q.weight", CVOPT_DTYPE_INT8, 2, qd, q, sizeof(q));
        ui = add_const(g, "table", CVOPT_DTYPE_UINT8, 1, ud, u, sizeof(u));
        assert_int_equal(cvopt_graph_add_tensor(g, "y", CVOPT_DTYPE_FLOAT32, 4, yd, &y), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "z", CVOPT_DTYPE_FLOAT32, 4, yd, &z), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "o", CVOPT_DTYPE_FLOAT32, 0, NULL, &o), 0);
        assert_int_equal(cvopt_graph_add_tensor(g, "out", CVOPT_DTYPE_FLOAT32, 2, od, &out), 0);
        g->tensors[o].has_shape = false;

        qt = &g->tensors[qi];
        qt->quant.axis = 0;
        qt->quant.count = 4;
        qt->quant.scale = calloc(4, sizeof(float));
        qt->quant.zero_point = calloc(4, sizeof(int32_t));
        for (int c = 0; c < 4; c++) {
                qt->quant.scale[c] = 0.01f * (float) (c + 1);
                qt->quant.zero_point[c] = c - 2;
        }
        g->tensors[ui].quant.axis = -1;
        g->tensors[ui].quant.count = 1;
        g->tensors[ui].quant.scale = calloc(1, sizeof(float));
        g->tensors[ui].quant.zero_point = calloc(1, sizeof(int32_t));
        g->tensors[ui].quant.scale[0] = 1.0f / 255;
        g->tensors[ui].quant.zero_point[0] = 128;

        {
                int32_t in[3] = { x, wi, bi }, clip_in[3] = { y, -1, -1 }, rs_in[2] = { o, si };
                int64_t k[2] = { 3, 3 }, pads[4] = { 1, 1, 1, 1 };
                CvoptNode *n;

                assert_int_equal(cvopt_graph_add_node(g, "conv1", CVOPT_OP_CONV, 3, in, 1, &y, NULL), 0);
                n = &g->nodes[0];
                assert_int_equal(cvopt_node_set_ints(n, "kernel_shape", 2, k), 0);
                assert_int_equal(cvopt_node_set_ints(n, "pads", 4, pads), 0);
                assert_int_equal(cvopt_node_set_ints(n, "edge", 3, ints), 0);
                assert_int_equal(cvopt_node_set_ints(n, "empty", 0, NULL), 0);
                assert_int_equal(cvopt_node_set_int(n, "group", 1), 0);
                assert_int_equal(cvopt_node_set_string(n, "auto_pad", "NOTSET"), 0);
                assert_int_equal(cvopt_node_set_float(n, "alpha", 0.25f), 0);
                assert_int_equal(cvopt_node_set_floats(n, "coeffs", 2, floats), 0);
                assert_int_equal(cvopt_graph_add_node(g, "clip", CVOPT_OP_CLIP, 3, clip_in, 1, &z, NULL), 0);
                assert_int_equal(cvopt_graph_add_node(g, "", CVOPT_OP_RELU, 1, &z, 1, &o, NULL), 0);
                assert_int_equal(cvopt_graph_add_node(g, "reshape", CVOPT_OP_RESHAPE, 2, rs_in, 1, &out, NULL), 0);
        }
        assert_int_equal(cvopt_graph_set_inputs(g, 1, &x), 0);
        assert_int_equal(cvopt_graph_set_outputs(g, 1, &out), 0);

        m->input = (CvoptInputSpec) { .width = 8, .height = 8, .color = CVOPT_COLOR_BGR,
                                      .mean = { 0.485f, 0.456f, 0.406f }, .std = { 0.229f, 0.224f, 0.225f },
                                      .resize = CVOPT_RESIZE_CENTER_CROP };
        m->n_labels = 3;
        m->labels = calloc(3, sizeof(char *));
        m->labels[0] = strdup("cat");
        m->labels[1] = strdup("");
        m->labels[2] = strdup("ünïcödé dog");
        m->provenance_json = strdup(big ? "{\"source_sha256\": \"abc\", \"top1\": [90.1, 89.7]}" : "{}");
        return m;
}

static void assert_tensors_equal(const CvoptTensor *a, const CvoptTensor *b) {
        assert_string_equal(a->name, b->name);
        assert_int_equal(a->dtype, b->dtype);
        assert_int_equal(a->ndim, b->ndim);
        for (uint32_t d = 0; d < a->ndim; d++)
                assert_int_equal(a->dims[d], b->dims[d]);
        assert_int_equal(a->is_constant, b->is_constant);
        assert_int_equal(a->has_shape, b->has_shape);
        assert_int_equal(a->pack_int4, b->pack_int4);
        if (a->is_constant) {
                assert_non_null(b->data);
                if (cvopt_tensor_bytes(a))
                        assert_memory_equal(a->data, b->data, cvopt_tensor_bytes(a));
        } else {
                assert_null(b->data);
        }
        assert_int_equal(a->quant.count, b->quant.count);
        if (a->quant.count) {
                assert_int_equal(a->quant.axis, b->quant.axis);
                assert_memory_equal(a->quant.scale, b->quant.scale, a->quant.count * sizeof(float));
                assert_memory_equal(a->quant.zero_point, b->quant.zero_point, a->quant.count * sizeof(int32_t));
        }
}

static void assert_models_equal(const CvoptModel *a, const CvoptModel *b) {
        const CvoptGraph *ga = a->graph, *gb = b->graph;

        assert_memory_equal(&a->input, &b->input, sizeof(a->input));
        assert_int_equal(a->n_labels, b->n_labels);
        for (uint32_t i = 0; i < a->n_labels; i++)
                assert_string_equal(a->labels[i], b->labels[i]);
        if (a->provenance_json)
                assert_string_equal(a->provenance_json, b->provenance_json);
        else
                assert_null(b->provenance_json);
        assert_int_equal(ga->n_tensors, gb->n_tensors);
        for (uint32_t i = 0; i < ga->n_tensors; i++)
                assert_tensors_equal(&ga->tensors[i], &gb->tensors[i]);
        assert_int_equal(ga->n_nodes, gb->n_nodes);
        for (uint32_t k = 0; k < ga->n_nodes; k++) {
                const CvoptNode *na = &ga->nodes[k], *nb = &gb->nodes[k];

                assert_string_equal(na->name, nb->name);
                assert_int_equal(na->op, nb->op);
                assert_int_equal(na->n_inputs, nb->n_inputs);
                assert_int_equal(na->n_outputs, nb->n_outputs);
                assert_memory_equal(na->inputs, nb->inputs, na->n_inputs * sizeof(int32_t));
                assert_memory_equal(na->outputs, nb->outputs, na->n_outputs * sizeof(int32_t));
                assert_int_equal(na->n_attrs, nb->n_attrs);
                for (uint32_t i = 0; i < na->n_attrs; i++) {
                        const CvoptAttr *x = &na->attrs[i], *y = &nb->attrs[i];

                        assert_string_equal(x->name, y->name);
                        assert_int_equal(x->type, y->type);
                        assert_int_equal(x->i, y->i);
                        assert_memory_equal(&x->f, &y->f, sizeof(float));
                        if (x->s)
                                assert_string_equal(x->s, y->s);
                        assert_int_equal(x->count, y->count);
                        if (x->count && x->type == CVOPT_ATTR_INTS)
                                assert_memory_equal(x->ints, y->ints, x->count * sizeof(int64_t));
                        if (x->count && x->type == CVOPT_ATTR_FLOATS)
                                assert_memory_equal(x->floats, y->floats, x->count * sizeof(float));
                }
        }
        assert_int_equal(ga->n_inputs, gb->n_inputs);
        assert_memory_equal(ga->inputs, gb->inputs, ga->n_inputs * sizeof(int32_t));
        assert_int_equal(ga->n_outputs, gb->n_outputs);
        assert_memory_equal(ga->outputs, gb->outputs, ga->n_outputs * sizeof(int32_t));
}

static void write_buffer(const CvoptModel *m, uint8_t **ret, size_t *ret_size) {
        assert_int_equal(cvm_write_buffer(m, ret, ret_size), 0);
}

/* A directory of our own under $TMPDIR, removed by the caller. */
static char *make_temp_dir(void) {
        char *dir;

        assert_true(asprintf(&dir, "%s/test-cvm.XXXXXX", getenv("TMPDIR") ?: "/tmp") > 0);
        assert_non_null(mkdtemp(dir));
        return dir;
}

static void write_file(const char *path, const void *data, size_t size) {
        FILE *f = fopen(path, "we");

        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, size, f), size);
        assert_int_equal(fclose(f), 0);
}

static void test_round_trip(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = make_model(true), *back = NULL, *from_file = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_free_ char *dir = make_temp_dir(), *path = NULL;
        uint64_t predicted;
        size_t size;
        struct stat st;
        (void) state;

        write_buffer(m, &buf, &size);
        assert_int_equal(cvopt_model_serialized_size(m, &predicted), 0);
        assert_int_equal(predicted, size);
        assert_int_equal(cvopt_model_load_buffer(buf, size, &back), 0);
        assert_models_equal(m, back);

        assert_true(asprintf(&path, "%s/model.cvm", dir) > 0);
        assert_int_equal(cvopt_model_save(m, path), 0);
        assert_int_equal(strlen(m->id), 16);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, size);
        assert_int_equal(cvopt_model_load(path, &from_file), 0);
        assert_models_equal(m, from_file);
        /* Saved and loaded ids agree: the id names the file's content. */
        assert_string_equal(m->id, from_file->id);
        assert_string_equal(back->id, from_file->id);

        /* No temporary file is left next to the model. */
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);
}

/* Dense constants of a loaded file point into the mapping, aligned. */
static void test_mapped_constants(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = make_model(false), *back = NULL;
        _cleanup_free_ char *dir = make_temp_dir(), *path = NULL;
        const CvoptGraph *g;
        (void) state;

        assert_true(asprintf(&path, "%s/model.cvm", dir) > 0);
        assert_int_equal(cvopt_model_save(m, path), 0);
        assert_int_equal(cvopt_model_load(path, &back), 0);
        g = back->graph;
        assert_non_null(g->backing);
        assert_non_null(g->release_backing);
        for (uint32_t i = 0; i < g->n_tensors; i++) {
                const CvoptTensor *t = &g->tensors[i];
                const uint8_t *p = t->data, *base = g->backing;

                if (!t->is_constant)
                        continue;
                assert_false(t->owns_data);
                assert_true(p >= base && p + cvopt_tensor_bytes(t) <= base + g->backing_size);
                assert_int_equal((uintptr_t) p % 64, 0);
        }
        /* The mapping is private: writing a constant changes neither the file
         * nor a second load. */
        ((float *) g->tensors[1].data)[0] = 42.0f;
        back = cvopt_model_free(back);
        assert_int_equal(cvopt_model_load(path, &back), 0);
        assert_memory_equal(back->graph->tensors[1].data, m->graph->tensors[1].data, 4);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);
}

/* Storage byte of tensor i, read from the file's tensor table. */
static uint8_t file_tensor_storage(const uint8_t *file, uint32_t i, uint8_t *ret_n, uint8_t *ret_m) {
        uint32_t n_sections = cvm_get_u32(file + CVM_HDR_N_SECTIONS);

        for (uint32_t s = 0; s < n_sections; s++) {
                const uint8_t *e = file + CVM_HEADER_SIZE + s * CVM_SECTION_ENTRY_SIZE;

                if (cvm_get_u32(e + CVM_SEC_TYPE) == CVM_SECTION_TENSORS) {
                        const uint8_t *t = file + cvm_get_u64(e + CVM_SEC_OFFSET) + 8 + i * CVM_TENSOR_ENTRY_SIZE;

                        if (ret_n)
                                *ret_n = t[8];
                        if (ret_m)
                                *ret_m = t[9];
                        return t[6];
                }
        }
        fail();
        return 0;
}

/* A model holding one constant; returns the file size and checks the round
 * trip is exact and the storage kind the writer chose. */
static size_t round_trip_constant(CvoptDType dtype, uint32_t ndim, const int64_t *dims, const void *data,
                                  size_t bytes, bool pack_int4, CvmStorage want, uint8_t want_n, uint8_t want_m) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL, *back = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        uint8_t n = 0, mm = 0;
        int32_t c, o;
        size_t size;

        assert_int_equal(cvopt_model_new(&m), 0);
        c = add_const(m->graph, "c", dtype, ndim, dims, data, bytes);
        m->graph->tensors[c].pack_int4 = pack_int4;
        assert_int_equal(cvopt_graph_add_tensor(m->graph, "o", dtype, ndim, dims, &o), 0);
        assert_int_equal(cvopt_graph_add_node(m->graph, "id", CVOPT_OP_IDENTITY, 1, &c, 1, &o, NULL), 0);
        assert_int_equal(cvopt_graph_set_outputs(m->graph, 1, &o), 0);
        write_buffer(m, &buf, &size);
        if (file_tensor_storage(buf, 0, &n, &mm) != want)
                fail_msg("storage %u %u:%u, want %d %u:%u", file_tensor_storage(buf, 0, &n, &mm), n, mm, want, want_n, want_m);
        assert_int_equal(n, want_n);
        assert_int_equal(mm, want_m);
        assert_int_equal(cvopt_model_load_buffer(buf, size, &back), 0);
        assert_models_equal(m, back);
        assert_int_equal(back->graph->tensors[0].owns_data, want != CVM_STORAGE_DENSE);
        return size;
}

static void test_storage_kinds(void **state) {
        enum { ROWS = 16, COLS = 64, N = ROWS * COLS };
        int64_t dims[2] = { ROWS, COLS };
        static float f[N];
        static int8_t q[N];
        size_t dense_size, size;
        (void) state;

        /* Dense random values stay dense. */
        for (int i = 0; i < N; i++)
                f[i] = rng_float() + 3.0f;
        dense_size = round_trip_constant(CVOPT_DTYPE_FLOAT32, 2, dims, f, sizeof(f), false, CVM_STORAGE_DENSE, 0, 0);

        /* 10% unstructured non-zeros, one of them -0.0f (a non-zero bit
         * pattern that must survive): bitmask, far smaller than dense. */
        for (int i = 0; i < N; i++)
                f[i] = rng_next() % 10 == 0 ? rng_float() + 3.0f : 0.0f;
        f[5] = -0.0f;
        f[6] = 0.0f;
        f[7] = 0.0f;
        size = round_trip_constant(CVOPT_DTYPE_FLOAT32, 2, dims, f, sizeof(f), false, CVM_STORAGE_BITMASK, 0, 0);
        assert_true(size < dense_size - sizeof(f) / 2);

        /* 2:4 structured (and not 1:2, which the writer would pick): nm,
         * about half the dense data. */
        for (int i = 0; i < N; i++)
                f[i] = ((i / 4) % 2 ? i % 2 == 1 : i % 4 < 2) ? rng_float() + 3.0f : 0.0f;
        size = round_trip_constant(CVOPT_DTYPE_FLOAT32, 2, dims, f, sizeof(f), false, CVM_STORAGE_NM, 2, 4);
        /* Half the values (2 of 4) plus a 2-bit index for each. */
        assert_true(dense_size - size >= sizeof(f) - (N / 2 * 4 + N / 2 * 2 / 8) - 64);

        /* 1:8 on int8: nm wins over bitmask (3 index bits vs 8 mask bits). */
        memset(q, 0, sizeof(q));
        for (int g = 0; g < N / 8; g++)
                q[g * 8 + g % 8] = (int8_t) (g % 200 - 100) ?: 5;
        round_trip_constant(CVOPT_DTYPE_INT8, 2, dims, q, sizeof(q), false, CVM_STORAGE_NM, 1, 8);
        /* A group with fewer non-zeros than N is padded and still exact. */
        q[0] = 0;
        round_trip_constant(CVOPT_DTYPE_INT8, 2, dims, q, sizeof(q), false, CVM_STORAGE_NM, 1, 8);

        /* int4 on request: half the bytes, exact for every value in [-8, 7]. */
        for (int i = 0; i < N; i++)
                q[i] = (int8_t) ((i % 15) - 8 + (i % 15 >= 8));
        dense_size = round_trip_constant(CVOPT_DTYPE_INT8, 2, dims, q, sizeof(q), false, CVM_STORAGE_DENSE, 0, 0);
        size = round_trip_constant(CVOPT_DTYPE_INT8, 2, dims, q, sizeof(q), true, CVM_STORAGE_INT4, 0, 0);
        assert_int_equal(dense_size - size, N / 2);
        /* An odd count leaves an unused nibble. */
        {
                int64_t odd[1] = { 7 };
                int8_t v[7] = { -8, 7, 0, -1, 1, 3, -5 };

                round_trip_constant(CVOPT_DTYPE_INT8, 1, odd, v, sizeof(v), true, CVM_STORAGE_INT4, 0, 0);
        }
        /* A sparse int4-hinted tensor may be stored sparse; the hint survives. */
        memset(q, 0, sizeof(q));
        q[100] = 3;
        round_trip_constant(CVOPT_DTYPE_INT8, 2, dims, q, sizeof(q), true, CVM_STORAGE_NM, 1, 16);

        /* Sparse int64 and int32 work too. */
        {
                static int64_t l[N];

                memset(l, 0, sizeof(l));
                l[3] = INT64_MIN;
                l[N - 1] = -1;
                round_trip_constant(CVOPT_DTYPE_INT64, 2, dims, l, sizeof(l), false, CVM_STORAGE_BITMASK, 0, 0);
        }
}

static void test_int4_out_of_range_refused(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
        int64_t dims[1] = { 4 };
        int8_t v[4] = { 1, 2, 8, 3 };
        uint8_t *buf = NULL;
        size_t size;
        int32_t c;
        (void) state;

        assert_int_equal(cvopt_model_new(&m), 0);
        c = add_const(m->graph, "w", CVOPT_DTYPE_INT8, 1, dims, v, sizeof(v));
        m->graph->tensors[c].pack_int4 = true;
        assert_int_equal(cvm_write_buffer(m, &buf, &size), -EINVAL);
        assert_non_null(strstr(cvopt_error_detail(), "'w'"));
        assert_null(buf);
}

/* Every proper prefix of a file is refused, from memory and from disk, and
 * the detail names the file. */
static void test_truncation(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = make_model(false);
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_free_ char *dir = make_temp_dir(), *path = NULL;
        size_t size;
        (void) state;

        write_buffer(m, &buf, &size);
        assert_true(asprintf(&path, "%s/cut.cvm", dir) > 0);
        for (size_t len = 0; len < size; len++) {
                CvoptModel *back = NULL;
                int r;

                r = cvopt_model_load_buffer(buf, len, &back);
                assert_true(r == -CVOPT_E_FORMAT);
                assert_null(back);
                assert_non_null(strstr(cvopt_error_detail(), "<buffer>"));

                write_file(path, buf, len);
                r = cvopt_model_load(path, &back);
                assert_true(r == -CVOPT_E_FORMAT);
                assert_null(back);
                assert_non_null(strstr(cvopt_error_detail(), path));
        }
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);
}

/* Any single changed byte is refused: header and table by the header CRC,
 * sections by theirs (the detail names the section), padding by the zero
 * check. */
static void test_byte_flips(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = make_model(false);
        _cleanup_free_ uint8_t *buf = NULL;
        uint32_t n_sections;
        size_t size;
        (void) state;

        write_buffer(m, &buf, &size);
        n_sections = cvm_get_u32(buf + CVM_HDR_N_SECTIONS);
        for (size_t pos = 0; pos < size; pos++) {
                static const uint8_t masks[2] = { 0x01, 0x80 };

                for (size_t k = 0; k < ELEMENTSOF(masks); k++) {
                        CvoptModel *back = NULL;
                        int r;

                        buf[pos] ^= masks[k];
                        r = cvopt_model_load_buffer(buf, size, &back);
                        buf[pos] ^= masks[k];
                        assert_null(back);
                        assert_true(r == -CVOPT_E_CRC || r == -CVOPT_E_FORMAT || r == -CVOPT_E_VERSION);
                }
        }
        /* A change inside a section names that section. */
        for (uint32_t s = 0; s < n_sections; s++) {
                const uint8_t *e = buf + CVM_HEADER_SIZE + s * CVM_SECTION_ENTRY_SIZE;
                uint64_t offset = cvm_get_u64(e + CVM_SEC_OFFSET), len = cvm_get_u64(e + CVM_SEC_SIZE);
                CvoptModel *back = NULL;
                char want[64];

                if (len == 0)
                        continue;
                buf[offset + len / 2] ^= 0x10;
                assert_int_equal(cvopt_model_load_buffer(buf, size, &back), -CVOPT_E_CRC);
                buf[offset + len / 2] ^= 0x10;
                snprintf(want, sizeof(want), "section '%s': CRC mismatch", cvm_section_name(cvm_get_u32(e)));
                assert_non_null(strstr(cvopt_error_detail(), want));
        }
}

/* Recomputes every CRC, so a test can change content and reach the checks
 * behind them. */
static void fix_crcs(uint8_t *buf) {
        uint32_t n_sections = cvm_get_u32(buf + CVM_HDR_N_SECTIONS);
        size_t table_end = CVM_HEADER_SIZE + n_sections * CVM_SECTION_ENTRY_SIZE;

        for (uint32_t s = 0; s < n_sections; s++) {
                uint8_t *e = buf + CVM_HEADER_SIZE + s * CVM_SECTION_ENTRY_SIZE;

                cvm_put_u32(e + CVM_SEC_CRC, cvm_crc32(buf + cvm_get_u64(e + CVM_SEC_OFFSET),
                                                       cvm_get_u64(e + CVM_SEC_SIZE)));
        }
        cvm_put_u32(buf + CVM_HDR_CRC, 0);
        cvm_put_u32(buf + CVM_HDR_CRC, cvm_crc32(buf, table_end));
}

static void test_versions(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = make_model(false), *back = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        size_t size;
        (void) state;

        write_buffer(m, &buf, &size);
        cvm_put_u16(buf + CVM_HDR_MAJOR, 2);
        fix_crcs(buf);
        assert_int_equal(cvopt_model_load_buffer(buf, size, &back), -CVOPT_E_VERSION);
        assert_non_null(strstr(cvopt_error_detail(), "version 2.0 is newer"));
        /* A newer minor version of the same major loads. */
        cvm_put_u16(buf + CVM_HDR_MAJOR, 1);
        cvm_put_u16(buf + CVM_HDR_MINOR, 7);
        fix_crcs(buf);
        assert_int_equal(cvopt_model_load_buffer(buf, size, &back), 0);
        assert_models_equal(m, back);
}

/* A section type this reader does not know (added by a newer minor
 * version) is checked and skipped. */
static void test_unknown_section_skipped(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = make_model(false), *back = NULL;
        _cleanup_free_ uint8_t *buf = NULL, *grown = NULL;
        uint32_t n_sections;
        size_t size, grown_size;
        uint8_t *e;
        (void) state;

        write_buffer(m, &buf, &size);
        n_sections = cvm_get_u32(buf + CVM_HDR_N_SECTIONS);
        /* One more table entry pushes every section down by 64 bytes; the
         * new 64-byte section goes at the end. */
        grown_size = ALIGN_TO(size + 64, 64) + 64;
        grown = calloc(grown_size, 1);
        assert_non_null(grown);
        memcpy(grown, buf, CVM_HEADER_SIZE + n_sections * CVM_SECTION_ENTRY_SIZE);
        memcpy(grown + CVM_HEADER_SIZE + (n_sections + 1) * CVM_SECTION_ENTRY_SIZE + 32,
               buf + CVM_HEADER_SIZE + n_sections * CVM_SECTION_ENTRY_SIZE,
               size - CVM_HEADER_SIZE - n_sections * CVM_SECTION_ENTRY_SIZE);
        for (uint32_t i = 0; i < n_sections; i++) {
                e = grown + CVM_HEADER_SIZE + i * CVM_SECTION_ENTRY_SIZE;
                cvm_put_u64(e + CVM_SEC_OFFSET, cvm_get_u64(e + CVM_SEC_OFFSET) + 64);
        }
        e = grown + CVM_HEADER_SIZE + n_sections * CVM_SECTION_ENTRY_SIZE;
        cvm_put_u32(e + CVM_SEC_TYPE, 99);
        cvm_put_u64(e + CVM_SEC_OFFSET, grown_size - 64);
        cvm_put_u64(e + CVM_SEC_SIZE, 64);
        memset(grown + grown_size - 64, 0xA5, 64);
        cvm_put_u32(grown + CVM_HDR_N_SECTIONS, n_sections + 1);
        cvm_put_u16(grown + CVM_HDR_MINOR, 1);
        cvm_put_u64(grown + CVM_HDR_FILE_SIZE, grown_size);
        fix_crcs(grown);
        assert_int_equal(cvopt_model_load_buffer(grown, grown_size, &back), 0);
        assert_models_equal(m, back);

        /* Its CRC is still checked. */
        back = cvopt_model_free(back);
        grown[grown_size - 1] ^= 1;
        assert_int_equal(cvopt_model_load_buffer(grown, grown_size, &back), -CVOPT_E_CRC);
        assert_non_null(strstr(cvopt_error_detail(), "section 'unknown': CRC mismatch"));
}

static void test_id(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *a = make_model(false), *b = NULL, *c = NULL, *d = NULL;
        _cleanup_free_ uint8_t *buf1 = NULL, *buf2 = NULL, *buf3 = NULL;
        size_t s1, s2, s3;
        (void) state;

        write_buffer(a, &buf1, &s1);
        write_buffer(a, &buf2, &s2);
        assert_int_equal(s1, s2);
        assert_memory_equal(buf1, buf2, s1);
        assert_int_equal(cvopt_model_load_buffer(buf1, s1, &b), 0);
        assert_int_equal(cvopt_model_load_buffer(buf2, s2, &c), 0);
        assert_string_equal(b->id, c->id);
        for (int i = 0; i < 16; i++)
                assert_non_null(strchr("0123456789abcdef", b->id[i]));

        /* One weight changed by one ulp: a different model, a different id. */
        ((float *) a->graph->tensors[1].data)[10] = nextafterf(((float *) a->graph->tensors[1].data)[10], 10.0f);
        write_buffer(a, &buf3, &s3);
        assert_int_equal(cvopt_model_load_buffer(buf3, s3, &d), 0);
        assert_string_not_equal(b->id, d->id);
}

static uint64_t section_offset(const uint8_t *buf, uint32_t type) {
        for (uint32_t s = 0; s < cvm_get_u32(buf + CVM_HDR_N_SECTIONS); s++) {
                const uint8_t *e = buf + CVM_HEADER_SIZE + s * CVM_SECTION_ENTRY_SIZE;

                if (cvm_get_u32(e) == type)
                        return cvm_get_u64(e + CVM_SEC_OFFSET);
        }
        fail();
        return 0;
}

/* Finds the tensor entry of the model's tensor i in buf. */
static uint8_t *tensor_entry(uint8_t *buf, uint32_t i) {
        for (uint32_t s = 0; s < cvm_get_u32(buf + CVM_HDR_N_SECTIONS); s++) {
                uint8_t *e = buf + CVM_HEADER_SIZE + s * CVM_SECTION_ENTRY_SIZE;

                if (cvm_get_u32(e) == CVM_SECTION_TENSORS)
                        return buf + cvm_get_u64(e + CVM_SEC_OFFSET) + 8 + i * CVM_TENSOR_ENTRY_SIZE;
        }
        fail();
        return NULL;
}

static void expect_refused(uint8_t *buf, size_t size, int err, const char *detail) {
        CvoptModel *back = NULL;

        fix_crcs(buf);
        assert_int_equal(cvopt_model_load_buffer(buf, size, &back), err);
        assert_null(back);
        if (!strstr(cvopt_error_detail(), detail))
                fail_msg("detail '%s' lacks '%s'", cvopt_error_detail(), detail);
}

/* Files with correct CRCs but inconsistent content. */
static void test_inconsistent_content(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = make_model(false);
        _cleanup_free_ uint8_t *orig = NULL, *buf = NULL;
        size_t size;
        uint8_t *e, *p;
        (void) state;

        write_buffer(m, &orig, &size);
        buf = malloc(size);
        assert_non_null(buf);

#define RESET() memcpy(buf, orig, size)
        RESET();
        e = tensor_entry(buf, 1);
        cvm_put_u64(e + 24, UINT64_C(1) << 40);
        cvm_put_u64(e + 32, UINT64_C(1) << 40);
        expect_refused(buf, size, -CVOPT_E_FORMAT, "<buffer>: section 'tensors': tensor 1 'conv1.weight': dims overflow");

        RESET();
        e = tensor_entry(buf, 1);
        cvm_put_u64(e + 24, 5);
        expect_refused(buf, size, -CVOPT_E_FORMAT, "tensor 1 'conv1.weight': dense data is 432 bytes, expected 540");

        RESET();
        tensor_entry(buf, 2)[4] = 6; /* int4 has no in-memory form */
        expect_refused(buf, size, -CVOPT_E_FORMAT, "tensor 2 'conv1.bias': invalid dtype 6");

        RESET();
        cvm_put_u32(tensor_entry(buf, 4) + 16, 3); /* 3 scales for 4 channels */
        expect_refused(buf, size, -CVOPT_E_FORMAT, "quantization axis 0 with 3 scales");

        RESET();
        cvm_put_u64(tensor_entry(buf, 1) + 88, 8); /* misaligned dense data */
        expect_refused(buf, size, -CVOPT_E_FORMAT, "not 64-byte aligned");

        RESET();
        /* Two tensors sharing bytes (a way to decode one region many times). */
        cvm_put_u64(tensor_entry(buf, 2) + 88, cvm_get_u64(tensor_entry(buf, 1) + 88));
        expect_refused(buf, size, -CVOPT_E_FORMAT, "tensor 2 'conv1.bias': data (offset 0, 16 bytes) overlaps");

        RESET();
        /* The int4 hint on int8 values outside [-8, 7] kept dense (a saved
         * copy could not honour the hint; found by fuzz-cvm). */
        tensor_entry(buf, 4)[7] |= CVM_TENSOR_FLAG_INT4_HINT;
        expect_refused(buf, size, -CVOPT_E_FORMAT, "tensor 4 'q.weight': int4 hint but value");

        RESET();
        cvm_put_u32(tensor_entry(buf, 3), 100000); /* name outside the strings */
        expect_refused(buf, size, -CVOPT_E_FORMAT, "outside the string table");

        RESET();
        cvm_put_u32(tensor_entry(buf, 3), cvm_get_u32(tensor_entry(buf, 2))); /* duplicate name */
        expect_refused(buf, size, -CVOPT_E_FORMAT, "name used twice");

        RESET();
        p = memmem(buf, size, "Relu", 5);
        assert_non_null(p);
        p[3] = 'v';
        expect_refused(buf, size, -CVOPT_E_FORMAT, "unknown operator 'Relv'");

        RESET();
        /* The attribute record "auto_pad" (strref, type 3): type 9. */
        {
                uint8_t rec[8];

                p = memmem(buf, size, "auto_pad", 9);
                assert_non_null(p);
                cvm_put_u32(rec, (uint32_t) (p - (buf + section_offset(buf, CVM_SECTION_STRINGS))));
                cvm_put_u32(rec + 4, CVOPT_ATTR_STRING);
                p = memmem(buf + section_offset(buf, CVM_SECTION_NODES), size - section_offset(buf, CVM_SECTION_NODES),
                           rec, sizeof(rec));
                assert_non_null(p);
                p[4] = 9;
                expect_refused(buf, size, -CVOPT_E_FORMAT, "node 0 'conv1': <buffer>: section 'nodes': attribute 'auto_pad': unknown type 9");
        }

        RESET();
        /* A graph output index past the tensors. */
        cvm_put_u32(buf + section_offset(buf, CVM_SECTION_GRAPH_IO) + 12, 77);
        expect_refused(buf, size, -CVOPT_E_FORMAT, "section 'graph_io': graph output 0: tensor index 77 out of range");

        RESET();
        cvm_put_u16(buf + CVM_HDR_MAJOR, 1);
        /* Section offset misaligned: the first section moved by 8. */
        cvm_put_u64(buf + CVM_HEADER_SIZE + CVM_SEC_OFFSET, cvm_get_u64(buf + CVM_HEADER_SIZE + CVM_SEC_OFFSET) + 8);
        expect_refused(buf, size, -CVOPT_E_FORMAT, "not 64-byte aligned");

        RESET();
        /* Second section overlapping the first. */
        cvm_put_u64(buf + CVM_HEADER_SIZE + CVM_SECTION_ENTRY_SIZE + CVM_SEC_OFFSET,
                    cvm_get_u64(buf + CVM_HEADER_SIZE + CVM_SEC_OFFSET));
        expect_refused(buf, size, -CVOPT_E_FORMAT, "overlaps");

        RESET();
        cvm_put_u64(buf + CVM_HDR_FILE_SIZE, size + 64);
        expect_refused(buf, size, -CVOPT_E_FORMAT, "header says");
#undef RESET
}

static void test_save_errors(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = make_model(false);
        (void) state;

        assert_true(cvopt_model_save(m, "/nonexistent-dir/x.cvm") < 0);
        assert_non_null(strstr(cvopt_error_detail(), "/nonexistent-dir/x.cvm"));
        assert_int_equal(cvopt_model_load("/nonexistent-dir/x.cvm", &m), -ENOENT);
        assert_non_null(m);
}

/* Writes the seed corpus for tests/fuzz/fuzz-cvm.c. */
static int write_corpus(const char *dir) {
        struct {
                const char *name;
                CvoptModel *model;
        } seeds[] = {
                { "full.cvm", make_model(true) },
        };
        int64_t dims[2] = { 4, 16 };
        int8_t q[64] = { 0 };
        float f[64] = { 0 };
        CvoptModel *m;
        int32_t c, o;

        for (size_t s = 0; s < ELEMENTSOF(seeds); s++) {
                _cleanup_free_ char *path = NULL;

                if (asprintf(&path, "%s/%s", dir, seeds[s].name) < 0 || cvopt_model_save(seeds[s].model, path) < 0)
                        return EXIT_FAILURE;
                cvopt_model_free(seeds[s].model);
        }
        /* The smallest useful model: x -> Relu -> y. */
        {
                _cleanup_free_ char *path = NULL;
                int64_t xd[2] = { 1, 4 };
                int32_t x, y;

                if (cvopt_model_new(&m) < 0)
                        return EXIT_FAILURE;
                cvopt_graph_add_tensor(m->graph, "x", CVOPT_DTYPE_FLOAT32, 2, xd, &x);
                cvopt_graph_add_tensor(m->graph, "y", CVOPT_DTYPE_FLOAT32, 2, xd, &y);
                cvopt_graph_add_node(m->graph, "relu", CVOPT_OP_RELU, 1, &x, 1, &y, NULL);
                cvopt_graph_set_inputs(m->graph, 1, &x);
                cvopt_graph_set_outputs(m->graph, 1, &y);
                if (asprintf(&path, "%s/tiny.cvm", dir) < 0 || cvopt_model_save(m, path) < 0)
                        return EXIT_FAILURE;
                cvopt_model_free(m);
        }
        /* One constant in each storage kind but dense. */
        for (int i = 0; i < 64; i++) {
                q[i] = (int8_t) (i % 4 == 0 ? i / 4 - 8 : 0);
                f[i] = rng_next() % 3 == 0 ? 1.5f : 0.0f;
        }
        for (int kind = 0; kind < 3; kind++) {
                _cleanup_free_ char *path = NULL;
                static const char *const names[] = { "int4.cvm", "nm.cvm", "bitmask.cvm" };

                if (cvopt_model_new(&m) < 0)
                        return EXIT_FAILURE;
                if (kind == 2)
                        c = add_const(m->graph, "c", CVOPT_DTYPE_FLOAT32, 2, dims, f, sizeof(f));
                else
                        c = add_const(m->graph, "c", CVOPT_DTYPE_INT8, 2, dims, q, sizeof(q));
                m->graph->tensors[c].pack_int4 = kind == 0;
                if (kind == 0)
                        for (int i = 0; i < 64; i++)
                                ((int8_t *) m->graph->tensors[c].data)[i] = (int8_t) (i % 16 - 8);
                cvopt_graph_add_tensor(m->graph, "o", m->graph->tensors[c].dtype, 2, dims, &o);
                cvopt_graph_add_node(m->graph, "id", CVOPT_OP_IDENTITY, 1, &c, 1, &o, NULL);
                cvopt_graph_set_outputs(m->graph, 1, &o);
                if (asprintf(&path, "%s/%s", dir, names[kind]) < 0 || cvopt_model_save(m, path) < 0)
                        return EXIT_FAILURE;
                cvopt_model_free(m);
        }
        return EXIT_SUCCESS;
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_mapped_constants),
                cmocka_unit_test(test_storage_kinds),
                cmocka_unit_test(test_int4_out_of_range_refused),
                cmocka_unit_test(test_truncation),
                cmocka_unit_test(test_byte_flips),
                cmocka_unit_test(test_versions),
                cmocka_unit_test(test_unknown_section_skipped),
                cmocka_unit_test(test_id),
                cmocka_unit_test(test_inconsistent_content),
                cmocka_unit_test(test_save_errors),
        };

        if (argc == 3 && streq(argv[1], "--write-corpus"))
                return write_corpus(argv[2]);
        return cmocka_run_group_tests(tests, NULL, NULL);
}

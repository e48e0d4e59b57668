/* SPDX-License-Identifier: MIT */
/* The .cvm writer (docs/model-format.md). It lays the whole file out in
 * memory, then writes it with one write loop: models are a few MB after
 * optimization, and having every byte in place before writing makes the CRCs
 * and the id simple and the atomic rename the only file-system step. */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cvopt/errors.h"
#include "cvopt/model.h"
#include "format/cvm-layout.h"
#include "macro.h"

typedef struct Buf {
        uint8_t *data;
        size_t size, cap;
} Buf;

static int buf_put(Buf *b, const void *p, size_t n) {
        size_t need;

        if (size_add_overflow(b->size, n, &need))
                return -E2BIG;
        if (need > b->cap) {
                size_t cap = MAX(need, b->cap * 2);
                uint8_t *d = realloc(b->data, MAX(cap, 64u));

                if (!d)
                        return -ENOMEM;
                b->data = d;
                b->cap = MAX(cap, 64u);
        }
        if (n)
                memcpy(b->data + b->size, p, n);
        b->size = need;
        return 0;
}

static int buf_u32(Buf *b, uint32_t v) {
        uint8_t le[4];

        cvm_put_u32(le, v);
        return buf_put(b, le, sizeof(le));
}

static int buf_u64(Buf *b, uint64_t v) {
        uint8_t le[8];

        cvm_put_u64(le, v);
        return buf_put(b, le, sizeof(le));
}

static int buf_f32(Buf *b, float f) {
        uint8_t le[4];

        cvm_put_f32(le, f);
        return buf_put(b, le, sizeof(le));
}

typedef struct Writer {
        const CvoptModel *model;
        Buf sections[_CVM_SECTION_MAX]; /* all but data */
        CvmEncoded *encoded;            /* per tensor */
        uint64_t *data_offset, *quant_offset;
        uint64_t data_size;
        uint64_t section_offset[_CVM_SECTION_MAX];
        uint64_t file_size;
} Writer;

static void writer_done(Writer *w) {
        for (size_t s = 0; s < _CVM_SECTION_MAX; s++)
                free(w->sections[s].data);
        if (w->encoded)
                for (uint32_t i = 0; i < w->model->graph->n_tensors; i++)
                        cvm_encoded_done(&w->encoded[i]);
        free(w->encoded);
        free(w->data_offset);
        free(w->quant_offset);
}

static int add_string(Writer *w, const char *s, uint32_t *ret) {
        Buf *b = &w->sections[CVM_SECTION_STRINGS];
        size_t offset = b->size;
        int r;

        if (offset >= UINT32_MAX)
                return cvopt_error_set(-E2BIG, "string table over 4 GiB");
        r = buf_put(b, s, strlen(s) + 1);
        if (r < 0)
                return r;
        *ret = (uint32_t) offset;
        return 0;
}

static int put_strref(Writer *w, Buf *b, const char *s) {
        uint32_t ref = 0;
        int r = add_string(w, s, &ref);

        return r < 0 ? r : buf_u32(b, ref);
}

static bool float_finite(float f) {
        return isfinite(f);
}

/* Refuses what the reader would refuse, so that a save never produces a
 * file that does not load. */
static int check_tensor(const CvoptTensor *t, uint32_t i) {
        if (!t->name)
                return cvopt_error_set(-EINVAL, "tensor %u has no name", i);
        if (t->ndim > CVOPT_MAX_DIMS || t->dtype == CVOPT_DTYPE_UNDEFINED || t->dtype == CVOPT_DTYPE_INT4 ||
            (unsigned) t->dtype >= _CVOPT_DTYPE_MAX)
                return cvopt_error_set(-EINVAL, "tensor '%s': dtype %s or ndim %u cannot be stored", t->name,
                                       cvopt_dtype_name(t->dtype), t->ndim);
        for (uint32_t d = 0; d < t->ndim; d++)
                if (t->dims[d] < (t->is_constant ? 0 : -1))
                        return cvopt_error_set(-EINVAL, "tensor '%s': dim %u is %lld", t->name, d,
                                               (long long) t->dims[d]);
        if (t->pack_int4 && t->dtype != CVOPT_DTYPE_INT8)
                return cvopt_error_set(-EINVAL, "tensor '%s': int4 packing needs int8 values", t->name);
        if (t->quant.count > 0) {
                uint64_t want = t->quant.axis < 0 ? 1
                                : (uint32_t) t->quant.axis < t->ndim ? (uint64_t) t->dims[t->quant.axis]
                                                                     : UINT64_MAX;

                if (t->quant.axis < -1 || want != t->quant.count || !t->quant.scale || !t->quant.zero_point)
                        return cvopt_error_set(-EINVAL, "tensor '%s': quantization axis %d with %u scales",
                                               t->name, t->quant.axis, t->quant.count);
                for (uint32_t c = 0; c < t->quant.count; c++)
                        if (!float_finite(t->quant.scale[c]) || t->quant.scale[c] <= 0)
                                return cvopt_error_set(-EINVAL, "tensor '%s': scale %u is not a positive number",
                                                       t->name, c);
        }
        return 0;
}

/* Encodes constant data and places it, and the quantization arrays, in the
 * data section. */
static int plan_data(Writer *w) {
        const CvoptGraph *g = w->model->graph;
        uint64_t cursor = 0;
        int r;

        w->encoded = calloc(MAX(g->n_tensors, 1u), sizeof(CvmEncoded));
        w->data_offset = calloc(MAX(g->n_tensors, 1u), sizeof(uint64_t));
        w->quant_offset = calloc(MAX(g->n_tensors, 1u), sizeof(uint64_t));
        if (!w->encoded || !w->data_offset || !w->quant_offset)
                return -ENOMEM;
        for (uint32_t i = 0; i < g->n_tensors; i++) {
                const CvoptTensor *t = &g->tensors[i];

                r = check_tensor(t, i);
                if (r < 0)
                        return r;
                if (t->is_constant) {
                        r = cvm_storage_encode(t, &w->encoded[i]);
                        if (r < 0)
                                return r;
                        cursor = ALIGN_TO(cursor, CVM_ALIGN);
                        w->data_offset[i] = cursor;
                        cursor += w->encoded[i].size;
                }
                if (t->quant.count > 0) {
                        cursor = ALIGN_TO(cursor, 4);
                        w->quant_offset[i] = cursor;
                        cursor += (uint64_t) t->quant.count * 8;
                }
        }
        w->data_size = cursor;
        return 0;
}

static int build_input(Writer *w) {
        const CvoptInputSpec *in = &w->model->input;
        Buf *b = &w->sections[CVM_SECTION_INPUT];
        int r = 0;

        if (in->width > CVM_INPUT_MAX_SIDE || in->height > CVM_INPUT_MAX_SIDE ||
            cvopt_color_from_name(cvopt_color_name(in->color)) < 0 ||
            cvopt_resize_from_name(cvopt_resize_name(in->resize)) < 0)
                return cvopt_error_set(-EINVAL, "input spec: size, colour or resize policy out of range");
        for (int c = 0; c < 3; c++)
                if (!float_finite(in->mean[c]) || !float_finite(in->std[c]) || in->std[c] == 0)
                        return cvopt_error_set(-EINVAL, "input spec: mean/std of channel %d is not usable", c);
        r = r ?: buf_u32(b, in->width);
        r = r ?: buf_u32(b, in->height);
        r = r ?: buf_u32(b, (uint32_t) in->color);
        r = r ?: buf_u32(b, (uint32_t) in->resize);
        for (int c = 0; c < 3 && r >= 0; c++)
                r = buf_f32(b, in->mean[c]);
        for (int c = 0; c < 3 && r >= 0; c++)
                r = buf_f32(b, in->std[c]);
        return r;
}

static int build_labels(Writer *w) {
        Buf *b = &w->sections[CVM_SECTION_LABELS];
        int r = buf_u32(b, w->model->n_labels);

        for (uint32_t i = 0; i < w->model->n_labels && r >= 0; i++) {
                if (!w->model->labels || !w->model->labels[i])
                        return cvopt_error_set(-EINVAL, "label %u is missing", i);
                r = put_strref(w, b, w->model->labels[i]);
        }
        return r;
}

static int build_tensors(Writer *w) {
        const CvoptGraph *g = w->model->graph;
        Buf *b = &w->sections[CVM_SECTION_TENSORS];
        int r = buf_u32(b, g->n_tensors) ?: buf_u32(b, 0);

        for (uint32_t i = 0; i < g->n_tensors && r >= 0; i++) {
                const CvoptTensor *t = &g->tensors[i];
                uint8_t e[CVM_TENSOR_ENTRY_SIZE] = { 0 };
                uint32_t name = 0;

                r = add_string(w, t->name, &name);
                if (r < 0)
                        return r;
                cvm_put_u32(e + 0, name);
                e[4] = (uint8_t) t->dtype;
                e[5] = (uint8_t) t->ndim;
                e[6] = (uint8_t) (t->is_constant ? w->encoded[i].storage : CVM_STORAGE_NONE);
                e[7] = (uint8_t) ((t->is_constant ? CVM_TENSOR_FLAG_CONSTANT : 0) |
                                  (t->has_shape ? CVM_TENSOR_FLAG_HAS_SHAPE : 0) |
                                  (t->pack_int4 ? CVM_TENSOR_FLAG_INT4_HINT : 0));
                e[8] = w->encoded[i].nm_n;
                e[9] = w->encoded[i].nm_m;
                cvm_put_u32(e + 12, (uint32_t) (t->quant.count > 0 ? t->quant.axis : -1));
                cvm_put_u32(e + 16, t->quant.count);
                for (uint32_t d = 0; d < t->ndim; d++)
                        cvm_put_u64(e + 24 + 8 * d, (uint64_t) t->dims[d]);
                if (t->is_constant) {
                        cvm_put_u64(e + 88, w->data_offset[i]);
                        cvm_put_u64(e + 96, w->encoded[i].size);
                }
                cvm_put_u64(e + 104, w->quant_offset[i]);
                r = buf_put(b, e, sizeof(e));
        }
        return r;
}

static int build_attr(Writer *w, Buf *b, const CvoptAttr *a) {
        int r;

        if (!a->name || (a->type == CVOPT_ATTR_STRING && !a->s))
                return cvopt_error_set(-EINVAL, "attribute without a name or value");
        r = put_strref(w, b, a->name) ?: buf_u32(b, (uint32_t) a->type);
        if (r < 0)
                return r;
        switch (a->type) {
        case CVOPT_ATTR_INT:
                return buf_u64(b, (uint64_t) a->i);
        case CVOPT_ATTR_FLOAT:
                return buf_f32(b, a->f);
        case CVOPT_ATTR_STRING:
                return put_strref(w, b, a->s);
        case CVOPT_ATTR_INTS:
                r = buf_u32(b, a->count);
                for (uint32_t k = 0; k < a->count && r >= 0; k++)
                        r = buf_u64(b, (uint64_t) a->ints[k]);
                return r;
        case CVOPT_ATTR_FLOATS:
                r = buf_u32(b, a->count);
                for (uint32_t k = 0; k < a->count && r >= 0; k++)
                        r = buf_f32(b, a->floats[k]);
                return r;
        }
        return cvopt_error_set(-EINVAL, "attribute '%s': invalid type %d", a->name, (int) a->type);
}

static int build_nodes(Writer *w) {
        const CvoptGraph *g = w->model->graph;
        Buf *b = &w->sections[CVM_SECTION_NODES];
        int r = buf_u32(b, g->n_nodes);

        for (uint32_t k = 0; k < g->n_nodes && r >= 0; k++) {
                const CvoptNode *n = &g->nodes[k];
                const char *op = cvopt_op_name(n->op);

                if (!op)
                        return cvopt_error_set(-EINVAL, "node %u: invalid op %d", k, (int) n->op);
                if (n->n_inputs > CVM_MAX_NODE_SLOTS || n->n_outputs > CVM_MAX_NODE_SLOTS)
                        return cvopt_error_set(-EINVAL, "node %u: too many inputs or outputs", k);
                if (n->name)
                        r = put_strref(w, b, n->name);
                else
                        r = buf_u32(b, CVM_STRREF_NONE);
                r = r ?: put_strref(w, b, op);
                r = r ?: buf_u32(b, n->n_inputs);
                r = r ?: buf_u32(b, n->n_outputs);
                r = r ?: buf_u32(b, n->n_attrs);
                for (uint32_t s = 0; s < n->n_inputs && r >= 0; s++)
                        r = buf_u32(b, (uint32_t) n->inputs[s]);
                for (uint32_t s = 0; s < n->n_outputs && r >= 0; s++)
                        r = buf_u32(b, (uint32_t) n->outputs[s]);
                for (uint32_t a = 0; a < n->n_attrs && r >= 0; a++) {
                        r = build_attr(w, b, &n->attrs[a]);
                        if (r < 0)
                                return cvopt_error_prefix(r, "node %u '%s'", k, strempty(n->name));
                }
        }
        return r;
}

static int build_graph_io(Writer *w) {
        const CvoptGraph *g = w->model->graph;
        Buf *b = &w->sections[CVM_SECTION_GRAPH_IO];
        int r = buf_u32(b, g->n_inputs) ?: buf_u32(b, g->n_outputs);

        for (uint32_t i = 0; i < g->n_inputs && r >= 0; i++)
                r = buf_u32(b, (uint32_t) g->inputs[i]);
        for (uint32_t i = 0; i < g->n_outputs && r >= 0; i++)
                r = buf_u32(b, (uint32_t) g->outputs[i]);
        return r;
}

static uint64_t section_size(const Writer *w, uint32_t type) {
        return type == CVM_SECTION_DATA ? w->data_size : w->sections[type].size;
}

/* Builds every section and assigns file offsets. */
static int writer_plan(Writer *w, const CvoptModel *m) {
        const char *prov = m->provenance_json;
        uint64_t cursor;
        int r;

        w->model = m;
        if (!m->graph)
                return cvopt_error_set(-EINVAL, "model has no graph");
        r = cvopt_graph_validate(m->graph);
        if (r < 0)
                return cvopt_error_prefix(r, "model graph is not valid");
        /* The empty string sits at offset 0 (docs/model-format.md). */
        r = buf_put(&w->sections[CVM_SECTION_STRINGS], "", 1);
        r = r ?: plan_data(w);
        r = r ?: build_input(w);
        r = r ?: build_labels(w);
        r = r ?: build_tensors(w);
        r = r ?: build_nodes(w);
        r = r ?: build_graph_io(w);
        if (r >= 0 && prov)
                r = buf_put(&w->sections[CVM_SECTION_PROVENANCE], prov, strlen(prov));
        if (r < 0)
                return r;

        cursor = CVM_HEADER_SIZE + (uint64_t) (_CVM_SECTION_MAX - 1) * CVM_SECTION_ENTRY_SIZE;
        for (uint32_t s = 1; s < _CVM_SECTION_MAX; s++) {
                cursor = ALIGN_TO(cursor, CVM_ALIGN);
                w->section_offset[s] = cursor;
                cursor += section_size(w, s);
        }
        w->file_size = cursor;
        return 0;
}

static void writer_fill(const Writer *w, uint8_t *file) {
        const CvoptGraph *g = w->model->graph;
        uint32_t n_sections = _CVM_SECTION_MAX - 1;
        uint8_t *data = file + w->section_offset[CVM_SECTION_DATA];
        size_t table_end = CVM_HEADER_SIZE + (size_t) n_sections * CVM_SECTION_ENTRY_SIZE;

        for (uint32_t s = 1; s < _CVM_SECTION_MAX; s++)
                if (s != CVM_SECTION_DATA && w->sections[s].size)
                        memcpy(file + w->section_offset[s], w->sections[s].data, w->sections[s].size);
        for (uint32_t i = 0; i < g->n_tensors; i++) {
                const CvoptTensor *t = &g->tensors[i];
                uint8_t *q = data + w->quant_offset[i];

                if (t->is_constant && w->encoded[i].size)
                        memcpy(data + w->data_offset[i], w->encoded[i].data, w->encoded[i].size);
                for (uint32_t c = 0; c < t->quant.count; c++) {
                        cvm_put_f32(q + 4 * c, t->quant.scale[c]);
                        cvm_put_u32(q + 4 * ((size_t) t->quant.count + c), (uint32_t) t->quant.zero_point[c]);
                }
        }

        memcpy(file + CVM_HDR_MAGIC, CVM_MAGIC, CVM_MAGIC_SIZE);
        cvm_put_u16(file + CVM_HDR_MAJOR, CVM_VERSION_MAJOR);
        cvm_put_u16(file + CVM_HDR_MINOR, CVM_VERSION_MINOR);
        cvm_put_u32(file + CVM_HDR_HEADER_SIZE, CVM_HEADER_SIZE);
        cvm_put_u64(file + CVM_HDR_FILE_SIZE, w->file_size);
        cvm_put_u32(file + CVM_HDR_N_SECTIONS, n_sections);
        cvm_put_u32(file + CVM_HDR_TABLE_OFFSET, CVM_HEADER_SIZE);
        for (uint32_t s = 1; s < _CVM_SECTION_MAX; s++) {
                uint8_t *e = file + CVM_HEADER_SIZE + (size_t) (s - 1) * CVM_SECTION_ENTRY_SIZE;
                uint64_t size = section_size(w, s);

                cvm_put_u32(e + CVM_SEC_TYPE, s);
                cvm_put_u64(e + CVM_SEC_OFFSET, w->section_offset[s]);
                cvm_put_u64(e + CVM_SEC_SIZE, size);
                cvm_put_u32(e + CVM_SEC_CRC, cvm_crc32(file + w->section_offset[s], size));
        }
        cvm_put_u32(file + CVM_HDR_CRC, cvm_crc32(file, table_end));
}

int cvm_write_buffer(const CvoptModel *m, uint8_t **ret_data, size_t *ret_size) {
        _cleanup_(writer_done) Writer w = {};
        uint8_t *file;
        int r;

        r = writer_plan(&w, m);
        if (r < 0)
                return r;
        if (w.file_size > SIZE_MAX)
                return -E2BIG;
        file = calloc(w.file_size, 1);
        if (!file)
                return -ENOMEM;
        writer_fill(&w, file);
        *ret_data = file;
        *ret_size = w.file_size;
        return 0;
}

int cvopt_model_serialized_size(const CvoptModel *m, uint64_t *ret_size) {
        _cleanup_(writer_done) Writer w = {};
        int r;

        r = writer_plan(&w, m);
        if (r < 0)
                return r;
        *ret_size = w.file_size;
        return 0;
}

static int write_all(int fd, const uint8_t *p, size_t size) {
        while (size > 0) {
                ssize_t n = write(fd, p, size);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                size -= (size_t) n;
        }
        return 0;
}

/* fsyncs the directory holding path, so the rename itself is durable. */
static int fsync_parent(const char *path) {
        _cleanup_free_ char *dir = strdup(path);
        _cleanup_close_ int fd = -EBADF;
        char *slash;

        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (!slash)
                strcpy(dir, ".");
        else if (slash == dir)
                dir[1] = 0;
        else
                *slash = 0;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return fsync(fd) < 0 ? -errno : 0;
}

int cvopt_model_save(CvoptModel *m, const char *path) {
        _cleanup_free_ uint8_t *file = NULL;
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t size;
        int r;

        r = cvm_write_buffer(m, &file, &size);
        if (r < 0)
                return cvopt_error_prefix(r, "%s", path);
        if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return cvopt_error_set(-errno, "%s: cannot create a temporary file: %m", path);
        /* mkostemp() creates 0600; a model is read by the daemon's own user. */
        r = fchmod(fd, 0644) < 0 ? -errno : 0;
        r = r ?: write_all(fd, file, size);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlink(tmp);
                return cvopt_error_set(r, "%s: cannot write: %s", path, strerror(-r));
        }
        r = fsync_parent(path);
        if (r < 0)
                return cvopt_error_set(r, "%s: cannot sync the directory: %s", path, strerror(-r));
        cvm_format_id(file, CVM_HEADER_SIZE + (size_t) (_CVM_SECTION_MAX - 1) * CVM_SECTION_ENTRY_SIZE, m->id);
        return 0;
}

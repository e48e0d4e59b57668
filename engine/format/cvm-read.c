/* SPDX-License-Identifier: MIT */
/* The .cvm reader (docs/model-format.md). The file is hostile: every size,
 * offset, count, index and enum is checked before it is used, every byte is
 * covered by a CRC or must be zero padding, and each failure names the file,
 * the section and the record that is wrong. Dense constant tensors point
 * straight into the mapped file. */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "cvopt/errors.h"
#include "cvopt/model.h"
#include "format/cvm-layout.h"
#include "macro.h"

typedef struct Reader {
        const char *path;
        const uint8_t *file;
        uint64_t size;
        const uint8_t *section[_CVM_SECTION_MAX];
        uint64_t section_size[_CVM_SECTION_MAX];
        uint32_t current; /* section being parsed, for error details; 0 for none */
        /* End of the last data range used: ranges come in tensor order and
         * never overlap, so decoded sizes stay proportional to the file. */
        uint64_t data_used;
        CvoptModel *model;
} Reader;

typedef struct Cursor {
        const uint8_t *p;
        uint64_t left;
} Cursor;

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptModel *, cvopt_model_free);

_printf_(3, 4) static int fail(const Reader *rd, int err, const char *format, ...) {
        char message[384];
        va_list ap;

        va_start(ap, format);
        vsnprintf(message, sizeof(message), format, ap);
        va_end(ap);
        if (rd->current)
                return cvopt_error_set(err, "%s: section '%s': %s", rd->path, cvm_section_name(rd->current),
                                       message);
        return cvopt_error_set(err, "%s: %s", rd->path, message);
}

static Cursor section_cursor(const Reader *rd, uint32_t type) {
        return (Cursor) { .p = rd->section[type], .left = rd->section_size[type] };
}

/* Takes n bytes from the cursor, or returns NULL when fewer are left. */
static const uint8_t *take(Cursor *c, uint64_t n) {
        const uint8_t *p = c->p;

        if (n > c->left)
                return NULL;
        c->p += n;
        c->left -= n;
        return p;
}

static int take_u32(const Reader *rd, Cursor *c, uint32_t *ret, const char *what) {
        const uint8_t *p = take(c, 4);

        if (!p)
                return fail(rd, -CVOPT_E_FORMAT, "truncated: %s", what);
        *ret = cvm_get_u32(p);
        return 0;
}

static int check_fully_read(const Reader *rd, const Cursor *c) {
        if (c->left)
                return fail(rd, -CVOPT_E_FORMAT, "%llu bytes left over after the last record",
                            (unsigned long long) c->left);
        return 0;
}

static int get_string(const Reader *rd, uint32_t ref, const char **ret, const char *what) {
        const uint8_t *strings = rd->section[CVM_SECTION_STRINGS];
        uint64_t size = rd->section_size[CVM_SECTION_STRINGS];

        if (ref >= size || !memchr(strings + ref, 0, size - ref))
                return fail(rd, -CVOPT_E_FORMAT, "%s: string offset %u is outside the string table", what, ref);
        *ret = (const char *) strings + ref;
        return 0;
}

static bool zero_bytes(const uint8_t *p, uint64_t n) {
        for (uint64_t i = 0; i < n; i++)
                if (p[i])
                        return false;
        return true;
}

static int read_header(Reader *rd, uint32_t *ret_n_sections) {
        const uint8_t *h = rd->file;
        uint16_t major, minor;
        uint32_t n_sections;
        uint64_t table_end, file_size;
        uint8_t copy[CVM_HEADER_SIZE];

        if (rd->size < CVM_HEADER_SIZE)
                return fail(rd, -CVOPT_E_FORMAT, "%llu bytes, too short for a .cvm header",
                            (unsigned long long) rd->size);
        if (memcmp(h + CVM_HDR_MAGIC, CVM_MAGIC, CVM_MAGIC_SIZE) != 0)
                return fail(rd, -CVOPT_E_FORMAT, "not a .cvm file (bad magic)");
        major = cvm_get_u16(h + CVM_HDR_MAJOR);
        minor = cvm_get_u16(h + CVM_HDR_MINOR);
        if (major > CVM_VERSION_MAJOR)
                return fail(rd, -CVOPT_E_VERSION, "format version %u.%u is newer than this reader (%d.x)", major,
                            minor, CVM_VERSION_MAJOR);
        if (major < 1)
                return fail(rd, -CVOPT_E_VERSION, "format version %u.%u is not supported", major, minor);
        file_size = cvm_get_u64(h + CVM_HDR_FILE_SIZE);
        if (file_size != rd->size)
                return fail(rd, -CVOPT_E_FORMAT, "file is %llu bytes but its header says %llu (truncated?)",
                            (unsigned long long) rd->size, (unsigned long long) file_size);
        n_sections = cvm_get_u32(h + CVM_HDR_N_SECTIONS);
        if (cvm_get_u32(h + CVM_HDR_HEADER_SIZE) != CVM_HEADER_SIZE ||
            cvm_get_u32(h + CVM_HDR_TABLE_OFFSET) != CVM_HEADER_SIZE || n_sections < 1 ||
            n_sections > CVM_MAX_SECTIONS)
                return fail(rd, -CVOPT_E_FORMAT, "header: bad header size, table offset or section count");
        table_end = CVM_HEADER_SIZE + (uint64_t) n_sections * CVM_SECTION_ENTRY_SIZE;
        if (table_end > rd->size)
                return fail(rd, -CVOPT_E_FORMAT, "section table of %u entries runs past the end of the file",
                            n_sections);
        /* The CRC covers the header (with its own field as zero) and the table. */
        memcpy(copy, h, sizeof(copy));
        cvm_put_u32(copy + CVM_HDR_CRC, 0);
        if (cvm_get_u32(h + CVM_HDR_CRC) !=
            cvm_crc32_update(cvm_crc32(copy, sizeof(copy)), h + CVM_HEADER_SIZE, table_end - CVM_HEADER_SIZE))
                return fail(rd, -CVOPT_E_CRC, "header: CRC mismatch");
        if (!zero_bytes(h + CVM_HDR_CRC + 4, CVM_HEADER_SIZE - CVM_HDR_CRC - 4))
                return fail(rd, -CVOPT_E_FORMAT, "header: reserved bytes are not zero");
        *ret_n_sections = n_sections;
        return 0;
}

static int read_section_table(Reader *rd, uint32_t n_sections) {
        uint64_t table_end = CVM_HEADER_SIZE + (uint64_t) n_sections * CVM_SECTION_ENTRY_SIZE, previous_end;

        previous_end = table_end;
        for (uint32_t i = 0; i < n_sections; i++) {
                const uint8_t *e = rd->file + CVM_HEADER_SIZE + (size_t) i * CVM_SECTION_ENTRY_SIZE;
                uint32_t type = cvm_get_u32(e + CVM_SEC_TYPE);
                uint64_t offset = cvm_get_u64(e + CVM_SEC_OFFSET), size = cvm_get_u64(e + CVM_SEC_SIZE), end;

                if (cvm_get_u32(e + CVM_SEC_FLAGS) || cvm_get_u32(e + CVM_SEC_RESERVED))
                        return fail(rd, -CVOPT_E_FORMAT, "section %u: flags or reserved bytes are not zero", i);
                if (offset % CVM_ALIGN)
                        return fail(rd, -CVOPT_E_FORMAT, "section %u ('%s'): offset %llu is not 64-byte aligned", i,
                                    cvm_section_name(type), (unsigned long long) offset);
                if (offset < previous_end || __builtin_add_overflow(offset, size, &end) || end > rd->size)
                        return fail(rd, -CVOPT_E_FORMAT,
                                    "section %u ('%s'): offset %llu size %llu overlaps another or runs past the end",
                                    i, cvm_section_name(type), (unsigned long long) offset,
                                    (unsigned long long) size);
                if (!zero_bytes(rd->file + previous_end, offset - previous_end))
                        return fail(rd, -CVOPT_E_FORMAT, "padding before section %u is not zero", i);
                if (cvm_crc32(rd->file + offset, size) != cvm_get_u32(e + CVM_SEC_CRC))
                        return fail(rd, -CVOPT_E_CRC, "section '%s': CRC mismatch", cvm_section_name(type));
                if (type > 0 && type < _CVM_SECTION_MAX) {
                        if (rd->section[type])
                                return fail(rd, -CVOPT_E_FORMAT, "section '%s' appears twice",
                                            cvm_section_name(type));
                        rd->section[type] = rd->file + offset;
                        rd->section_size[type] = size;
                }
                /* Unknown types come from a newer minor version: skipped. */
                previous_end = end;
        }
        if (!zero_bytes(rd->file + previous_end, rd->size - previous_end))
                return fail(rd, -CVOPT_E_FORMAT, "bytes after the last section are not zero");
        for (uint32_t type = 1; type < _CVM_SECTION_MAX; type++)
                if (!rd->section[type])
                        return fail(rd, -CVOPT_E_FORMAT, "section '%s' is missing", cvm_section_name(type));
        return 0;
}

static int read_input(Reader *rd) {
        const uint8_t *p = rd->section[CVM_SECTION_INPUT];
        CvoptInputSpec *in = &rd->model->input;
        uint32_t color, resize;

        rd->current = CVM_SECTION_INPUT;
        if (rd->section_size[CVM_SECTION_INPUT] != CVM_INPUT_SIZE)
                return fail(rd, -CVOPT_E_FORMAT, "size is %llu, expected %d",
                            (unsigned long long) rd->section_size[CVM_SECTION_INPUT], CVM_INPUT_SIZE);
        in->width = cvm_get_u32(p);
        in->height = cvm_get_u32(p + 4);
        color = cvm_get_u32(p + 8);
        resize = cvm_get_u32(p + 12);
        if (in->width > CVM_INPUT_MAX_SIDE || in->height > CVM_INPUT_MAX_SIDE)
                return fail(rd, -CVOPT_E_FORMAT, "input size %ux%u is too large", in->width, in->height);
        if (color < CVOPT_COLOR_GRAY || color > CVOPT_COLOR_BGR || resize < CVOPT_RESIZE_STRETCH ||
            resize > CVOPT_RESIZE_LETTERBOX)
                return fail(rd, -CVOPT_E_FORMAT, "colour %u or resize policy %u is unknown", color, resize);
        in->color = (CvoptColor) color;
        in->resize = (CvoptResize) resize;
        for (int c = 0; c < 3; c++) {
                in->mean[c] = cvm_get_f32(p + 16 + 4 * c);
                in->std[c] = cvm_get_f32(p + 28 + 4 * c);
                if (!isfinite(in->mean[c]) || !isfinite(in->std[c]) || in->std[c] == 0)
                        return fail(rd, -CVOPT_E_FORMAT, "channel %d: mean or std is not a usable number", c);
        }
        return 0;
}

static int read_labels(Reader *rd) {
        Cursor c;
        uint32_t count = 0;
        int r;

        rd->current = CVM_SECTION_LABELS;
        c = section_cursor(rd, CVM_SECTION_LABELS);
        r = take_u32(rd, &c, &count, "label count");
        if (r < 0)
                return r;
        if ((uint64_t) count * 4 != c.left)
                return fail(rd, -CVOPT_E_FORMAT, "%u labels do not fit %llu bytes", count,
                            (unsigned long long) c.left);
        rd->model->labels = calloc(MAX(count, 1u), sizeof(char *));
        if (!rd->model->labels)
                return -ENOMEM;
        for (uint32_t i = 0; i < count; i++) {
                const char *s = NULL;
                uint32_t ref = 0;
                char what[32];

                snprintf(what, sizeof(what), "label %u", i);
                r = take_u32(rd, &c, &ref, what);
                r = r ?: get_string(rd, ref, &s, what);
                if (r < 0)
                        return r;
                rd->model->labels[i] = strdup(s);
                if (!rd->model->labels[i])
                        return -ENOMEM;
                rd->model->n_labels = i + 1;
        }
        return 0;
}

static int read_provenance(Reader *rd) {
        const uint8_t *p = rd->section[CVM_SECTION_PROVENANCE];
        uint64_t size = rd->section_size[CVM_SECTION_PROVENANCE];

        rd->current = CVM_SECTION_PROVENANCE;
        if (size == 0)
                return 0;
        if (memchr(p, 0, size))
                return fail(rd, -CVOPT_E_FORMAT, "JSON text contains a NUL byte");
        rd->model->provenance_json = strndup((const char *) p, size);
        return rd->model->provenance_json ? 0 : -ENOMEM;
}

/* Fills the tensor's quantization parameters from the data section. */
static int read_quant(Reader *rd, CvoptTensor *t, uint32_t i, const uint8_t *e) {
        const uint8_t *data = rd->section[CVM_SECTION_DATA], *q;
        int32_t axis = (int32_t) cvm_get_u32(e + 12);
        uint32_t count = cvm_get_u32(e + 16);
        uint64_t offset = cvm_get_u64(e + 104), want;

        if (count == 0) {
                if (axis != -1 || offset != 0)
                        return fail(rd, -CVOPT_E_FORMAT, "tensor %u '%s': quantization axis/offset without scales",
                                    i, t->name);
                return 0;
        }
        want = axis == -1 ? 1 : axis >= 0 && (uint32_t) axis < t->ndim ? (uint64_t) t->dims[axis] : 0;
        if (want != count)
                return fail(rd, -CVOPT_E_FORMAT, "tensor %u '%s': quantization axis %d with %u scales", i, t->name,
                            axis, count);
        if (offset % 4 || offset < rd->data_used || offset > rd->section_size[CVM_SECTION_DATA] ||
            (uint64_t) count * 8 > rd->section_size[CVM_SECTION_DATA] - offset)
                return fail(rd, -CVOPT_E_FORMAT,
                            "tensor %u '%s': quantization parameters overlap other data or lie outside the data section",
                            i, t->name);
        rd->data_used = offset + (uint64_t) count * 8;
        t->quant.scale = calloc(count, sizeof(float));
        t->quant.zero_point = calloc(count, sizeof(int32_t));
        if (!t->quant.scale || !t->quant.zero_point)
                return -ENOMEM;
        t->quant.axis = axis;
        t->quant.count = count;
        q = data + offset;
        for (uint32_t k = 0; k < count; k++) {
                t->quant.scale[k] = cvm_get_f32(q + 4 * k);
                t->quant.zero_point[k] = (int32_t) cvm_get_u32(q + 4 * ((size_t) count + k));
                if (!isfinite(t->quant.scale[k]) || t->quant.scale[k] <= 0)
                        return fail(rd, -CVOPT_E_FORMAT, "tensor %u '%s': scale %u is not a positive number", i,
                                    t->name, k);
        }
        return 0;
}

/* Points the tensor at its constant data, or decodes it into owned memory. */
static int read_data(Reader *rd, CvoptTensor *t, uint32_t i, const uint8_t *e, uint64_t count) {
        uint64_t offset = cvm_get_u64(e + 88), size = cvm_get_u64(e + 96);
        uint64_t data_size = rd->section_size[CVM_SECTION_DATA];
        CvmStorage storage = e[6];
        size_t esize = cvopt_dtype_size(t->dtype);
        int r;

        if (storage == CVM_STORAGE_NONE) {
                if (offset || size)
                        return fail(rd, -CVOPT_E_FORMAT, "tensor %u '%s': data without storage", i, t->name);
                return 0;
        }
        if (offset < rd->data_used || offset > data_size || size > data_size - offset)
                return fail(rd, -CVOPT_E_FORMAT,
                            "tensor %u '%s': data (offset %llu, %llu bytes) overlaps other data or lies outside the data section",
                            i, t->name, (unsigned long long) offset, (unsigned long long) size);
        rd->data_used = offset + size;
        if (storage == CVM_STORAGE_DENSE) {
                if (offset % CVM_ALIGN)
                        return fail(rd, -CVOPT_E_FORMAT, "tensor %u '%s': dense data is not 64-byte aligned", i,
                                    t->name);
                if (size != count * esize)
                        return fail(rd, -CVOPT_E_FORMAT, "tensor %u '%s': dense data is %llu bytes, expected %llu",
                                    i, t->name, (unsigned long long) size, (unsigned long long) (count * esize));
                /* The mapping is private and writable: see docs/model-format.md. */
                t->data = (void *) (rd->section[CVM_SECTION_DATA] + offset);
                t->owns_data = false;
                return 0;
        }
        r = cvm_storage_decode(storage, e[8], e[9], esize, count, t->ndim ? (uint64_t) t->dims[t->ndim - 1] : 0,
                               rd->section[CVM_SECTION_DATA] + offset, size, &t->data);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return cvopt_error_prefix(r, "%s: section 'tensors': tensor %u '%s': %s storage", rd->path, i,
                                          t->name, cvm_storage_name(storage));
        t->owns_data = true;
        return 0;
}

static int read_tensor(Reader *rd, uint32_t i, const uint8_t *e) {
        CvoptGraph *g = rd->model->graph;
        const char *name = NULL;
        uint8_t dtype = e[4], ndim = e[5], storage = e[6], flags = e[7];
        bool constant = flags & CVM_TENSOR_FLAG_CONSTANT;
        int64_t dims[CVOPT_MAX_DIMS] = { 0 };
        uint64_t count = 1, bytes;
        CvoptTensor *t;
        int32_t index;
        char what[32];
        int r;

        snprintf(what, sizeof(what), "tensor %u name", i);
        r = get_string(rd, cvm_get_u32(e), &name, what);
        if (r < 0)
                return r;
        if (dtype == CVOPT_DTYPE_UNDEFINED || dtype == CVOPT_DTYPE_INT4 || dtype >= _CVOPT_DTYPE_MAX)
                return fail(rd, -CVOPT_E_FORMAT, "tensor %u '%s': invalid dtype %u", i, name, dtype);
        if (ndim > CVOPT_MAX_DIMS || storage >= _CVM_STORAGE_MAX || (flags & ~CVM_TENSOR_FLAGS_KNOWN))
                return fail(rd, -CVOPT_E_FORMAT, "tensor %u '%s': invalid ndim %u, storage %u or flags 0x%x", i,
                            name, ndim, storage, flags);
        if (constant != (storage != CVM_STORAGE_NONE))
                return fail(rd, -CVOPT_E_FORMAT, "tensor %u '%s': constant flag and storage '%s' disagree", i,
                            name, cvm_storage_name(storage));
        if (((flags & CVM_TENSOR_FLAG_INT4_HINT) || storage == CVM_STORAGE_INT4) && dtype != CVOPT_DTYPE_INT8)
                return fail(rd, -CVOPT_E_FORMAT, "tensor %u '%s': int4 storage on a %s tensor", i, name,
                            cvopt_dtype_name(dtype));
        if (cvm_get_u16(e + 10) || cvm_get_u32(e + 20) ||
            (storage != CVM_STORAGE_NM && (e[8] || e[9])))
                return fail(rd, -CVOPT_E_FORMAT, "tensor %u '%s': reserved fields are not zero", i, name);
        for (uint32_t d = 0; d < CVOPT_MAX_DIMS; d++) {
                int64_t v = (int64_t) cvm_get_u64(e + 24 + 8 * d);

                if (d >= ndim) {
                        if (v != 0)
                                return fail(rd, -CVOPT_E_FORMAT, "tensor %u '%s': dims past ndim are not zero", i,
                                            name);
                        continue;
                }
                if (v < (constant ? 0 : -1))
                        return fail(rd, -CVOPT_E_FORMAT, "tensor %u '%s': dim %u is %lld", i, name, d,
                                    (long long) v);
                dims[d] = v;
                if (__builtin_mul_overflow(count, (uint64_t) (v < 0 ? 1 : v), &count) || count > INT64_MAX)
                        return fail(rd, -CVOPT_E_FORMAT, "tensor %u '%s': dims overflow", i, name);
        }
        if (__builtin_mul_overflow(count, (uint64_t) cvopt_dtype_size(dtype), &bytes) || bytes > INT64_MAX ||
            bytes > SIZE_MAX)
                return fail(rd, -CVOPT_E_FORMAT, "tensor %u '%s': byte size overflows", i, name);

        r = cvopt_graph_add_tensor(g, name, dtype, ndim, dims, &index);
        if (r == -EEXIST)
                return fail(rd, -CVOPT_E_FORMAT, "tensor %u '%s': name used twice", i, name);
        if (r < 0)
                return r;
        t = &g->tensors[index];
        t->is_constant = constant;
        t->has_shape = flags & CVM_TENSOR_FLAG_HAS_SHAPE;
        t->pack_int4 = flags & CVM_TENSOR_FLAG_INT4_HINT;
        /* The writer puts a tensor's data before its quantization arrays. */
        r = read_data(rd, t, i, e, count);
        if (r < 0)
                return r;
        /* A sparse storage may carry the hint: its values must still fit
         * int4, or saving the model again could not honour it. */
        if (t->pack_int4 && t->data)
                for (uint64_t k = 0; k < count; k++) {
                        int8_t v = ((const int8_t *) t->data)[k];

                        if (v < -8 || v > 7)
                                return fail(rd, -CVOPT_E_FORMAT, "tensor %u '%s': int4 hint but value %d", i,
                                            name, v);
                }
        return read_quant(rd, t, i, e);
}

static int read_tensors(Reader *rd) {
        Cursor c;
        uint32_t count = 0, reserved = 0;
        int r;

        rd->current = CVM_SECTION_TENSORS;
        c = section_cursor(rd, CVM_SECTION_TENSORS);
        r = take_u32(rd, &c, &count, "tensor count");
        r = r ?: take_u32(rd, &c, &reserved, "tensor count");
        if (r < 0)
                return r;
        if (reserved || (uint64_t) count * CVM_TENSOR_ENTRY_SIZE != c.left)
                return fail(rd, -CVOPT_E_FORMAT, "%u tensors do not fit %llu bytes", count,
                            (unsigned long long) c.left);
        if (count > INT32_MAX)
                return fail(rd, -CVOPT_E_FORMAT, "%u tensors are too many", count);
        for (uint32_t i = 0; i < count; i++) {
                const uint8_t *entry = take(&c, CVM_TENSOR_ENTRY_SIZE);

                if (!entry)
                        return fail(rd, -CVOPT_E_FORMAT, "tensor %u: truncated", i);
                r = read_tensor(rd, i, entry);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int read_index_list(Reader *rd, Cursor *c, uint32_t n, bool allow_absent, int32_t *ret, const char *what) {
        uint32_t n_tensors = rd->model->graph->n_tensors;

        for (uint32_t s = 0; s < n; s++) {
                uint32_t v = 0;
                int r = take_u32(rd, c, &v, what);

                if (r < 0)
                        return r;
                ret[s] = (int32_t) v;
                if (ret[s] == -1 && allow_absent)
                        continue;
                if (ret[s] < 0 || (uint32_t) ret[s] >= n_tensors)
                        return fail(rd, -CVOPT_E_FORMAT, "%s %u: tensor index %d out of range (%u tensors)", what, s,
                                    ret[s], n_tensors);
        }
        return 0;
}

static int read_attr(Reader *rd, Cursor *c, CvoptNode *n) {
        uint32_t name_ref = 0, type = 0, count = 0, ref = 0;
        const uint8_t *p;
        const char *name = NULL, *s = NULL;
        int r;

        r = take_u32(rd, c, &name_ref, "attribute name");
        r = r ?: get_string(rd, name_ref, &name, "attribute name");
        r = r ?: take_u32(rd, c, &type, "attribute type");
        if (r < 0)
                return r;
        if (cvopt_node_attr(n, name))
                return fail(rd, -CVOPT_E_FORMAT, "attribute '%s' appears twice", name);
        if (type == CVOPT_ATTR_INTS || type == CVOPT_ATTR_FLOATS) {
                r = take_u32(rd, c, &count, "attribute value count");
                if (r < 0)
                        return r;
        }
        switch (type) {
        case CVOPT_ATTR_INT:
                if (!(p = take(c, 8)))
                        break;
                return cvopt_node_set_int(n, name, (int64_t) cvm_get_u64(p));
        case CVOPT_ATTR_FLOAT:
                if (!(p = take(c, 4)))
                        break;
                return cvopt_node_set_float(n, name, cvm_get_f32(p));
        case CVOPT_ATTR_STRING:
                r = take_u32(rd, c, &ref, "attribute value");
                r = r ?: get_string(rd, ref, &s, "attribute value");
                return r ?: cvopt_node_set_string(n, name, s);
        case CVOPT_ATTR_INTS: {
                _cleanup_free_ int64_t *values = NULL;

                if (!(p = take(c, (uint64_t) count * 8)))
                        break;
                values = calloc(MAX(count, 1u), sizeof(int64_t));
                if (!values)
                        return -ENOMEM;
                for (uint32_t k = 0; k < count; k++)
                        values[k] = (int64_t) cvm_get_u64(p + 8 * k);
                return cvopt_node_set_ints(n, name, count, values);
        }
        case CVOPT_ATTR_FLOATS: {
                _cleanup_free_ float *values = NULL;

                if (!(p = take(c, (uint64_t) count * 4)))
                        break;
                values = calloc(MAX(count, 1u), sizeof(float));
                if (!values)
                        return -ENOMEM;
                for (uint32_t k = 0; k < count; k++)
                        values[k] = cvm_get_f32(p + 4 * k);
                return cvopt_node_set_floats(n, name, count, values);
        }
        default:
                return fail(rd, -CVOPT_E_FORMAT, "attribute '%s': unknown type %u", name, type);
        }
        return fail(rd, -CVOPT_E_FORMAT, "attribute '%s': truncated value", name);
}

static int read_node(Reader *rd, Cursor *c, uint32_t k) {
        CvoptGraph *g = rd->model->graph;
        _cleanup_free_ int32_t *inputs = NULL, *outputs = NULL;
        uint32_t name_ref = 0, op_ref = 0, n_inputs = 0, n_outputs = 0, n_attrs = 0;
        const char *name = "", *op_name = NULL;
        int32_t index;
        int op, r;

        r = take_u32(rd, c, &name_ref, "node name");
        if (r >= 0 && name_ref != CVM_STRREF_NONE)
                r = get_string(rd, name_ref, &name, "node name");
        r = r ?: take_u32(rd, c, &op_ref, "node operator");
        r = r ?: get_string(rd, op_ref, &op_name, "node operator");
        r = r ?: take_u32(rd, c, &n_inputs, "node input count");
        r = r ?: take_u32(rd, c, &n_outputs, "node output count");
        r = r ?: take_u32(rd, c, &n_attrs, "node attribute count");
        if (r < 0)
                return r;
        op = cvopt_op_from_name(op_name);
        if (op < 0)
                return fail(rd, -CVOPT_E_FORMAT, "node %u '%s': unknown operator '%s'", k, name, op_name);
        if (n_inputs > CVM_MAX_NODE_SLOTS || n_outputs > CVM_MAX_NODE_SLOTS)
                return fail(rd, -CVOPT_E_FORMAT, "node %u '%s': %u inputs, %u outputs (max %d)", k, name, n_inputs,
                            n_outputs, CVM_MAX_NODE_SLOTS);
        inputs = calloc(MAX(n_inputs, 1u), sizeof(int32_t));
        outputs = calloc(MAX(n_outputs, 1u), sizeof(int32_t));
        if (!inputs || !outputs)
                return -ENOMEM;
        r = read_index_list(rd, c, n_inputs, true, inputs, "node input");
        r = r ?: read_index_list(rd, c, n_outputs, false, outputs, "node output");
        if (r < 0)
                return cvopt_error_prefix(r, "node %u '%s'", k, name);
        r = cvopt_graph_add_node(g, name, (CvoptOp) op, n_inputs, inputs, n_outputs, outputs, &index);
        if (r < 0)
                return r;
        for (uint32_t a = 0; a < n_attrs; a++) {
                /* Each attribute takes at least 12 bytes: a hostile count
                 * ends at the section's end, not in a long loop. */
                if (c->left < 12)
                        return fail(rd, -CVOPT_E_FORMAT, "node %u '%s': %u attributes do not fit", k, name, n_attrs);
                r = read_attr(rd, c, &g->nodes[index]);
                if (r < 0)
                        return r == -ENOMEM ? r : cvopt_error_prefix(r, "node %u '%s'", k, name);
        }
        return 0;
}

static int read_nodes(Reader *rd) {
        Cursor c;
        uint32_t count = 0;
        int r;

        rd->current = CVM_SECTION_NODES;
        c = section_cursor(rd, CVM_SECTION_NODES);
        r = take_u32(rd, &c, &count, "node count");
        if (r < 0)
                return r;
        /* A node record is at least 20 bytes. */
        if ((uint64_t) count * 20 > c.left)
                return fail(rd, -CVOPT_E_FORMAT, "%u nodes do not fit %llu bytes", count, (unsigned long long) c.left);
        for (uint32_t k = 0; k < count; k++) {
                r = read_node(rd, &c, k);
                if (r < 0)
                        return r;
        }
        return check_fully_read(rd, &c);
}

static int read_graph_io(Reader *rd) {
        CvoptGraph *g = rd->model->graph;
        _cleanup_free_ int32_t *inputs = NULL, *outputs = NULL;
        uint32_t n_inputs = 0, n_outputs = 0;
        Cursor c;
        int r;

        rd->current = CVM_SECTION_GRAPH_IO;
        c = section_cursor(rd, CVM_SECTION_GRAPH_IO);
        r = take_u32(rd, &c, &n_inputs, "input count");
        r = r ?: take_u32(rd, &c, &n_outputs, "output count");
        if (r < 0)
                return r;
        if (((uint64_t) n_inputs + n_outputs) * 4 != c.left)
                return fail(rd, -CVOPT_E_FORMAT, "%u inputs and %u outputs do not fit %llu bytes", n_inputs,
                            n_outputs, (unsigned long long) c.left);
        inputs = calloc(MAX(n_inputs, 1u), sizeof(int32_t));
        outputs = calloc(MAX(n_outputs, 1u), sizeof(int32_t));
        if (!inputs || !outputs)
                return -ENOMEM;
        r = read_index_list(rd, &c, n_inputs, false, inputs, "graph input");
        r = r ?: read_index_list(rd, &c, n_outputs, false, outputs, "graph output");
        r = r ?: cvopt_graph_set_inputs(g, n_inputs, inputs);
        return r ?: cvopt_graph_set_outputs(g, n_outputs, outputs);
}

/* Parses and verifies a whole file held in memory at file (size bytes).
 * On success the caller hands the memory to the model's graph. */
static int load_model(const char *path, const uint8_t *file, uint64_t size, CvoptModel **ret_model) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
        Reader rd = { .path = path, .file = file, .size = size };
        uint32_t n_sections = 0;
        int r;

        r = read_header(&rd, &n_sections);
        r = r ?: read_section_table(&rd, n_sections);
        if (r < 0)
                return r;
        r = cvopt_model_new(&m);
        if (r < 0)
                return r;
        rd.model = m;
        r = read_input(&rd);
        r = r ?: read_labels(&rd);
        r = r ?: read_provenance(&rd);
        r = r ?: read_tensors(&rd);
        r = r ?: read_nodes(&rd);
        r = r ?: read_graph_io(&rd);
        if (r == -ENOMEM)
                return cvopt_error_set(r, "%s: out of memory", path);
        if (r < 0)
                return r;
        r = cvopt_graph_validate(m->graph);
        if (r < 0)
                return cvopt_error_prefix(-CVOPT_E_FORMAT, "%s: graph", path);
        cvm_format_id(file, CVM_HEADER_SIZE + (size_t) n_sections * CVM_SECTION_ENTRY_SIZE, m->id);
        *ret_model = TAKE_PTR(m);
        return 0;
}

static void release_mapping(void *p, size_t size) {
        (void) munmap(p, size);
}

static void release_buffer(void *p, size_t size) {
        (void) size;
        free(p);
}

int cvopt_model_load(const char *path, CvoptModel **ret_model) {
        _cleanup_close_ int fd = -EBADF;
        CvoptModel *m;
        struct stat st;
        void *map;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return cvopt_error_set(-errno, "%s: cannot open: %m", path);
        if (fstat(fd, &st) < 0)
                return cvopt_error_set(-errno, "%s: cannot stat: %m", path);
        if (!S_ISREG(st.st_mode))
                return cvopt_error_set(-EINVAL, "%s: not a regular file", path);
        if ((uint64_t) st.st_size < CVM_HEADER_SIZE || (uint64_t) st.st_size > SIZE_MAX)
                return cvopt_error_set(-CVOPT_E_FORMAT, "%s: %lld bytes, too short for a .cvm header", path,
                                       (long long) st.st_size);
        /* Private and writable: a pass that edits a mapped constant in place
         * gets a copy-on-write page, never a fault and never a changed file.
         * cvopt replaces model files by rename, so a mapped file is not
         * truncated under us. */
        map = mmap(NULL, (size_t) st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED)
                return cvopt_error_set(-errno, "%s: cannot map: %m", path);
        r = load_model(path, map, (uint64_t) st.st_size, &m);
        if (r < 0) {
                release_mapping(map, (size_t) st.st_size);
                return r;
        }
        m->graph->backing = map;
        m->graph->backing_size = (size_t) st.st_size;
        m->graph->release_backing = release_mapping;
        *ret_model = m;
        return 0;
}

int cvopt_model_load_buffer(const void *data, size_t size, CvoptModel **ret_model) {
        CvoptModel *m;
        void *copy = NULL;
        int r;

        /* Aligned like a mapping, so dense constants keep their alignment. */
        if (posix_memalign(&copy, CVM_ALIGN, MAX(size, 1u)) != 0)
                return -ENOMEM;
        if (size)
                memcpy(copy, data, size);
        r = load_model("<buffer>", copy, size, &m);
        if (r < 0) {
                free(copy);
                return r;
        }
        m->graph->backing = copy;
        m->graph->backing_size = size;
        m->graph->release_backing = release_buffer;
        *ret_model = m;
        return 0;
}

/* SPDX-License-Identifier: MIT */
#pragma once

/* On-disk layout of a .cvm file: constants, field offsets and the little
 * helpers that read and write little-endian values. The spec is
 * docs/model-format.md; the numbers here must match it. Records are encoded
 * field by field (never by casting a struct onto the file), so the layout
 * does not depend on the compiler's padding or the host's byte order. */

#include <stdint.h>
#include <string.h>

#include "cvopt/model.h"
#include "cvopt/tensor.h"

#define CVM_MAGIC "CVOPTMDL"
#define CVM_MAGIC_SIZE 8
#define CVM_VERSION_MAJOR 1
#define CVM_VERSION_MINOR 0

/* 64 bytes: a cache line and the widest SIMD load (AVX-512), so kernels can
 * read mapped weights with aligned loads. */
#define CVM_ALIGN 64

#define CVM_HEADER_SIZE 64
#define CVM_SECTION_ENTRY_SIZE 32
/* Version 1.0 writes 8 sections; the limit leaves room for minor versions
 * while keeping a hostile n_sections from asking for a huge table. */
#define CVM_MAX_SECTIONS 64

/* Header field offsets. */
#define CVM_HDR_MAGIC 0
#define CVM_HDR_MAJOR 8
#define CVM_HDR_MINOR 10
#define CVM_HDR_HEADER_SIZE 12
#define CVM_HDR_FILE_SIZE 16
#define CVM_HDR_N_SECTIONS 24
#define CVM_HDR_TABLE_OFFSET 28
#define CVM_HDR_CRC 32

/* Section table entry field offsets. */
#define CVM_SEC_TYPE 0
#define CVM_SEC_FLAGS 4
#define CVM_SEC_OFFSET 8
#define CVM_SEC_SIZE 16
#define CVM_SEC_CRC 24
#define CVM_SEC_RESERVED 28

typedef enum CvmSection {
        CVM_SECTION_STRINGS = 1,
        CVM_SECTION_INPUT = 2,
        CVM_SECTION_LABELS = 3,
        CVM_SECTION_PROVENANCE = 4,
        CVM_SECTION_TENSORS = 5,
        CVM_SECTION_NODES = 6,
        CVM_SECTION_GRAPH_IO = 7,
        CVM_SECTION_DATA = 8,
        _CVM_SECTION_MAX,
} CvmSection;

const char *cvm_section_name(uint32_t type);

#define CVM_INPUT_SIZE 40
#define CVM_INPUT_MAX_SIDE 65536

#define CVM_TENSOR_ENTRY_SIZE 112
#define CVM_TENSOR_FLAG_CONSTANT 0x1u
#define CVM_TENSOR_FLAG_HAS_SHAPE 0x2u
#define CVM_TENSOR_FLAG_INT4_HINT 0x4u
#define CVM_TENSOR_FLAGS_KNOWN 0x7u

typedef enum CvmStorage {
        CVM_STORAGE_NONE = 0,
        CVM_STORAGE_DENSE = 1,
        CVM_STORAGE_INT4 = 2,
        CVM_STORAGE_BITMASK = 3,
        CVM_STORAGE_NM = 4,
        _CVM_STORAGE_MAX,
} CvmStorage;

const char *cvm_storage_name(CvmStorage s);

/* Same limit as cvopt_graph_add_node(). */
#define CVM_MAX_NODE_SLOTS 1024
#define CVM_STRREF_NONE UINT32_MAX

/* Little-endian accessors on unaligned bytes. */
static inline uint16_t cvm_get_u16(const uint8_t *p) {
        return (uint16_t) (p[0] | (p[1] << 8));
}

static inline uint32_t cvm_get_u32(const uint8_t *p) {
        return (uint32_t) p[0] | ((uint32_t) p[1] << 8) | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

static inline uint64_t cvm_get_u64(const uint8_t *p) {
        return (uint64_t) cvm_get_u32(p) | ((uint64_t) cvm_get_u32(p + 4) << 32);
}

static inline float cvm_get_f32(const uint8_t *p) {
        uint32_t u = cvm_get_u32(p);
        float f;

        memcpy(&f, &u, sizeof(f));
        return f;
}

static inline void cvm_put_u16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
}

static inline void cvm_put_u32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

static inline void cvm_put_u64(uint8_t *p, uint64_t v) {
        cvm_put_u32(p, (uint32_t) v);
        cvm_put_u32(p + 4, (uint32_t) (v >> 32));
}

static inline void cvm_put_f32(uint8_t *p, float f) {
        uint32_t u;

        memcpy(&u, &f, sizeof(u));
        cvm_put_u32(p, u);
}

/* zlib's CRC32, in pieces for sizes over 4 GiB (zlib takes a uInt). */
uint32_t cvm_crc32_update(uint32_t crc, const uint8_t *data, uint64_t size);
uint32_t cvm_crc32(const uint8_t *data, uint64_t size);

/* FNV-1a 64 over the header and section table: the model id. */
uint64_t cvm_hash_fnv1a64(const void *data, size_t size);
void cvm_format_id(const uint8_t *file, size_t table_end, char ret_id[17]);

/* Storage codecs (cvm-storage.c). esize is the dtype's size in bytes.
 *
 * An encoding chosen by the writer: data points either at the tensor's own
 * dense bytes (owned == NULL) or at owned, encoded bytes. */
typedef struct CvmEncoded {
        CvmStorage storage;
        uint8_t nm_n, nm_m;
        const uint8_t *data;
        uint8_t *owned;
        uint64_t size;
} CvmEncoded;

/* Picks the smallest storage for a constant tensor and encodes it. Fails
 * with -EINVAL (detail set) when the int4 hint is set on values out of range. */
int cvm_storage_encode(const CvoptTensor *t, CvmEncoded *ret);
void cvm_encoded_done(CvmEncoded *e);

/* Checks that size is exactly what storage implies for count elements and
 * decodes into a new dense buffer of count * esize bytes (the caller frees).
 * inner is the innermost dimension (nm). -CVOPT_E_FORMAT with a detail
 * naming what is wrong. DENSE is not decoded here (the reader maps it). */
int cvm_storage_decode(CvmStorage storage, uint8_t nm_n, uint8_t nm_m, size_t esize, uint64_t count,
                       uint64_t inner, const uint8_t *src, uint64_t size, void **ret_dense);

/* The whole file in memory (cvm-write.c); cvopt_model_save() writes it out.
 * Tests and the fuzz corpus generator use it directly. */
int cvm_write_buffer(const CvoptModel *m, uint8_t **ret_data, size_t *ret_size);

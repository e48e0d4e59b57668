/* SPDX-License-Identifier: MIT */
/* Storage kinds of constant tensor data in a .cvm file: dense, int4,
 * bitmask-sparse and N:M-sparse (docs/model-format.md, "Storage kinds").
 * Every kind decodes to exactly the dense bytes it was made from. A value is
 * "zero" when all its bytes are zero, so -0.0f survives the round trip. */
#include <stdio.h>

#include "cvopt/errors.h"
#include "format/cvm-layout.h"
#include "macro.h"

/* Sparse storage is not worth considering below this many elements: the
 * saving is a few bytes at most, and dense tensors stay mappable. */
#define CVM_SPARSE_MIN_ELEMENTS 64

static const uint8_t nm_group_sizes[] = { 2, 4, 8, 16 };

const char *cvm_storage_name(CvmStorage s) {
        static const char *const names[_CVM_STORAGE_MAX] = {
                [CVM_STORAGE_NONE] = "none",       [CVM_STORAGE_DENSE] = "dense", [CVM_STORAGE_INT4] = "int4",
                [CVM_STORAGE_BITMASK] = "bitmask", [CVM_STORAGE_NM] = "nm",
        };
        if ((unsigned) s >= _CVM_STORAGE_MAX)
                return "invalid";
        return names[s];
}

/* Element sizes are 1, 4 or 8 bytes; fixed-size memcpy compiles to one load
 * or store, which keeps encoding and decoding of large tensors fast. */
static bool value_is_zero(const uint8_t *p, size_t esize) {
        uint32_t u4;
        uint64_t u8;

        switch (esize) {
        case 1:
                return p[0] == 0;
        case 4:
                memcpy(&u4, p, 4);
                return u4 == 0;
        case 8:
                memcpy(&u8, p, 8);
                return u8 == 0;
        }
        for (size_t b = 0; b < esize; b++)
                if (p[b])
                        return false;
        return true;
}

static void copy_value(uint8_t *dst, const uint8_t *src, size_t esize) {
        switch (esize) {
        case 1:
                dst[0] = src[0];
                return;
        case 4:
                memcpy(dst, src, 4);
                return;
        case 8:
                memcpy(dst, src, 8);
                return;
        }
        memcpy(dst, src, esize);
}

static unsigned bits_for_group(uint8_t m) {
        return (unsigned) __builtin_ctz(m);
}

static uint64_t nm_size(uint64_t count, size_t esize, uint8_t n, uint8_t m) {
        uint64_t picks = count / m * n;

        return picks * esize + DIV_ROUND_UP(picks * bits_for_group(m), 8);
}

void cvm_encoded_done(CvmEncoded *e) {
        free(e->owned);
        memset(e, 0, sizeof(*e));
}

static int encode_int4(const int8_t *src, uint64_t count, uint8_t *dst) {
        for (uint64_t k = 0; k < count; k++) {
                if (src[k] < -8 || src[k] > 7)
                        return -EINVAL;
                dst[k / 2] |= (uint8_t) ((src[k] & 0xF) << (4 * (k & 1)));
        }
        return 0;
}

static void encode_bitmask(const uint8_t *src, uint64_t count, size_t esize, uint8_t *dst) {
        uint8_t *values = dst + DIV_ROUND_UP(count, 8);

        for (uint64_t k = 0; k < count; k++) {
                if (value_is_zero(src + k * esize, esize))
                        continue;
                dst[k / 8] |= (uint8_t) (1u << (k % 8));
                copy_value(values, src + k * esize, esize);
                values += esize;
        }
}

static void put_bits(uint8_t *stream, uint64_t *bit_pos, unsigned value, unsigned bits) {
        for (unsigned b = 0; b < bits; b++, (*bit_pos)++)
                if (value & (1u << b))
                        stream[*bit_pos / 8] |= (uint8_t) (1u << (*bit_pos % 8));
}

static unsigned get_bits(const uint8_t *stream, uint64_t *bit_pos, unsigned bits) {
        unsigned value = 0;

        for (unsigned b = 0; b < bits; b++, (*bit_pos)++)
                if (stream[*bit_pos / 8] & (1u << (*bit_pos % 8)))
                        value |= 1u << b;
        return value;
}

/* Each group keeps its non-zeros, padded with zero values at the lowest
 * unused indices, so every group has exactly n strictly increasing indices. */
static void encode_nm(const uint8_t *src, uint64_t count, size_t esize, uint8_t n, uint8_t m, uint8_t *dst) {
        uint64_t groups = count / m, bit_pos = 0;
        uint8_t *values = dst, *indices = dst + groups * n * esize;
        unsigned bits = bits_for_group(m);

        for (uint64_t g = 0; g < groups; g++) {
                const uint8_t *group = src + g * m * esize;
                bool keep[16] = { false };
                unsigned kept = 0;

                for (unsigned i = 0; i < m; i++)
                        if (!value_is_zero(group + i * esize, esize)) {
                                keep[i] = true;
                                kept++;
                        }
                for (unsigned i = 0; i < m && kept < n; i++)
                        if (!keep[i]) {
                                keep[i] = true;
                                kept++;
                        }
                for (unsigned i = 0; i < m; i++) {
                        if (!keep[i])
                                continue;
                        copy_value(values, group + i * esize, esize);
                        values += esize;
                        put_bits(indices, &bit_pos, i, bits);
                }
        }
}

/* Smallest N such that every group of m along the innermost dimension has
 * at most N non-zeros (at least 1), or 0 when m does not divide it. */
static uint8_t nm_smallest_n(const CvoptTensor *t, uint64_t count, size_t esize, uint8_t m) {
        const uint8_t *src = t->data;
        unsigned most = 1;

        if (t->ndim == 0 || t->dims[t->ndim - 1] <= 0 || t->dims[t->ndim - 1] % m != 0)
                return 0;
        for (uint64_t g = 0; g < count / m; g++) {
                unsigned nonzero = 0;

                for (unsigned i = 0; i < m; i++)
                        nonzero += !value_is_zero(src + (g * m + i) * esize, esize);
                most = MAX(most, nonzero);
                if (most >= m)
                        return 0;
        }
        return (uint8_t) most;
}

int cvm_storage_encode(const CvoptTensor *t, CvmEncoded *ret) {
        size_t esize = cvopt_dtype_size(t->dtype), bytes = cvopt_tensor_bytes(t);
        int64_t count = cvopt_tensor_count(t);
        CvmEncoded best = { .storage = CVM_STORAGE_DENSE, .data = t->data, .size = bytes };
        uint64_t nonzero = 0, bitmask_size, nm_best = UINT64_MAX;
        uint8_t nm_n = 0, nm_m = 0;

        if (count < 0 || esize == 0 || (bytes == 0 && count > 0))
                return cvopt_error_set(-EINVAL, "tensor '%s': invalid dtype or shape", t->name);
        if (count > 0 && !t->data)
                return cvopt_error_set(-EINVAL, "constant '%s' has no data", t->name);
        if (t->pack_int4) {
                if (t->dtype != CVOPT_DTYPE_INT8)
                        return cvopt_error_set(-EINVAL, "tensor '%s': int4 packing needs int8 values", t->name);
                best.storage = CVM_STORAGE_INT4;
                best.size = DIV_ROUND_UP((uint64_t) count, 2);
        }

        if (count >= CVM_SPARSE_MIN_ELEMENTS) {
                for (int64_t k = 0; k < count; k++)
                        nonzero += !value_is_zero((const uint8_t *) t->data + k * esize, esize);
                bitmask_size = DIV_ROUND_UP((uint64_t) count, 8) + nonzero * esize;
                for (size_t i = 0; i < ELEMENTSOF(nm_group_sizes); i++) {
                        uint8_t m = nm_group_sizes[i], n = nm_smallest_n(t, (uint64_t) count, esize, m);
                        uint64_t size;

                        if (n == 0)
                                continue;
                        size = nm_size((uint64_t) count, esize, n, m);
                        if (size < nm_best) {
                                nm_best = size;
                                nm_n = n;
                                nm_m = m;
                        }
                }
                /* On equal size: dense/int4 (mappable, no decoding), then nm
                 * (it records the structure), then bitmask. */
                if (nm_best < best.size && nm_best <= bitmask_size)
                        best = (CvmEncoded) { .storage = CVM_STORAGE_NM, .nm_n = nm_n, .nm_m = nm_m, .size = nm_best };
                else if (bitmask_size < best.size)
                        best = (CvmEncoded) { .storage = CVM_STORAGE_BITMASK, .size = bitmask_size };
        }

        if (best.storage != CVM_STORAGE_DENSE) {
                best.owned = calloc(MAX(best.size, 1u), 1);
                if (!best.owned)
                        return -ENOMEM;
                best.data = best.owned;
        }
        switch (best.storage) {
        case CVM_STORAGE_INT4:
                if (encode_int4(t->data, (uint64_t) count, best.owned) < 0) {
                        cvm_encoded_done(&best);
                        return cvopt_error_set(-EINVAL, "tensor '%s': int4 packing needs values in [-8, 7]",
                                               t->name);
                }
                break;
        case CVM_STORAGE_BITMASK:
                encode_bitmask(t->data, (uint64_t) count, esize, best.owned);
                break;
        case CVM_STORAGE_NM:
                encode_nm(t->data, (uint64_t) count, esize, best.nm_n, best.nm_m, best.owned);
                break;
        default:
                break;
        }
        *ret = best;
        return 0;
}

static int decode_int4(uint64_t count, const uint8_t *src, uint64_t size, int8_t *dst) {
        if (size != DIV_ROUND_UP(count, 2))
                return cvopt_error_set(-CVOPT_E_FORMAT, "int4 data is %llu bytes, expected %llu",
                                       (unsigned long long) size, (unsigned long long) DIV_ROUND_UP(count, 2));
        if (count % 2 && (src[size - 1] & 0xF0))
                return cvopt_error_set(-CVOPT_E_FORMAT, "int4 data: unused nibble is not zero");
        for (uint64_t k = 0; k < count; k++) {
                int v = (src[k / 2] >> (4 * (k & 1))) & 0xF;

                dst[k] = (int8_t) (v >= 8 ? v - 16 : v);
        }
        return 0;
}

static int decode_bitmask(uint64_t count, size_t esize, const uint8_t *src, uint64_t size, uint8_t *dst) {
        uint64_t map_size = DIV_ROUND_UP(count, 8), nonzero = 0;
        const uint8_t *values;

        if (size < map_size)
                return cvopt_error_set(-CVOPT_E_FORMAT, "bitmask data is %llu bytes, the bitmap alone needs %llu",
                                       (unsigned long long) size, (unsigned long long) map_size);
        if (count % 8 && (src[map_size - 1] >> (count % 8)))
                return cvopt_error_set(-CVOPT_E_FORMAT, "bitmask: bits past the last element are set");
        for (uint64_t b = 0; b < map_size; b++)
                nonzero += (uint64_t) __builtin_popcount(src[b]);
        /* nonzero <= count, and count * esize was checked by the caller. */
        if (size != map_size + nonzero * esize)
                return cvopt_error_set(-CVOPT_E_FORMAT, "bitmask data is %llu bytes, expected %llu",
                                       (unsigned long long) size, (unsigned long long) (map_size + nonzero * esize));
        values = src + map_size;
        for (uint64_t k = 0; k < count; k++) {
                if (!(src[k / 8] & (1u << (k % 8))))
                        continue;
                copy_value(dst + k * esize, values, esize);
                values += esize;
        }
        return 0;
}

static int decode_nm(uint8_t n, uint8_t m, size_t esize, uint64_t count, uint64_t inner, const uint8_t *src,
                     uint64_t size, uint8_t *dst) {
        uint64_t groups, expected, bit_pos = 0, total_bits;
        const uint8_t *values, *indices;
        unsigned bits;
        bool m_ok = false;

        for (size_t i = 0; i < ELEMENTSOF(nm_group_sizes); i++)
                m_ok = m_ok || m == nm_group_sizes[i];
        if (!m_ok || n < 1 || n >= m)
                return cvopt_error_set(-CVOPT_E_FORMAT, "invalid N:M %u:%u", n, m);
        if (inner == 0 || inner % m != 0)
                return cvopt_error_set(-CVOPT_E_FORMAT, "N:M %u:%u: innermost dimension %llu is not a multiple of M",
                                       n, m, (unsigned long long) inner);
        groups = count / m;
        bits = bits_for_group(m);
        expected = nm_size(count, esize, n, m);
        if (size != expected)
                return cvopt_error_set(-CVOPT_E_FORMAT, "N:M data is %llu bytes, expected %llu",
                                       (unsigned long long) size, (unsigned long long) expected);
        values = src;
        indices = src + groups * n * esize;
        total_bits = groups * n * bits;
        if (total_bits % 8 && (indices[total_bits / 8] >> (total_bits % 8)))
                return cvopt_error_set(-CVOPT_E_FORMAT, "N:M: unused index bits are set");
        for (uint64_t g = 0; g < groups; g++) {
                int previous = -1;

                for (unsigned k = 0; k < n; k++) {
                        int index = (int) get_bits(indices, &bit_pos, bits);

                        if (index <= previous)
                                return cvopt_error_set(-CVOPT_E_FORMAT,
                                                       "N:M: group %llu: indices are not strictly increasing",
                                                       (unsigned long long) g);
                        previous = index;
                        copy_value(dst + (g * m + (uint64_t) index) * esize, values, esize);
                        values += esize;
                }
        }
        return 0;
}

int cvm_storage_decode(CvmStorage storage, uint8_t nm_n, uint8_t nm_m, size_t esize, uint64_t count,
                       uint64_t inner, const uint8_t *src, uint64_t size, void **ret_dense) {
        _cleanup_free_ uint8_t *dense = NULL;
        size_t bytes;
        int r;

        if (esize == 0 || size_mul_overflow(count, esize, &bytes))
                return cvopt_error_set(-CVOPT_E_FORMAT, "size overflow");
        /* Before allocating: a hostile element count must be backed by data
         * of the matching size, so the dense buffer is at most 64 times the
         * stored bytes (bitmask of int64: 8 elements per bitmap byte). */
        if ((storage == CVM_STORAGE_INT4 && size != DIV_ROUND_UP(count, 2)) ||
            (storage == CVM_STORAGE_BITMASK && size < DIV_ROUND_UP(count, 8)) ||
            (storage == CVM_STORAGE_NM && (nm_m == 0 || nm_n == 0 || nm_n >= nm_m || (nm_m & (nm_m - 1)) ||
                                           nm_m > 16 || size != nm_size(count, esize, nm_n, nm_m))))
                return cvopt_error_set(-CVOPT_E_FORMAT, "%s data is %llu bytes, not what %llu elements need",
                                       cvm_storage_name(storage), (unsigned long long) size,
                                       (unsigned long long) count);
        dense = calloc(MAX(bytes, 1u), 1);
        if (!dense)
                return -ENOMEM;
        switch (storage) {
        case CVM_STORAGE_INT4:
                if (esize != 1)
                        return cvopt_error_set(-CVOPT_E_FORMAT, "int4 storage on a tensor that is not int8");
                r = decode_int4(count, src, size, (int8_t *) dense);
                break;
        case CVM_STORAGE_BITMASK:
                r = decode_bitmask(count, esize, src, size, dense);
                break;
        case CVM_STORAGE_NM:
                r = decode_nm(nm_n, nm_m, esize, count, inner, src, size, dense);
                break;
        default:
                r = cvopt_error_set(-CVOPT_E_FORMAT, "storage %d cannot be decoded", (int) storage);
        }
        if (r < 0)
                return r;
        *ret_dense = TAKE_PTR(dense);
        return 0;
}

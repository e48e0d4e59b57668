/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum CvoptDType {
        CVOPT_DTYPE_UNDEFINED = 0,
        CVOPT_DTYPE_FLOAT32 = 1,
        CVOPT_DTYPE_INT8 = 2,
        CVOPT_DTYPE_UINT8 = 3,
        CVOPT_DTYPE_INT32 = 4,
        CVOPT_DTYPE_INT64 = 5,
        CVOPT_DTYPE_INT4 = 6, /* file storage only: unpacked to INT8 on load */
        _CVOPT_DTYPE_MAX,
} CvoptDType;

/* Bytes per element; 0 for UNDEFINED and INT4 (which has no in-memory form). */
size_t cvopt_dtype_size(CvoptDType dtype);
const char *cvopt_dtype_name(CvoptDType dtype);

#define CVOPT_MAX_DIMS 8

/* Quantization parameters: real = scale * (q - zero_point).
 * axis < 0: one scale for the whole tensor; otherwise one per index of
 * that axis (count == dims[axis]). */
typedef struct CvoptQuant {
        int32_t axis;
        uint32_t count;
        float *scale;
        int32_t *zero_point;
} CvoptQuant;

typedef struct CvoptTensor {
        char *name;
        CvoptDType dtype;
        uint32_t ndim;
        int64_t dims[CVOPT_MAX_DIMS];
        /* Constant data (initializers, folded values) or NULL for values
         * computed at run time. Dense, row-major. */
        void *data;
        bool owns_data;   /* free(data) with the tensor; false when it points into a mapped file */
        bool is_constant; /* data holds the value for every run */
        bool has_shape;   /* dims are known (set by the importer or shape inference) */
        /* Storage hint for an INT8 constant whose values are all in [-8, 7]:
         * the .cvm writer packs it two values per byte (docs/model-format.md)
         * and the reader sets it again; in memory the tensor stays INT8. */
        bool pack_int4;
        CvoptQuant quant;
} CvoptTensor;

/* Number of elements (1 for a scalar, ndim == 0), or -1 if a dim is negative
 * or the product overflows. */
int64_t cvopt_tensor_count(const CvoptTensor *t);

/* Bytes of dense data, or 0 on overflow/unknown dtype. */
size_t cvopt_tensor_bytes(const CvoptTensor *t);

/* "1x3x224x224" into buf; returns buf. */
char *cvopt_tensor_shape_str(const CvoptTensor *t, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

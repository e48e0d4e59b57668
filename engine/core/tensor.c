/* SPDX-License-Identifier: MIT */
#include <stdio.h>

#include "cvopt/tensor.h"
#include "macro.h"

size_t cvopt_dtype_size(CvoptDType dtype) {
        switch (dtype) {
        case CVOPT_DTYPE_FLOAT32:
        case CVOPT_DTYPE_INT32:
                return 4;
        case CVOPT_DTYPE_INT8:
        case CVOPT_DTYPE_UINT8:
                return 1;
        case CVOPT_DTYPE_INT64:
                return 8;
        default:
                return 0;
        }
}

const char *cvopt_dtype_name(CvoptDType dtype) {
        static const char *const names[_CVOPT_DTYPE_MAX] = {
                [CVOPT_DTYPE_UNDEFINED] = "undefined", [CVOPT_DTYPE_FLOAT32] = "float32",
                [CVOPT_DTYPE_INT8] = "int8",           [CVOPT_DTYPE_UINT8] = "uint8",
                [CVOPT_DTYPE_INT32] = "int32",         [CVOPT_DTYPE_INT64] = "int64",
                [CVOPT_DTYPE_INT4] = "int4",
        };
        if ((unsigned) dtype >= _CVOPT_DTYPE_MAX)
                return "invalid";
        return names[dtype];
}

int64_t cvopt_tensor_count(const CvoptTensor *t) {
        int64_t n = 1;

        for (uint32_t i = 0; i < t->ndim && i < CVOPT_MAX_DIMS; i++) {
                if (t->dims[i] < 0 || __builtin_mul_overflow(n, t->dims[i], &n))
                        return -1;
        }
        return n;
}

size_t cvopt_tensor_bytes(const CvoptTensor *t) {
        int64_t n = cvopt_tensor_count(t);
        size_t bytes;

        if (n < 0 || cvopt_dtype_size(t->dtype) == 0)
                return 0;
        if (size_mul_overflow((size_t) n, cvopt_dtype_size(t->dtype), &bytes))
                return 0;
        return bytes;
}

char *cvopt_tensor_shape_str(const CvoptTensor *t, char *buf, size_t size) {
        size_t used = 0;

        if (size == 0)
                return buf;
        buf[0] = 0;
        if (t->ndim == 0) {
                snprintf(buf, size, "scalar");
                return buf;
        }
        for (uint32_t i = 0; i < t->ndim && i < CVOPT_MAX_DIMS && used < size; i++)
                used += snprintf(buf + used, size - used, "%s%lld", i ? "x" : "", (long long) t->dims[i]);
        return buf;
}

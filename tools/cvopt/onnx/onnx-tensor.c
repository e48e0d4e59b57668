/* SPDX-License-Identifier: MIT */
/* TensorProto decoding: initializers, Constant values, and standalone .pb
 * tensors from ONNX test data sets. Every size is checked against the dims
 * before anything is allocated or copied, so a hostile file can make us
 * allocate no more than it is large. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cvopt/errors.h"
#include "macro.h"
#include "onnx-import.h"
#include "onnx-internal.h"

static const char *const elem_type_names[] = {
        [ONNX__TENSOR_PROTO__DATA_TYPE__UNDEFINED] = "UNDEFINED",
        [ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT] = "FLOAT",
        [ONNX__TENSOR_PROTO__DATA_TYPE__UINT8] = "UINT8",
        [ONNX__TENSOR_PROTO__DATA_TYPE__INT8] = "INT8",
        [ONNX__TENSOR_PROTO__DATA_TYPE__UINT16] = "UINT16",
        [ONNX__TENSOR_PROTO__DATA_TYPE__INT16] = "INT16",
        [ONNX__TENSOR_PROTO__DATA_TYPE__INT32] = "INT32",
        [ONNX__TENSOR_PROTO__DATA_TYPE__INT64] = "INT64",
        [ONNX__TENSOR_PROTO__DATA_TYPE__STRING] = "STRING",
        [ONNX__TENSOR_PROTO__DATA_TYPE__BOOL] = "BOOL",
        [ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16] = "FLOAT16",
        [ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE] = "DOUBLE",
        [ONNX__TENSOR_PROTO__DATA_TYPE__UINT32] = "UINT32",
        [ONNX__TENSOR_PROTO__DATA_TYPE__UINT64] = "UINT64",
        [ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX64] = "COMPLEX64",
        [ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX128] = "COMPLEX128",
        [ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16] = "BFLOAT16",
};

const char *onnx_elem_type_name(int32_t elem_type) {
        if (elem_type < 0 || (size_t) elem_type >= ELEMENTSOF(elem_type_names) || !elem_type_names[elem_type])
                return "unknown";
        return elem_type_names[elem_type];
}

int onnx_dtype_from_elem_type(int32_t elem_type, const char *what, CvoptDType *ret_dtype) {
        CvoptDType dtype;

        switch (elem_type) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
                dtype = CVOPT_DTYPE_FLOAT32;
                break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
                dtype = CVOPT_DTYPE_INT64;
                break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
                dtype = CVOPT_DTYPE_INT32;
                break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
                dtype = CVOPT_DTYPE_INT8;
                break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
                dtype = CVOPT_DTYPE_UINT8;
                break;
        default:
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "%s: element type %s (%d) not supported", what,
                                       onnx_elem_type_name(elem_type), (int) elem_type);
        }
        *ret_dtype = dtype;
        return 0;
}

/* ONNX stores raw_data little-endian. */
static void copy_le(void *dst, const uint8_t *src, size_t count, size_t elem_size) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        (void) elem_size;
        memcpy(dst, src, count * elem_size);
#else
        uint8_t *d = dst;

        for (size_t i = 0; i < count; i++)
                for (size_t b = 0; b < elem_size; b++)
                        d[i * elem_size + b] = src[i * elem_size + elem_size - 1 - b];
#endif
}

static const char *external_location(const Onnx__TensorProto *tp) {
        for (size_t i = 0; i < tp->n_external_data; i++)
                if (tp->external_data[i] && tp->external_data[i]->key &&
                    streq(tp->external_data[i]->key, "location"))
                        return strempty(tp->external_data[i]->value);
        return "?";
}

int onnx_tensor_decode(const Onnx__TensorProto *tp, const char *what, OnnxTensorData *ret) {
        OnnxTensorData out = {};
        _cleanup_free_ void *data = NULL;
        size_t typed_count, bytes, elem_size;
        int64_t count = 1;
        int r;

        if (!tp->has_data_type)
                return cvopt_error_set(-CVOPT_E_FORMAT, "%s: no data type", what);
        r = onnx_dtype_from_elem_type(tp->data_type, what, &out.dtype);
        if (r < 0)
                return r;
        if ((tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) ||
            tp->n_external_data > 0)
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED,
                                       "%s: external data (location '%s') not supported; "
                                       "save the model with its weights inside the .onnx file",
                                       what, external_location(tp));
        if (tp->segment)
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "%s: segmented tensors not supported", what);
        if (tp->n_dims > CVOPT_MAX_DIMS)
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "%s: %zu dims (at most %d supported)", what,
                                       tp->n_dims, CVOPT_MAX_DIMS);
        for (size_t i = 0; i < tp->n_dims; i++) {
                if (tp->dims[i] < 0)
                        return cvopt_error_set(-CVOPT_E_FORMAT, "%s: dim %zu is negative (%lld)", what, i,
                                               (long long) tp->dims[i]);
                if (__builtin_mul_overflow(count, tp->dims[i], &count))
                        return cvopt_error_set(-CVOPT_E_FORMAT, "%s: element count overflows", what);
                out.dims[i] = tp->dims[i];
        }
        out.ndim = (uint32_t) tp->n_dims;
        elem_size = cvopt_dtype_size(out.dtype);
        if ((uint64_t) count > SIZE_MAX || size_mul_overflow((size_t) count, elem_size, &bytes))
                return cvopt_error_set(-CVOPT_E_FORMAT, "%s: size overflows", what);

        switch (out.dtype) {
        case CVOPT_DTYPE_FLOAT32:
                typed_count = tp->n_float_data;
                break;
        case CVOPT_DTYPE_INT64:
                typed_count = tp->n_int64_data;
                break;
        default: /* int32, int8, uint8: ONNX keeps all of them in int32_data */
                typed_count = tp->n_int32_data;
                break;
        }

        if (tp->has_raw_data) {
                if (typed_count > 0)
                        return cvopt_error_set(-CVOPT_E_FORMAT, "%s: has both raw_data and typed data", what);
                if (tp->raw_data.len != bytes)
                        return cvopt_error_set(-CVOPT_E_FORMAT,
                                               "%s: raw_data has %zu bytes, dims and type %s need %zu", what,
                                               tp->raw_data.len, cvopt_dtype_name(out.dtype), bytes);
        } else if (typed_count != (size_t) count)
                return cvopt_error_set(-CVOPT_E_FORMAT, "%s: has %zu values, dims say %lld", what, typed_count,
                                       (long long) count);

        data = malloc(MAX(bytes, 1u));
        if (!data)
                return -ENOMEM;
        if (bytes == 0)
                ; /* an empty tensor (a dim is 0): its fields may be NULL */
        else if (tp->has_raw_data)
                copy_le(data, tp->raw_data.data, (size_t) count, elem_size);
        else {
                switch (out.dtype) {
                case CVOPT_DTYPE_FLOAT32:
                        memcpy(data, tp->float_data, bytes);
                        break;
                case CVOPT_DTYPE_INT64:
                        memcpy(data, tp->int64_data, bytes);
                        break;
                case CVOPT_DTYPE_INT32:
                        memcpy(data, tp->int32_data, bytes);
                        break;
                case CVOPT_DTYPE_INT8:
                case CVOPT_DTYPE_UINT8:
                        for (size_t i = 0; i < (size_t) count; i++) {
                                int32_t v = tp->int32_data[i];
                                bool ok = out.dtype == CVOPT_DTYPE_INT8 ? v >= INT8_MIN && v <= INT8_MAX
                                                                        : v >= 0 && v <= UINT8_MAX;

                                if (!ok)
                                        return cvopt_error_set(-CVOPT_E_FORMAT, "%s: value %d out of range for %s",
                                                               what, (int) v, cvopt_dtype_name(out.dtype));
                                if (out.dtype == CVOPT_DTYPE_INT8)
                                        ((int8_t *) data)[i] = (int8_t) v;
                                else
                                        ((uint8_t *) data)[i] = (uint8_t) v;
                        }
                        break;
                default:
                        return -EINVAL; /* onnx_dtype_from_elem_type() returned no other type */
                }
        }
        out.data = TAKE_PTR(data);
        *ret = out;
        return 0;
}

int onnx_read_file(const char *path, void **ret_data, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ uint8_t *buf = NULL;
        struct stat st;
        size_t done = 0, size;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return cvopt_error_set(-errno, "%s: %m", path);
        if (fstat(fd, &st) < 0)
                return cvopt_error_set(-errno, "%s: %m", path);
        if (!S_ISREG(st.st_mode))
                return cvopt_error_set(-EINVAL, "%s: not a regular file", path);
        if ((uint64_t) st.st_size > ONNX_MAX_MESSAGE_BYTES)
                return cvopt_error_set(-EFBIG, "%s: %lld bytes, more than protobuf's 2 GiB limit", path,
                                       (long long) st.st_size);
        size = (size_t) st.st_size;
        buf = malloc(MAX(size, 1u));
        if (!buf)
                return -ENOMEM;
        while (done < size) {
                ssize_t n = read(fd, buf + done, size - done);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return cvopt_error_set(-errno, "%s: %m", path);
                }
                if (n == 0)
                        return cvopt_error_set(-EIO, "%s: file shrank while reading", path);
                done += (size_t) n;
        }
        *ret_data = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

CvoptTensor *onnx_tensor_free(CvoptTensor *t) {
        if (!t)
                return NULL;
        free(t->name);
        if (t->owns_data)
                free(t->data);
        free(t->quant.scale);
        free(t->quant.zero_point);
        free(t);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptTensor *, onnx_tensor_free);

static void tensor_proto_freep(Onnx__TensorProto **p) {
        if (*p)
                onnx__tensor_proto__free_unpacked(*p, NULL);
}

int onnx_tensor_load_buffer(const void *data, size_t size, const char *name_for_errors,
                            CvoptTensor **ret_tensor) {
        _cleanup_(tensor_proto_freep) Onnx__TensorProto *tp = NULL;
        _cleanup_(onnx_tensor_freep) CvoptTensor *t = NULL;
        const char *name = name_for_errors ? name_for_errors : "<buffer>";
        OnnxTensorData decoded;
        int r;

        cvopt_error_clear();
        if ((!data && size > 0) || !ret_tensor)
                return cvopt_error_set(-EINVAL, "%s: invalid arguments", name);
        if (size > ONNX_MAX_MESSAGE_BYTES)
                return cvopt_error_set(-EFBIG, "%s: more than protobuf's 2 GiB limit", name);
        r = onnx_check_nesting(data, size, name);
        if (r < 0)
                return r;
        tp = onnx__tensor_proto__unpack(NULL, size, data);
        if (!tp)
                return cvopt_error_set(-CVOPT_E_FORMAT, "%s: not a valid ONNX TensorProto (protobuf decoding failed)",
                                       name);
        r = onnx_tensor_decode(tp, name, &decoded);
        if (r < 0)
                return r;
        t = calloc(1, sizeof(*t));
        if (!t) {
                free(decoded.data);
                return -ENOMEM;
        }
        t->data = decoded.data;
        t->owns_data = true;
        t->is_constant = true;
        t->has_shape = true;
        t->dtype = decoded.dtype;
        t->ndim = decoded.ndim;
        memcpy(t->dims, decoded.dims, sizeof(t->dims));
        t->quant.axis = -1;
        t->name = strdup(strempty(tp->name));
        if (!t->name)
                return -ENOMEM;
        *ret_tensor = TAKE_PTR(t);
        return 0;
}

int onnx_tensor_load_file(const char *path, CvoptTensor **ret_tensor) {
        _cleanup_free_ void *data = NULL;
        size_t size;
        int r;

        cvopt_error_clear();
        r = onnx_read_file(path, &data, &size);
        if (r < 0)
                return r;
        return onnx_tensor_load_buffer(data, size, path, ret_tensor);
}

/* SPDX-License-Identifier: MIT */
#pragma once

/* ONNX import: reads an ONNX model (protobuf, opsets 7 to 18) into the
 * graph IR of include/cvopt/graph.h, normalizing the operator differences
 * between opsets so that every op has one meaning in the IR. The decisions
 * are listed at the top of onnx-import.c and in docs/onnx-import.md.
 *
 * All functions return 0 or a negative error code and leave a detail
 * (cvopt_error_detail()) naming the file, and the node, tensor or field at
 * fault. Anything the importer cannot represent exactly (an op, attribute,
 * data type or feature) fails with -CVOPT_E_UNSUPPORTED; malformed input
 * fails with -CVOPT_E_FORMAT. */

#include <stddef.h>

#include "cvopt/model.h"
#include "cvopt/tensor.h"

/* Reads an ONNX model into a new CvoptModel (graph only; input spec left at
 * defaults; labels from metadata_props key "labels" as a JSON array of
 * strings or a comma-separated list, if present). */
int onnx_import_file(const char *path, CvoptModel **ret_model);

/* Same, from memory; name_for_errors prefixes error details (NULL: "<buffer>"). */
int onnx_import_buffer(const void *data, size_t size, const char *name_for_errors, CvoptModel **ret_model);

/* Same as the two above, with some graph inputs fixed: each tensor in bind
 * (as from onnx_tensor_load_file(), matched by name; its data is copied)
 * becomes a constant instead of a graph input. The ONNX node tests feed Clip
 * bounds and Squeeze/Unsqueeze axes as graph inputs, which the IR needs to
 * be constants. A bind name that is no graph input, or a dtype differing
 * from the declared one, fails with -EINVAL. */
int onnx_import_file_bound(const char *path, size_t n_bind, CvoptTensor *const *bind, CvoptModel **ret_model);
int onnx_import_buffer_bound(const void *data, size_t size, const char *name_for_errors, size_t n_bind,
                             CvoptTensor *const *bind, CvoptModel **ret_model);

/* Same as onnx_import_file(), and also returns a copy of the value of the
 * metadata_props entry named metadata_key in *ret_metadata_value (free()
 * it), or NULL there when the model has no such entry. The CLI reads the
 * "preprocessing" entry (a JSON object) this way to fill the input spec. */
int onnx_import_file_metadata(const char *path, const char *metadata_key, CvoptModel **ret_model,
                              char **ret_metadata_value);

/* Reads a serialized TensorProto (.pb, as in ONNX test data sets) into a
 * new standalone tensor (name, dtype, dims, owned data). */
int onnx_tensor_load_file(const char *path, CvoptTensor **ret_tensor);
int onnx_tensor_load_buffer(const void *data, size_t size, const char *name_for_errors,
                            CvoptTensor **ret_tensor);
CvoptTensor *onnx_tensor_free(CvoptTensor *t);

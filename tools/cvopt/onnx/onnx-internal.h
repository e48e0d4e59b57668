/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared between the importer's files: onnx-import.c walks the model,
 * onnx-nodes.c maps one node, onnx-attr.c copies and checks attributes,
 * onnx-tensor.c decodes TensorProto data, onnx-labels.c parses labels. */

#include <stdbool.h>
#include <stdint.h>

#include "cvopt/graph.h"
#include "cvopt/model.h"
#include "onnx.pb-c.h"

/* The opsets whose semantics the normalization below knows (see the table
 * at the top of onnx-import.c). */
#define ONNX_OPSET_MIN 7
/* 18 changed only ops we normalize (the reductions' axes became an input)
 * among those we support; 19 changed Reshape, Shape, Identity, AveragePool. */
#define ONNX_OPSET_MAX 18

/* protobuf limits a message to 2 GiB; so do we, for files and buffers. */
#define ONNX_MAX_MESSAGE_BYTES ((size_t) INT32_MAX)

typedef struct OnnxImport {
        const char *name; /* file name or caller's label, for error details */
        int64_t opset;    /* default-domain opset */
        const Onnx__GraphProto *proto;
        CvoptGraph *graph;
        size_t n_bind; /* graph inputs fixed to constants (onnx_import_buffer_bound()) */
        CvoptTensor *const *bind;
} OnnxImport;

/* Decoded TensorProto: dtype, shape, and dense little-endian data in host
 * order (malloc'ed, at least 1 byte, so that empty tensors have data). */
typedef struct OnnxTensorData {
        CvoptDType dtype;
        uint32_t ndim;
        int64_t dims[CVOPT_MAX_DIMS];
        void *data;
} OnnxTensorData;

/* Maps an ONNX TensorProto.DataType to a CvoptDType: -CVOPT_E_UNSUPPORTED
 * (with detail naming what) for types the IR has no form for. */
int onnx_dtype_from_elem_type(int32_t elem_type, const char *what, CvoptDType *ret_dtype);
const char *onnx_elem_type_name(int32_t elem_type);

/* Decodes a TensorProto (raw_data or typed fields); the detail names what. */
int onnx_tensor_decode(const Onnx__TensorProto *tp, const char *what, OnnxTensorData *ret);

/* Reads a whole file (at most ONNX_MAX_MESSAGE_BYTES). */
int onnx_read_file(const char *path, void **ret_data, size_t *ret_size);

/* Rejects buffers whose messages nest deeper than protobuf-c can unpack
 * without exhausting the stack (it recurses once per level). */
int onnx_check_nesting(const void *data, size_t size, const char *name);

/* Maps one NodeProto (index k in the graph) into imp->graph. */
int onnx_import_node(OnnxImport *imp, const Onnx__NodeProto *np, size_t k);

/* Value info (graph value_info, outputs, inputs) of a tensor name, or NULL. */
const Onnx__ValueInfoProto *onnx_find_value_info(const OnnxImport *imp, const char *name);

/* dtype and shape from a ValueInfoProto; symbolic or missing dims become 1.
 * ret_ndim = UINT32_MAX when the rank is unknown. */
int onnx_value_info_shape(const OnnxImport *imp, const Onnx__ValueInfoProto *vi, CvoptDType *ret_dtype,
                          uint32_t *ret_ndim, int64_t dims[CVOPT_MAX_DIMS]);

/* Attributes. The node label is "name" or "#k" for unnamed nodes. */
typedef struct OnnxNodeRef {
        const OnnxImport *imp;
        const Onnx__NodeProto *np;
        const char *label;
} OnnxNodeRef;

/* Copies the node's ONNX attributes onto n after checking each against the
 * op's table (known name, expected type, valid in this opset). */
int onnx_node_copy_attrs(const OnnxNodeRef *ref, CvoptOp op, CvoptNode *n);

/* Error helpers with the "MODEL: node 'NAME' (op TYPE): " prefix. */
int onnx_node_error(const OnnxNodeRef *ref, int err, const char *format, ...) __attribute__((format(printf, 3, 4)));
int onnx_node_attr_unsupported(const OnnxNodeRef *ref, const CvoptAttr *a);

/* Labels from metadata_props key "labels". */
int onnx_labels_parse(const char *value, const char *name, uint32_t *ret_count, char ***ret_labels);

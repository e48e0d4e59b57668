/* SPDX-License-Identifier: MIT */
/* ONNX model -> graph IR.
 *
 * The IR gives every op ONE meaning, whatever opset the model was exported
 * with (7 to 18 for the default domain; anything else fails, naming the
 * opset). Where ONNX changed an op between opsets, the importer rewrites
 * the node into the IR's form:
 *
 *   Clip        min/max are float node attributes "min"/"max", whether they
 *               came as attributes (opset < 11) or as constant inputs (>= 11,
 *               any numeric type, one element). An absent bound is an absent
 *               attribute (no bound). A bound computed at run time fails.
 *               The IR node has one input.
 *   Squeeze,    axes are the ints attribute "axes", from the attribute
 *   Unsqueeze   (opset < 13) or a constant int64 input (>= 13); a run-time
 *               axes input fails. Squeeze without axes (or with an empty
 *               list) has no "axes" attribute and squeezes every dim of
 *               size 1. The IR node has one input.
 *   Softmax     opset < 13: "coerce_2d" = 1 and "axis" (default 1): the
 *               input is seen as 2-D [prod(dims[:axis]), prod(dims[axis:])]
 *               and each row normalized. opset >= 13: "axis" (default -1)
 *               and no coerce_2d. "axis" is always set explicitly.
 *   Reshape     the shape stays input 1 (often computed by Shape->Gather->
 *               Concat chains that a later pass folds); "allowzero" is kept.
 *   Slice       the opset 10 form: data, starts, ends, [axes], [steps] as
 *               inputs; opset < 10 attributes become constant int64 inputs.
 *               Computed parameters stay (x.chunk() exports Shape->Gather->
 *               Add->Div->Mul chains that shape inference folds); one that
 *               does not fold fails there.
 *   ReduceMean, axes are the ints attribute "axes", from the attribute or
 *   ReduceMax,  from a constant int64 input (opset 18; ReduceSum 13), as
 *   ReduceSum   for Squeeze. keepdims, noop_with_empty_axes are kept.
 *   BatchNorm   five inputs; inference only: training_mode = 1, spatial != 1
 *               (opset 7-8) or a read training output fails.
 *   Dropout     kept as a node (an identity in inference) with one input:
 *               ratio is irrelevant, training_mode must be absent or a
 *               constant false, and a read mask output fails.
 *   MaxPool     the Indices output and storage_order = 1 fail.
 *   Constant    becomes a constant tensor named after its output (value,
 *               value_float(s), value_int(s)); no node.
 *   Identity    stays a node.
 *
 * Every other attribute keeps its ONNX name, type and value (Conv pads
 * strides dilations group auto_pad kernel_shape; pools ceil_mode
 * count_include_pad; Gemm alpha beta transA transB; ...), and defaults stay
 * ONNX defaults. An attribute an op does not have in the model's opset, of
 * an unexpected type, or with a value we cannot run (auto_pad outside
 * NOTSET/SAME_UPPER/SAME_LOWER/VALID) fails with -CVOPT_E_UNSUPPORTED
 * rather than being ignored.
 *
 * Tensors: initializers become constant tensors (float, int64, int32, int8,
 * uint8, from raw_data little-endian or the typed fields); a graph input
 * that is also an initializer is a constant, not an input. Shapes come from
 * graph inputs, outputs and value_info; a symbolic or missing dim becomes 1,
 * because batch 1 is the only batch the engine runs (a symbolic dim is in
 * practice the batch). Output tensors with no value_info take the type of
 * the op's first input (Shape: int64) and no shape, for shape inference.
 *
 * After the nodes, tensors that normalization orphaned (Clip bounds, axes)
 * are pruned, with nodes nobody reads, and the graph is validated. */
#include <stdio.h>

#include "cvopt/errors.h"
#include "macro.h"
#include "onnx-import.h"
#include "onnx-internal.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptModel *, cvopt_model_free);

static void model_proto_freep(Onnx__ModelProto **p) {
        if (*p)
                onnx__model_proto__free_unpacked(*p, NULL);
}

const Onnx__ValueInfoProto *onnx_find_value_info(const OnnxImport *imp, const char *name) {
        const Onnx__GraphProto *gp = imp->proto;

        for (size_t i = 0; i < gp->n_value_info; i++)
                if (gp->value_info[i]->name && streq(gp->value_info[i]->name, name))
                        return gp->value_info[i];
        for (size_t i = 0; i < gp->n_output; i++)
                if (gp->output[i]->name && streq(gp->output[i]->name, name))
                        return gp->output[i];
        return NULL;
}

int onnx_value_info_shape(const OnnxImport *imp, const Onnx__ValueInfoProto *vi, CvoptDType *ret_dtype,
                          uint32_t *ret_ndim, int64_t dims[CVOPT_MAX_DIMS]) {
        const char *name = strempty(vi->name);
        const Onnx__TypeProto__Tensor *tt;
        const Onnx__TensorShapeProto *shape;
        CvoptDType dtype = CVOPT_DTYPE_UNDEFINED;
        char what[256];
        int r;

        if (!vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !vi->type->tensor_type)
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "%s: tensor '%s': only dense tensor types are supported",
                                       imp->name, name);
        tt = vi->type->tensor_type;
        if (tt->has_elem_type && tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__UNDEFINED) {
                snprintf(what, sizeof(what), "%s: tensor '%s'", imp->name, name);
                r = onnx_dtype_from_elem_type(tt->elem_type, what, &dtype);
                if (r < 0)
                        return r;
        }
        shape = tt->shape;
        if (!shape) {
                *ret_dtype = dtype;
                *ret_ndim = UINT32_MAX;
                return 0;
        }
        if (shape->n_dim > CVOPT_MAX_DIMS)
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "%s: tensor '%s': %zu dims (at most %d supported)",
                                       imp->name, name, shape->n_dim, CVOPT_MAX_DIMS);
        for (size_t i = 0; i < shape->n_dim; i++) {
                const Onnx__TensorShapeProto__Dimension *d = shape->dim[i];

                /* A symbolic (dim_param) or missing dim is the batch in
                 * practice; batch 1 is the only batch we run. */
                if (d->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
                        dims[i] = 1;
                        continue;
                }
                if (d->dim_value < 0)
                        return cvopt_error_set(-CVOPT_E_FORMAT, "%s: tensor '%s': dim %zu is negative (%lld)",
                                               imp->name, name, i, (long long) d->dim_value);
                dims[i] = d->dim_value;
        }
        *ret_dtype = dtype;
        *ret_ndim = (uint32_t) shape->n_dim;
        return 0;
}

static int import_initializers(OnnxImport *imp) {
        const Onnx__GraphProto *gp = imp->proto;

        if (gp->n_sparse_initializer > 0)
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "%s: sparse initializers not supported", imp->name);
        for (size_t i = 0; i < gp->n_initializer; i++) {
                const Onnx__TensorProto *tp = gp->initializer[i];
                OnnxTensorData value;
                char what[256];
                int r;

                if (!tp->name || !tp->name[0])
                        return cvopt_error_set(-CVOPT_E_FORMAT, "%s: initializer %zu has no name", imp->name, i);
                snprintf(what, sizeof(what), "%s: initializer '%s'", imp->name, tp->name);
                r = onnx_tensor_decode(tp, what, &value);
                if (r < 0)
                        return r;
                r = cvopt_graph_add_constant(imp->graph, tp->name, value.dtype, value.ndim, value.dims, value.data,
                                             true, NULL);
                if (r < 0) {
                        free(value.data);
                        if (r == -EEXIST)
                                return cvopt_error_set(-CVOPT_E_FORMAT, "%s: initializer '%s' defined twice",
                                                       imp->name, tp->name);
                        return r;
                }
        }
        return 0;
}

static const CvoptTensor *bound_tensor(const OnnxImport *imp, const char *name) {
        for (size_t i = 0; i < imp->n_bind; i++)
                if (imp->bind[i]->name && streq(imp->bind[i]->name, name))
                        return imp->bind[i];
        return NULL;
}

static int check_binds(const OnnxImport *imp) {
        for (size_t i = 0; i < imp->n_bind; i++) {
                const CvoptTensor *t = imp->bind[i];
                bool found = false;

                if (!t || !t->name || t->ndim > CVOPT_MAX_DIMS || cvopt_dtype_size(t->dtype) == 0 ||
                    cvopt_tensor_count(t) < 0 || (!t->data && cvopt_tensor_count(t) != 0))
                        return cvopt_error_set(-EINVAL, "%s: bound tensor %zu is invalid", imp->name, i);
                for (size_t k = 0; k < imp->proto->n_input; k++)
                        if (imp->proto->input[k]->name && streq(imp->proto->input[k]->name, t->name))
                                found = true;
                if (!found)
                        return cvopt_error_set(-EINVAL, "%s: bound tensor '%s' is not a graph input", imp->name,
                                               t->name);
        }
        return 0;
}

/* A graph input fixed by the caller becomes a constant holding a copy. */
static int import_bound_input(OnnxImport *imp, const CvoptTensor *t, CvoptDType declared) {
        size_t bytes = cvopt_tensor_bytes(t);
        void *data;
        int r;

        if (declared != CVOPT_DTYPE_UNDEFINED && declared != t->dtype)
                return cvopt_error_set(-EINVAL, "%s: bound tensor '%s' is %s, the graph input is %s", imp->name,
                                       t->name, cvopt_dtype_name(t->dtype), cvopt_dtype_name(declared));
        data = malloc(MAX(bytes, 1u));
        if (!data)
                return -ENOMEM;
        if (bytes > 0)
                memcpy(data, t->data, bytes);
        r = cvopt_graph_add_constant(imp->graph, t->name, t->dtype, t->ndim, t->dims, data, true, NULL);
        if (r < 0)
                free(data);
        return r;
}

static int import_inputs(OnnxImport *imp) {
        const Onnx__GraphProto *gp = imp->proto;
        _cleanup_free_ int32_t *indices = calloc(MAX(gp->n_input, 1u), sizeof(int32_t));
        uint32_t n = 0;
        int r;

        if (!indices)
                return -ENOMEM;
        for (size_t i = 0; i < gp->n_input; i++) {
                const Onnx__ValueInfoProto *vi = gp->input[i];
                const char *name = strempty(vi->name);
                int64_t dims[CVOPT_MAX_DIMS];
                CvoptDType dtype;
                uint32_t ndim;

                if (!name[0])
                        return cvopt_error_set(-CVOPT_E_FORMAT, "%s: graph input %zu has no name", imp->name, i);
                r = cvopt_graph_find_tensor(imp->graph, name);
                if (r >= 0) {
                        /* Before IR version 4 every initializer was also
                         * listed as an input; it is a constant all the same. */
                        if (imp->graph->tensors[r].is_constant)
                                continue;
                        return cvopt_error_set(-CVOPT_E_FORMAT, "%s: graph input '%s' listed twice", imp->name, name);
                }
                r = onnx_value_info_shape(imp, vi, &dtype, &ndim, dims);
                if (r < 0)
                        return r;
                if (bound_tensor(imp, name)) {
                        r = import_bound_input(imp, bound_tensor(imp, name), dtype);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (dtype == CVOPT_DTYPE_UNDEFINED)
                        return cvopt_error_set(-CVOPT_E_FORMAT, "%s: graph input '%s' has no element type", imp->name,
                                               name);
                r = cvopt_graph_add_tensor(imp->graph, name, dtype, ndim == UINT32_MAX ? 0 : ndim,
                                           ndim == UINT32_MAX ? NULL : dims, &indices[n]);
                if (r < 0)
                        return r;
                if (ndim == UINT32_MAX)
                        imp->graph->tensors[indices[n]].has_shape = false;
                n++;
        }
        return cvopt_graph_set_inputs(imp->graph, n, indices);
}

static int import_outputs(OnnxImport *imp) {
        const Onnx__GraphProto *gp = imp->proto;
        _cleanup_free_ int32_t *indices = calloc(MAX(gp->n_output, 1u), sizeof(int32_t));

        if (!indices)
                return -ENOMEM;
        if (gp->n_output == 0)
                return cvopt_error_set(-CVOPT_E_FORMAT, "%s: graph has no outputs", imp->name);
        for (size_t i = 0; i < gp->n_output; i++) {
                const char *name = strempty(gp->output[i]->name);
                int r = cvopt_graph_find_tensor(imp->graph, name);

                if (r < 0)
                        return cvopt_error_set(-CVOPT_E_FORMAT, "%s: graph output '%s' is not computed by any node",
                                               imp->name, name);
                for (size_t j = 0; j < i; j++)
                        if (indices[j] == r)
                                return cvopt_error_set(-CVOPT_E_FORMAT, "%s: graph output '%s' listed twice",
                                                       imp->name, name);
                indices[i] = r;
        }
        return cvopt_graph_set_outputs(imp->graph, (uint32_t) gp->n_output, indices);
}

static int model_opset(const Onnx__ModelProto *mp, const char *name, int64_t *ret_opset) {
        int64_t opset = -1;

        for (size_t i = 0; i < mp->n_opset_import; i++) {
                const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
                const char *domain = strempty(o->domain);

                if (!streq(domain, "") && !streq(domain, "ai.onnx"))
                        continue; /* nodes of other domains fail when met */
                if (opset >= 0 && o->version != opset)
                        return cvopt_error_set(-CVOPT_E_FORMAT, "%s: two opsets for the default domain (%lld, %lld)",
                                               name, (long long) opset, (long long) o->version);
                opset = o->version;
        }
        if (opset < 0)
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED,
                                       "%s: no opset for the default ONNX domain (IR version %lld); opsets %d to %d "
                                       "are supported",
                                       name, (long long) mp->ir_version, ONNX_OPSET_MIN, ONNX_OPSET_MAX);
        if (opset < ONNX_OPSET_MIN || opset > ONNX_OPSET_MAX)
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED,
                                       "%s: ONNX opset %lld not supported (opsets %d to %d are); convert the model "
                                       "with onnx.version_converter",
                                       name, (long long) opset, ONNX_OPSET_MIN, ONNX_OPSET_MAX);
        *ret_opset = opset;
        return 0;
}

static int import_labels(const Onnx__ModelProto *mp, CvoptModel *m, const char *name) {
        for (size_t i = 0; i < mp->n_metadata_props; i++) {
                const Onnx__StringStringEntryProto *e = mp->metadata_props[i];

                if (!e->key || !streq(e->key, "labels"))
                        continue;
                return onnx_labels_parse(strempty(e->value), name, &m->n_labels, &m->labels);
        }
        return 0;
}

/* Checks and unpacks a serialized ModelProto. */
static int model_unpack(const void *data, size_t size, const char *name, Onnx__ModelProto **ret_proto) {
        Onnx__ModelProto *mp;
        int r;

        if (size > ONNX_MAX_MESSAGE_BYTES)
                return cvopt_error_set(-EFBIG, "%s: more than protobuf's 2 GiB limit", name);
        r = onnx_check_nesting(data, size, name);
        if (r < 0)
                return r;
        mp = onnx__model_proto__unpack(NULL, size, data);
        if (!mp)
                return cvopt_error_set(-CVOPT_E_FORMAT, "%s: not a valid ONNX model (protobuf decoding failed)", name);
        *ret_proto = mp;
        return 0;
}

static int model_import(const Onnx__ModelProto *mp, const char *name, size_t n_bind, CvoptTensor *const *bind,
                        CvoptModel **ret_model) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
        OnnxImport imp = { .name = name, .n_bind = n_bind, .bind = bind };
        int r;

        if (!mp->graph)
                return cvopt_error_set(-CVOPT_E_FORMAT, "%s: not an ONNX model (no graph)", name);
        r = model_opset(mp, name, &imp.opset);
        if (r < 0)
                return r;

        r = cvopt_model_new(&m);
        if (r < 0)
                return r;
        imp.proto = mp->graph;
        imp.graph = m->graph;
        r = check_binds(&imp);
        if (r < 0)
                return r;

        r = import_initializers(&imp);
        if (r < 0)
                return r;
        r = import_inputs(&imp);
        if (r < 0)
                return r;
        for (size_t k = 0; k < mp->graph->n_node; k++) {
                r = onnx_import_node(&imp, mp->graph->node[k], k);
                if (r < 0)
                        return r;
        }
        r = import_outputs(&imp);
        if (r < 0)
                return r;
        r = cvopt_graph_prune_unused(m->graph);
        if (r < 0)
                return r;
        r = cvopt_graph_validate(m->graph);
        if (r < 0)
                return cvopt_error_prefix(r, "%s", name);
        r = import_labels(mp, m, name);
        if (r < 0)
                return r;

        *ret_model = TAKE_PTR(m);
        return 0;
}

int onnx_import_buffer_bound(const void *data, size_t size, const char *name_for_errors, size_t n_bind,
                             CvoptTensor *const *bind, CvoptModel **ret_model) {
        _cleanup_(model_proto_freep) Onnx__ModelProto *mp = NULL;
        const char *name = name_for_errors ? name_for_errors : "<buffer>";
        int r;

        cvopt_error_clear();
        if ((!data && size > 0) || !ret_model || (n_bind > 0 && !bind))
                return cvopt_error_set(-EINVAL, "%s: invalid arguments", name);
        r = model_unpack(data, size, name, &mp);
        if (r < 0)
                return r;
        return model_import(mp, name, n_bind, bind, ret_model);
}

int onnx_import_buffer(const void *data, size_t size, const char *name_for_errors, CvoptModel **ret_model) {
        return onnx_import_buffer_bound(data, size, name_for_errors, 0, NULL, ret_model);
}

int onnx_import_file_bound(const char *path, size_t n_bind, CvoptTensor *const *bind, CvoptModel **ret_model) {
        _cleanup_(model_proto_freep) Onnx__ModelProto *mp = NULL;
        void *data = NULL;
        size_t size;
        int r;

        cvopt_error_clear();
        if (!path || !ret_model || (n_bind > 0 && !bind))
                return cvopt_error_set(-EINVAL, "%s: invalid arguments", strempty(path));
        r = onnx_read_file(path, &data, &size);
        if (r < 0)
                return r;
        r = model_unpack(data, size, path, &mp);
        /* protobuf-c copied what it needs: drop the file before the weights
         * are decoded, so that peak memory is two copies of them, not three. */
        free(data);
        if (r < 0)
                return r;
        return model_import(mp, path, n_bind, bind, ret_model);
}

int onnx_import_file(const char *path, CvoptModel **ret_model) {
        return onnx_import_file_bound(path, 0, NULL, ret_model);
}

int onnx_import_file_metadata(const char *path, const char *metadata_key, CvoptModel **ret_model,
                              char **ret_metadata_value) {
        _cleanup_(model_proto_freep) Onnx__ModelProto *mp = NULL;
        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
        _cleanup_free_ char *value = NULL;
        void *data = NULL;
        size_t size;
        int r;

        cvopt_error_clear();
        if (!path || !metadata_key || !ret_model || !ret_metadata_value)
                return cvopt_error_set(-EINVAL, "%s: invalid arguments", strempty(path));
        r = onnx_read_file(path, &data, &size);
        if (r < 0)
                return r;
        r = model_unpack(data, size, path, &mp);
        free(data);
        if (r < 0)
                return r;
        r = model_import(mp, path, 0, NULL, &m);
        if (r < 0)
                return r;
        for (size_t i = 0; i < mp->n_metadata_props; i++) {
                const Onnx__StringStringEntryProto *e = mp->metadata_props[i];

                if (!e->key || !streq(e->key, metadata_key))
                        continue;
                value = strdup(strempty(e->value));
                if (!value)
                        return -ENOMEM;
                break;
        }
        *ret_model = TAKE_PTR(m);
        *ret_metadata_value = TAKE_PTR(value);
        return 0;
}

/* SPDX-License-Identifier: MIT */
#pragma once

/* Internals of the OpenCL backend shared by its files: the per-session
 * context, per-node launches, and the helpers op files use to prepare a
 * node (backend-opencl.c runs them). */

#include "cvopt/engine.h"
#include "cvopt/graph.h"
#include "opencl/cl-runtime.h"

/* One kernel launch of a node; every argument is set at prepare time,
 * since every buffer a node touches lives as long as the session. */
typedef struct ClLaunch {
        cl_kernel kernel;
        cl_uint work_dim;
        size_t global[3];
        size_t local[3]; /* local[0] == 0: let the driver choose */
} ClLaunch;

#define CL_NODE_MAX_LAUNCHES 16
#define CL_NODE_MAX_BUFFERS 8

typedef struct ClNode {
        bool prepared;
        bool copy_only; /* shape ops: output = input 0, byte for byte */
        uint32_t activation_inputs; /* bit i: the kernels read input slot i from the device */
        uint32_t n_launches;
        ClLaunch launches[CL_NODE_MAX_LAUNCHES];
        uint32_t n_buffers;
        cl_mem buffers[CL_NODE_MAX_BUFFERS]; /* weights, parameters: owned by the node */
        uint64_t device_nsec;                /* kernel time in the last run (profiled sessions) */
} ClNode;

typedef struct ClTensor {
        cl_mem mem;
        uint64_t valid_run; /* the run in which the device copy was written */
        bool constant;      /* uploaded once, valid in every run */
        bool host_needed;   /* read by the CPU (another backend, a graph output, the observer) */
} ClTensor;

typedef struct ClContext {
        ClRuntime *rt;
        const CvoptGraph *graph;
        ClTensor *tensors;
        ClNode *nodes;
        bool profile;
        bool observer; /* every output goes to the host for the observer */
        bool host_needed_known;
        bool started;
        uint32_t last_node;
        uint64_t run;
} ClContext;

typedef struct ClArg {
        size_t size;
        const void *value;
} ClArg;

#define CL_ARG_MEM(m) ((ClArg) { sizeof(cl_mem), &(m) })
#define CL_ARG_INT(v) ((ClArg) { sizeof(cl_int), &(cl_int) { (cl_int) (v) } })
#define CL_ARG_FLOAT(v) ((ClArg) { sizeof(cl_float), &(cl_float) { (cl_float) (v) } })

/* The device buffer of a graph tensor, created on first use (activations:
 * uninitialized; constants: uploaded). */
int cl_tensor_buffer(ClContext *c, int32_t tensor, cl_mem *ret_mem);
/* A read-only buffer holding a copy of data, owned by node. */
int cl_node_buffer(ClContext *c, ClNode *node, const void *data, size_t size_bytes, cl_mem *ret_mem);
/* Appends a launch of kernel_name with args; local NULL: driver's choice. */
int cl_node_launch(ClContext *c, ClNode *node, const char *kernel_name, cl_uint work_dim, const size_t *global,
                   const size_t *local, size_t n_args, const ClArg *args);

/* Picks the work-group size of the node's last launch (a 1-D-local kernel
 * over items work-items in dimension 0) by timing the candidates on the
 * device, or takes it from the on-disk cache. */
int cl_node_tune_last(ClContext *c, ClNode *node, size_t items);

/* Kernels compute window positions in int: a padded extent and a window
 * span must stay well inside it (the 2^30 leaves room for the sums with
 * strides and offsets; real images are a few thousand pixels). */
static inline bool cl_window_fits_int(int64_t in_h, int64_t in_w, int64_t pad_h, int64_t pad_w, int64_t span_h,
                                      int64_t span_w) {
        return in_h + pad_h < (1 << 30) && in_w + pad_w < (1 << 30) && span_h < (1 << 30) && span_w < (1 << 30);
}

struct QWindow;

/* Checks that a conv/pool window fits (cl_window_fits_int; else
 * -CVOPT_E_UNSUPPORTED naming the node) and writes the window fields of its
 * parameter block: input and output size, kernel, strides, pads,
 * dilations (defined in cl-ops-int8.c, used by the float ops too). */
int cl_window_params(const CvoptNode *n, const CvoptTensor *x, const struct QWindow *win, int32_t *params);

static inline size_t cl_round_up(size_t value, size_t multiple) {
        return (value + multiple - 1) / multiple * multiple;
}

/* Op families. supports: whether the op, with these shapes and
 * attributes, has a kernel; prepare: builds the node's launches (and marks
 * its activation inputs). */
bool cl_int8_supports(const CvoptGraph *g, const CvoptNode *n);
int cl_int8_prepare(ClContext *c, const CvoptNode *n, ClNode *node);
bool cl_float_supports(const CvoptGraph *g, const CvoptNode *n);
int cl_float_prepare(ClContext *c, const CvoptNode *n, ClNode *node);

/* SPDX-License-Identifier: MIT */
/* The OpenCL backend: the table the executor calls, the per-tensor device
 * buffers, and the run protocol that keeps activations on the device.
 *
 * Every activation tensor a supported node touches gets one device buffer
 * for the session's lifetime. A node's input is uploaded only when the
 * device copy was not written in this run (the first OpenCL node after the
 * CPU, or a graph input); its output is read back only when something on
 * the host reads it: a node run by another backend, a graph output, or the
 * observer. A chain of OpenCL nodes is thus one upload and one download,
 * and in between the queue runs without waiting. Host copies of tensors
 * that stay on the device are stale; backend.h allows this. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvopt/errors.h"
#include "exec/backend.h"
#include "macro.h"
#include "opencl/cl-backend.h"

int cl_tensor_buffer(ClContext *c, int32_t tensor, cl_mem *ret_mem) {
        ClTensor *ct = &c->tensors[tensor];
        const CvoptTensor *t = &c->graph->tensors[tensor];
        size_t bytes = cvopt_tensor_bytes(t);
        cl_int err;

        if (!ct->mem) {
                /* An empty tensor still gets a 1-byte buffer: a kernel argument
                 * must be a valid object. */
                ct->mem = cl_fault_hit(c->rt, "clCreateBuffer") ? NULL :
                          clCreateBuffer(c->rt->context, CL_MEM_READ_WRITE, MAX(bytes, 1u), NULL, &err);
                if (!ct->mem)
                        return cvopt_error_set(-CVOPT_E_BACKEND, "OpenCL buffer for '%s' (%zu bytes)", t->name, bytes);
                if (t->is_constant && bytes > 0) {
                        err = CL_CALL(c->rt, clEnqueueWriteBuffer, c->rt->queue, ct->mem, CL_TRUE, 0, bytes, t->data, 0,
                                      NULL, NULL);
                        if (err != CL_SUCCESS)
                                return cvopt_error_set(-CVOPT_E_BACKEND, "uploading '%s': %s", t->name,
                                                       cl_error_name(err));
                }
                ct->constant = t->is_constant;
        }
        *ret_mem = ct->mem;
        return 0;
}

int cl_node_buffer(ClContext *c, ClNode *node, const void *data, size_t size_bytes, cl_mem *ret_mem) {
        cl_int err = CL_SUCCESS;
        cl_mem mem;

        if (node->n_buffers >= CL_NODE_MAX_BUFFERS)
                return -E2BIG;
        mem = cl_fault_hit(c->rt, "clCreateBuffer") ? NULL :
              clCreateBuffer(c->rt->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, MAX(size_bytes, 1u),
                             (void *) data, &err);
        if (!mem)
                return cvopt_error_set(-CVOPT_E_BACKEND, "OpenCL parameter buffer (%zu bytes): %s", size_bytes,
                                       cl_error_name(err));
        node->buffers[node->n_buffers++] = mem;
        *ret_mem = mem;
        return 0;
}

int cl_node_launch(ClContext *c, ClNode *node, const char *kernel_name, cl_uint work_dim, const size_t *global,
                   const size_t *local, size_t n_args, const ClArg *args) {
        ClLaunch *l;
        cl_int err;

        if (node->n_launches >= CL_NODE_MAX_LAUNCHES)
                return -E2BIG;
        l = &node->launches[node->n_launches];
        *l = (ClLaunch) { .work_dim = work_dim };
        l->kernel = clCreateKernel(c->rt->program, kernel_name, &err);
        if (err != CL_SUCCESS)
                return cvopt_error_set(-CVOPT_E_BACKEND, "kernel %s: %s", kernel_name, cl_error_name(err));
        node->n_launches++;
        for (size_t i = 0; i < n_args; i++) {
                err = clSetKernelArg(l->kernel, (cl_uint) i, args[i].size, args[i].value);
                if (err != CL_SUCCESS)
                        return cvopt_error_set(-CVOPT_E_BACKEND, "kernel %s argument %zu: %s", kernel_name, i,
                                               cl_error_name(err));
        }
        for (cl_uint d = 0; d < work_dim; d++) {
                l->global[d] = global[d];
                l->local[d] = local ? local[d] : 0;
        }
        return 0;
}

static void node_release(ClNode *node) {
        for (uint32_t i = 0; i < node->n_launches; i++)
                clReleaseKernel(node->launches[i].kernel);
        for (uint32_t i = 0; i < node->n_buffers; i++)
                clReleaseMemObject(node->buffers[i]);
        *node = (ClNode) { 0 };
}

static void opencl_done(void *ctx) {
        ClContext *c = ctx;

        if (!c)
                return;
        if (c->rt && c->rt->queue)
                clFinish(c->rt->queue);
        for (uint32_t k = 0; c->nodes && k < c->graph->n_nodes; k++)
                node_release(&c->nodes[k]);
        for (uint32_t t = 0; c->tensors && t < c->graph->n_tensors; t++)
                if (c->tensors[t].mem)
                        clReleaseMemObject(c->tensors[t].mem);
        free(c->nodes);
        free(c->tensors);
        cl_runtime_free(c->rt);
        free(c);
}

static int opencl_init(const CvoptGraph *g, const CvoptSessionOptions *options, void **ret_ctx) {
        ClContext *c = calloc(1, sizeof(ClContext));
        const char *device = options ? options->opencl_device : NULL;
        int r;

        if (!c)
                return -ENOMEM;
        c->graph = g;
        c->profile = options && options->profile;
        c->observer = options && options->observer;
        c->tensors = calloc(MAX(g->n_tensors, 1u), sizeof(ClTensor));
        c->nodes = calloc(MAX(g->n_nodes, 1u), sizeof(ClNode));
        if (!c->tensors || !c->nodes) {
                opencl_done(c);
                return -ENOMEM;
        }
        if (!device)
                device = getenv("CVOPT_OPENCL_DEVICE");
        r = cl_runtime_open(device, options ? options->opencl_cache_dir : NULL, &c->rt);
        if (r < 0) {
                opencl_done(c);
                return r;
        }
        *ret_ctx = c;
        return 0;
}

/* Kernels index with int: every tensor must count fewer than 2^31 elements. */
static bool fits_int(const CvoptGraph *g, const CvoptNode *n) {
        for (uint32_t i = 0; i < n->n_inputs + n->n_outputs; i++) {
                const CvoptTensor *t = i < n->n_inputs ? cvopt_node_input(g, n, i) :
                                                         cvopt_node_output(g, n, i - n->n_inputs);

                if (t && (cvopt_tensor_count(t) < 0 || cvopt_tensor_count(t) > INT32_MAX))
                        return false;
        }
        return true;
}

static bool is_copy_op(const CvoptGraph *g, const CvoptNode *n) {
        const CvoptTensor *x = cvopt_node_input(g, n, 0), *y = cvopt_node_output(g, n, 0);

        switch (n->op) {
        case CVOPT_OP_FLATTEN:
        case CVOPT_OP_RESHAPE:
        case CVOPT_OP_SQUEEZE:
        case CVOPT_OP_UNSQUEEZE:
        case CVOPT_OP_IDENTITY:
        case CVOPT_OP_DROPOUT:
                return x && y && n->n_outputs == 1 && x->dtype == y->dtype &&
                       cvopt_tensor_bytes(x) == cvopt_tensor_bytes(y);
        default:
                return false;
        }
}

static bool opencl_supports_op(void *ctx, const CvoptGraph *g, const CvoptNode *n) {
        (void) ctx;
        if (!fits_int(g, n))
                return false;
        return is_copy_op(g, n) || cl_int8_supports(g, n) || cl_float_supports(g, n);
}

static int opencl_prepare_node(void *ctx, const CvoptGraph *g, const CvoptNode *n, uint32_t node_index) {
        ClContext *c = ctx;
        ClNode *node = &c->nodes[node_index];
        cl_mem mem;
        int r;

        if (is_copy_op(g, n)) {
                node->copy_only = true;
                node->activation_inputs = 1;
                r = cl_tensor_buffer(c, n->inputs[0], &mem);
                if (r >= 0)
                        r = cl_tensor_buffer(c, n->outputs[0], &mem);
        } else if (cvopt_op_is_quantized(n->op))
                r = cl_int8_prepare(c, n, node);
        else
                r = cl_float_prepare(c, n, node);
        if (r < 0) {
                node_release(node);
                return r;
        }
        node->prepared = true;
        return 0;
}

/* Which tensors the host reads: known once every node is prepared, so
 * computed at the first run. */
static void compute_host_needed(ClContext *c) {
        const CvoptGraph *g = c->graph;

        for (uint32_t i = 0; i < g->n_outputs; i++)
                c->tensors[g->outputs[i]].host_needed = true;
        for (uint32_t k = 0; k < g->n_nodes; k++) {
                const CvoptNode *n = &g->nodes[k];

                for (uint32_t s = 0; s < n->n_inputs; s++)
                        if (n->inputs[s] >= 0 && !c->nodes[k].prepared)
                                c->tensors[n->inputs[s]].host_needed = true;
                for (uint32_t s = 0; s < n->n_outputs && c->observer; s++)
                        c->tensors[n->outputs[s]].host_needed = true;
        }
        c->host_needed_known = true;
}

static int enqueue_node(ClContext *c, const CvoptNode *n, ClNode *node, const CvoptTensor *const *inputs) {
        ClRuntime *rt = c->rt;
        cl_int err;

        for (uint32_t s = 0; s < n->n_inputs && s < 32; s++) {
                ClTensor *ct;

                if (!(node->activation_inputs & (1u << s)) || n->inputs[s] < 0)
                        continue;
                ct = &c->tensors[n->inputs[s]];
                if (ct->constant || ct->valid_run == c->run)
                        continue;
                /* Blocking: the host buffer may be reused by the next CPU node
                 * before a non-blocking write would have read it. */
                err = CL_CALL(rt, clEnqueueWriteBuffer, rt->queue, ct->mem, CL_TRUE, 0, cvopt_tensor_bytes(inputs[s]),
                              inputs[s]->data, 0, NULL, NULL);
                if (err != CL_SUCCESS)
                        return cvopt_error_set(-CVOPT_E_BACKEND, "clEnqueueWriteBuffer: %s", cl_error_name(err));
                ct->valid_run = c->run;
        }
        if (node->copy_only) {
                size_t bytes = cvopt_tensor_bytes(inputs[0]);

                if (bytes == 0)
                        return 0;
                err = CL_CALL(rt, clEnqueueCopyBuffer, rt->queue, c->tensors[n->inputs[0]].mem,
                              c->tensors[n->outputs[0]].mem, 0, 0, bytes, 0, NULL, NULL);
                if (err != CL_SUCCESS)
                        return cvopt_error_set(-CVOPT_E_BACKEND, "clEnqueueCopyBuffer: %s", cl_error_name(err));
                return 0;
        }
        node->device_nsec = 0;
        for (uint32_t i = 0; i < node->n_launches; i++) {
                const ClLaunch *l = &node->launches[i];
                cl_event event = NULL;

                err = CL_CALL(rt, clEnqueueNDRangeKernel, rt->queue, l->kernel, l->work_dim, NULL, l->global,
                              l->local[0] ? l->local : NULL, 0, NULL, c->profile ? &event : NULL);
                if (err != CL_SUCCESS)
                        return cvopt_error_set(-CVOPT_E_BACKEND, "clEnqueueNDRangeKernel: %s", cl_error_name(err));
                if (event) {
                        cl_ulong start = 0, end = 0;

                        clWaitForEvents(1, &event);
                        clGetEventProfilingInfo(event, CL_PROFILING_COMMAND_START, sizeof(start), &start, NULL);
                        clGetEventProfilingInfo(event, CL_PROFILING_COMMAND_END, sizeof(end), &end, NULL);
                        node->device_nsec += end > start ? end - start : 0;
                        clReleaseEvent(event);
                }
        }
        return 0;
}

static int opencl_run_node(void *ctx, const CvoptGraph *g, const CvoptNode *n, uint32_t node_index,
                           const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        ClContext *c = ctx;
        ClNode *node = &c->nodes[node_index];
        ClRuntime *rt = c->rt;
        cl_int err;
        int r;

        (void) g;
        if (!node->prepared)
                return cvopt_error_set(-CVOPT_E_BACKEND, "node '%s' was not prepared for OpenCL", n->name);
        if (!c->host_needed_known)
                compute_host_needed(c);
        /* Nodes run in graph order: going back (or repeating) starts a run. */
        if (!c->started || node_index <= c->last_node)
                c->run++;
        c->started = true;
        c->last_node = node_index;

        r = enqueue_node(c, n, node, inputs);
        if (r < 0)
                return r;
        for (uint32_t s = 0; s < n->n_outputs; s++) {
                ClTensor *ct = &c->tensors[n->outputs[s]];

                ct->valid_run = c->run;
                if (!ct->host_needed)
                        continue;
                err = CL_CALL(rt, clEnqueueReadBuffer, rt->queue, ct->mem, CL_TRUE, 0, cvopt_tensor_bytes(outputs[s]),
                              outputs[s]->data, 0, NULL, NULL);
                if (err != CL_SUCCESS)
                        return cvopt_error_set(-CVOPT_E_BACKEND, "clEnqueueReadBuffer: %s", cl_error_name(err));
                if (cvopt_tensor_bytes(outputs[s]) > 0 && cl_fault_hit(rt, "wrong-output"))
                        ((uint8_t *) outputs[s]->data)[0] ^= 1;
        }
        /* Profiled sessions time each node: wait for it to finish. */
        bool finish_fault = cl_fault_hit(rt, "clFinish");
        if (c->profile || finish_fault) {
                err = finish_fault ? CL_OUT_OF_RESOURCES : clFinish(rt->queue);
                if (err != CL_SUCCESS)
                        return cvopt_error_set(-CVOPT_E_BACKEND, "clFinish: %s", cl_error_name(err));
        }
        return 0;
}

static const char *opencl_device_name(void *ctx) {
        return ((ClContext *) ctx)->rt->device_name;
}

static uint64_t opencl_node_device_nsec(void *ctx, uint32_t node_index) {
        return ((ClContext *) ctx)->nodes[node_index].device_nsec;
}

const Backend backend_opencl = {
        .name = "opencl",
        .init = opencl_init,
        .done = opencl_done,
        .supports_op = opencl_supports_op,
        .prepare_node = opencl_prepare_node,
        .run_node = opencl_run_node,
        .device_name = opencl_device_name,
        .node_device_nsec = opencl_node_device_nsec,
        .cpu_fallback = true,
};

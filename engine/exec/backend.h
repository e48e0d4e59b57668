/* SPDX-License-Identifier: MIT */
#pragma once

/* A compute backend is a const table of functions and an opaque context the
 * table's init creates for one session (CONVENTIONS rule 5): the executor
 * never asks which backend it talks to, it asks the table. Adding a backend
 * (int8 SIMD CPU, OpenCL) is adding a table to backend.c.
 *
 * The contract, in the executor's order of calls:
 *
 *   init(graph, options)          once per session: detect the device, make
 *                                 the context; may fail (no device), and the
 *                                 session then fails with that error.
 *   supports_op(ctx, graph, node) once per node at session creation: whether
 *                                 this backend will run the node. A node it
 *                                 declines runs on the CPU reference backend.
 *   prepare_node(ctx, graph, node, node_index)
 *                                 optional, once per supported node, after
 *                                 the session planned its buffers: pack
 *                                 weights, build kernels, upload constants.
 *                                 Failure here is not fatal: the node moves
 *                                 to the CPU reference backend for good.
 *   run_node(ctx, graph, node, node_index, inputs, outputs)
 *                                 every run, per supported node, in order.
 *                                 Inputs and outputs are host tensors (shape
 *                                 set, data pointing at host memory; absent
 *                                 optional inputs NULL), and the outputs must
 *                                 hold the result when it returns, because
 *                                 the next node may run on another backend.
 *                                 A backend keeping device copies does so
 *                                 inside its context. A failure (negative
 *                                 return) makes the executor run this node
 *                                 on the CPU reference backend instead and
 *                                 count a fallback; the session does not
 *                                 fail unless the reference fails too.
 *   done(ctx)                     once, when the session is freed.
 *
 * The graph passed in is the session's: it outlives the context, and does
 * not change while the session lives, so a backend may keep pointers into
 * it and index per-node state by node_index. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvopt/engine.h"
#include "cvopt/graph.h"

typedef struct Backend {
        const char *name;
        int (*init)(const CvoptGraph *g, const CvoptSessionOptions *options, void **ret_ctx);
        void (*done)(void *ctx);
        bool (*supports_op)(void *ctx, const CvoptGraph *g, const CvoptNode *n);
        int (*prepare_node)(void *ctx, const CvoptGraph *g, const CvoptNode *n, uint32_t node_index);
        int (*run_node)(void *ctx, const CvoptGraph *g, const CvoptNode *n, uint32_t node_index,
                        const CvoptTensor *const *inputs, CvoptTensor *const *outputs);
} Backend;

/* The scalar fp32/int8 reference operators of engine/cpu: runs every op that
 * has a reference implementation, and is the fallback for every other
 * backend. */
extern const Backend backend_cpu_ref;

/* int8 QConv/QGemm on AVX2 or AVX-512 VNNI (engine/cpu/x86); declines
 * everything else (all of it on a CPU without AVX2). */
extern const Backend backend_cpu_simd;

/* The backend called name ("cpu" is an alias of "cpu-ref"), or NULL. */
const Backend *backend_find(const char *name);

/* cvopt_session_new() with a backend table given directly instead of by
 * name: for tests that check a backend (or the executor's fallback) against
 * the reference, and for "auto", which tries the candidates in turn. */
int session_new_with_backend(const CvoptGraph *g, const CvoptSessionOptions *options, const Backend *backend,
                             CvoptSession **ret_session);

/* Writes the names of all backends ("cpu, cpu-ref, ...") into buf, for
 * error messages; returns buf. */
char *backend_names(char *buf, size_t size);

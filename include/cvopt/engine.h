/* SPDX-License-Identifier: MIT */
#pragma once

/* Running a graph: graph passes that prepare it, and sessions that run it.
 * A session owns the activation buffers for one graph and runs it on a
 * backend; the graph must outlive the session and must not change under it. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvopt/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Passes. Each leaves a valid graph or fails with detail and leaves the
 * graph unchanged in meaning. */

/* Walks nodes in order, computing every output's dtype and shape; nodes
 * whose inputs are all constant (and Shape of a known shape) are evaluated
 * and become constants. Fails on a shape it cannot know ahead of time. */
int cvopt_graph_infer_shapes(CvoptGraph *g);
/* Folds inference BatchNormalization into the preceding Conv/Gemm. */
int cvopt_graph_fold_batchnorm(CvoptGraph *g);
/* Fuses Relu/Clip/LeakyRelu/HardSwish/Sigmoid/HardSigmoid/Tanh following a
 * Conv/Gemm/MatMul into that node (attributes "activation", "activation_alpha",
 * "activation_beta", "activation_min", "activation_max"). */
int cvopt_graph_fuse_activations(CvoptGraph *g);
/* Removes Identity/Dropout nodes by rewiring their consumers. */
int cvopt_graph_remove_identities(CvoptGraph *g);
/* All of the above in the right order, then prune_unused. */
int cvopt_graph_optimize(CvoptGraph *g);

typedef struct CvoptSession CvoptSession;

/* Called after each node runs, with its outputs (valid only during the
 * call: buffers are reused). The optimizer uses it to collect activation
 * statistics and layer inputs without the executor keeping every tensor. */
typedef void (*CvoptNodeObserver)(void *userdata, const CvoptGraph *g, uint32_t node_index,
                                  const CvoptTensor *const *inputs, const CvoptTensor *const *outputs);

typedef struct CvoptSessionOptions {
        const char *backend; /* "cpu" (default), later "opencl", "auto" */
        int threads;         /* 0: backend default */
        bool profile;        /* time every node of every run (cvopt_session_node_time_nsec) */
        CvoptNodeObserver observer;
        void *observer_userdata;
} CvoptSessionOptions;

int cvopt_session_new(const CvoptGraph *g, const CvoptSessionOptions *options,
                      CvoptSession **ret_session);
CvoptSession *cvopt_session_free(CvoptSession *s);

uint32_t cvopt_session_n_inputs(const CvoptSession *s);
uint32_t cvopt_session_n_outputs(const CvoptSession *s);
/* Input tensors have buffers (data) the caller fills before a run. */
CvoptTensor *cvopt_session_input(CvoptSession *s, uint32_t index);
const CvoptTensor *cvopt_session_output(const CvoptSession *s, uint32_t index);

int cvopt_session_run(CvoptSession *s);

/* Name of the backend that ran the last run ("cpu-ref", ...): the one
 * chosen by options->backend; per node, see below. */
const char *cvopt_session_backend_name(const CvoptSession *s);

/* Nodes are those of the session's graph, by index. Name of the backend
 * that ran node_index in the last run, or will run it if there was none
 * yet (an op the chosen backend declines, or whose device call failed,
 * runs on "cpu-ref"); NULL if out of range. */
const char *cvopt_session_node_backend_name(const CvoptSession *s, uint32_t node_index);
/* Monotonic nanoseconds node_index took in the last run; 0 unless the
 * session was made with options->profile, or if out of range. */
uint64_t cvopt_session_node_time_nsec(const CvoptSession *s, uint32_t node_index);
/* Bytes of the activation arena planned at creation: tensors whose
 * lifetimes do not overlap share memory (inputs are not included). */
size_t cvopt_session_activation_bytes(const CvoptSession *s);
/* Node runs that failed on the chosen backend and were redone on the CPU
 * reference, since the session was made. */
uint64_t cvopt_session_n_fallbacks(const CvoptSession *s);

#ifdef __cplusplus
}
#endif

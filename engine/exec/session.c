/* SPDX-License-Identifier: MIT */
/* The executor. A session is built once per loaded graph: it checks that
 * every tensor has a known shape, plans one arena for all activations by
 * liveness, gives each graph input its own buffer, decides per node which
 * backend runs it, and builds the per-node tensor pointer lists. A run is
 * then a walk over the nodes with no allocation, so its latency does not
 * depend on the allocator, and a daemon's memory stays flat. */
#include <stdio.h>
#include <time.h>

#include "cvopt/engine.h"
#include "cvopt/errors.h"
#include "exec/backend.h"
#include "exec/graph-util.h"
#include "exec/memory-plan.h"
#include "macro.h"

typedef struct SessionNode {
        const CvoptTensor **inputs; /* into CvoptSession.tensors; NULL for absent inputs */
        CvoptTensor **outputs;
        bool on_primary; /* run by the chosen backend, else by cpu-ref */
        bool ran_on_primary; /* in the last run (before any: the plan) */
        uint64_t time_nsec;
} SessionNode;

struct CvoptSession {
        const CvoptGraph *graph;
        const Backend *backend;
        void *backend_ctx;
        bool backend_ready;
        void *reference_ctx;
        bool reference_ready;

        /* Copies of the graph's tensors: same names, dims and quantization
         * (pointers into the graph, never freed here), data pointing at the
         * graph's constants, into the arena, or at an input buffer. */
        CvoptTensor *tensors;
        void *arena;
        size_t arena_bytes;
        void **input_buffers;

        SessionNode *nodes;
        const CvoptTensor **input_slots; /* storage behind nodes[].inputs */
        CvoptTensor **output_slots;

        bool profile;
        uint64_t n_fallbacks;
        CvoptNodeObserver observer;
        void *observer_userdata;
};

CvoptSession *cvopt_session_free(CvoptSession *s) {
        if (!s)
                return NULL;
        if (s->backend_ready && s->backend->done)
                s->backend->done(s->backend_ctx);
        if (s->reference_ready && backend_cpu_ref.done)
                backend_cpu_ref.done(s->reference_ctx);
        if (s->input_buffers)
                for (uint32_t i = 0; i < s->graph->n_inputs; i++)
                        free(s->input_buffers[i]);
        free(s->input_buffers);
        free(s->arena);
        free(s->tensors);
        free(s->nodes);
        free(s->input_slots);
        free(s->output_slots);
        free(s);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptSession *, cvopt_session_free);

/* Every tensor the executor touches must have a fixed shape and a dtype
 * with an in-memory size, or there is nothing to plan. */
static int check_tensor_ready(const CvoptTensor *t) {
        if (!t->has_shape || cvopt_tensor_count(t) < 0)
                return cvopt_error_set(-CVOPT_E_SHAPE,
                                       "tensor '%s' has no known shape: run cvopt_graph_infer_shapes() "
                                       "(or cvopt_graph_optimize()) before making a session",
                                       t->name);
        if (cvopt_dtype_size(t->dtype) == 0)
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "tensor '%s': dtype %s cannot be computed with",
                                       t->name, cvopt_dtype_name(t->dtype));
        if (t->is_constant && !t->data && cvopt_tensor_count(t) != 0)
                return cvopt_error_set(-CVOPT_E_FORMAT, "constant '%s' has no data", t->name);
        return 0;
}

static int session_check_graph(const CvoptGraph *g) {
        int r;

        r = cvopt_graph_validate(g);
        if (r < 0)
                return r;
        for (uint32_t k = 0; k < g->n_nodes; k++) {
                const CvoptNode *n = &g->nodes[k];

                for (uint32_t s = 0; s < n->n_inputs; s++) {
                        const CvoptTensor *t = cvopt_node_input(g, n, s);

                        if (t && (r = check_tensor_ready(t)) < 0)
                                return cvopt_error_prefix(r, "node '%s'", n->name);
                }
                for (uint32_t s = 0; s < n->n_outputs; s++) {
                        r = check_tensor_ready(cvopt_node_output(g, n, s));
                        if (r < 0)
                                return cvopt_error_prefix(r, "node '%s'", n->name);
                }
        }
        for (uint32_t i = 0; i < g->n_inputs; i++) {
                r = check_tensor_ready(&g->tensors[g->inputs[i]]);
                if (r < 0)
                        return cvopt_error_prefix(r, "graph input %u", i);
        }
        for (uint32_t i = 0; i < g->n_outputs; i++) {
                r = check_tensor_ready(&g->tensors[g->outputs[i]]);
                if (r < 0)
                        return cvopt_error_prefix(r, "graph output %u", i);
        }
        return 0;
}

/* Lays out every node output in the arena by lifetime. Graph inputs have
 * their own buffers (the caller may fill them once and run many times), and
 * graph outputs live to the end of the run (the caller reads them after). */
static int session_plan_memory(CvoptSession *s) {
        const CvoptGraph *g = s->graph;
        _cleanup_free_ MemoryPlanItem *items = calloc(MAX(g->n_tensors, 1u), sizeof(MemoryPlanItem));
        _cleanup_free_ int32_t *item_of = malloc(MAX(g->n_tensors, 1u) * sizeof(int32_t));
        size_t n_items = 0;
        int r;

        if (!items || !item_of)
                return -ENOMEM;
        for (uint32_t i = 0; i < g->n_tensors; i++)
                item_of[i] = -1;
        for (uint32_t k = 0; k < g->n_nodes; k++) {
                const CvoptNode *n = &g->nodes[k];

                for (uint32_t slot = 0; slot < n->n_outputs; slot++) {
                        int32_t t = n->outputs[slot];

                        item_of[t] = (int32_t) n_items;
                        items[n_items++] = (MemoryPlanItem) {
                                .size_bytes = cvopt_tensor_bytes(&g->tensors[t]),
                                .first = k,
                                .last = k,
                        };
                }
                for (uint32_t slot = 0; slot < n->n_inputs; slot++) {
                        int32_t t = n->inputs[slot];

                        if (t >= 0 && item_of[t] >= 0)
                                items[item_of[t]].last = k;
                }
        }
        for (uint32_t i = 0; i < g->n_outputs; i++)
                if (item_of[g->outputs[i]] >= 0)
                        items[item_of[g->outputs[i]]].last = g->n_nodes;

        r = memory_plan(items, n_items, &s->arena_bytes);
        if (r < 0)
                return cvopt_error_set(r, "planning %zu activation tensors", n_items);
        if (s->arena_bytes > 0) {
                s->arena = aligned_alloc(MEMORY_PLAN_ALIGNMENT, s->arena_bytes);
                if (!s->arena)
                        return cvopt_error_set(-ENOMEM, "cannot allocate %zu bytes of activations",
                                               s->arena_bytes);
        }
        /* With no arena every planned tensor is empty: data stays NULL. */
        for (uint32_t i = 0; i < g->n_tensors && s->arena; i++)
                if (item_of[i] >= 0)
                        s->tensors[i].data = (uint8_t *) s->arena + items[item_of[i]].offset;
        return 0;
}

static int session_alloc_inputs(CvoptSession *s) {
        const CvoptGraph *g = s->graph;

        s->input_buffers = calloc(MAX(g->n_inputs, 1u), sizeof(void *));
        if (!s->input_buffers)
                return -ENOMEM;
        for (uint32_t i = 0; i < g->n_inputs; i++) {
                CvoptTensor *t = &s->tensors[g->inputs[i]];
                size_t bytes = ALIGN_TO(cvopt_tensor_bytes(t), MEMORY_PLAN_ALIGNMENT);

                /* Zeroed, so a caller that forgets to fill an input gets a
                 * deterministic (wrong) answer rather than heap garbage. */
                s->input_buffers[i] = aligned_alloc(MEMORY_PLAN_ALIGNMENT, MAX(bytes, MEMORY_PLAN_ALIGNMENT));
                if (!s->input_buffers[i])
                        return -ENOMEM;
                memset(s->input_buffers[i], 0, MAX(bytes, MEMORY_PLAN_ALIGNMENT));
                t->data = s->input_buffers[i];
        }
        return 0;
}

static int session_build_nodes(CvoptSession *s) {
        const CvoptGraph *g = s->graph;
        size_t n_in = 0, n_out = 0;

        for (uint32_t k = 0; k < g->n_nodes; k++) {
                n_in += g->nodes[k].n_inputs;
                n_out += g->nodes[k].n_outputs;
        }
        s->nodes = calloc(MAX(g->n_nodes, 1u), sizeof(SessionNode));
        s->input_slots = calloc(MAX(n_in, 1u), sizeof(CvoptTensor *));
        s->output_slots = calloc(MAX(n_out, 1u), sizeof(CvoptTensor *));
        if (!s->nodes || !s->input_slots || !s->output_slots)
                return -ENOMEM;
        n_in = n_out = 0;
        for (uint32_t k = 0; k < g->n_nodes; k++) {
                const CvoptNode *n = &g->nodes[k];
                SessionNode *sn = &s->nodes[k];
                bool reference_runs = backend_cpu_ref.supports_op(s->reference_ctx, g, n);

                sn->inputs = &s->input_slots[n_in];
                sn->outputs = &s->output_slots[n_out];
                for (uint32_t i = 0; i < n->n_inputs; i++)
                        sn->inputs[i] = n->inputs[i] >= 0 ? &s->tensors[n->inputs[i]] : NULL;
                for (uint32_t i = 0; i < n->n_outputs; i++)
                        sn->outputs[i] = &s->tensors[n->outputs[i]];
                n_in += n->n_inputs;
                n_out += n->n_outputs;

                sn->on_primary = s->backend != &backend_cpu_ref &&
                                 s->backend->supports_op(s->backend_ctx, g, n);
                if (sn->on_primary && s->backend->prepare_node &&
                    s->backend->prepare_node(s->backend_ctx, g, n, k) < 0 && reference_runs)
                        sn->on_primary = false; /* the reference can do it: not worth failing over */
                if (!sn->on_primary && !reference_runs)
                        return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "node '%s' (op %s): no implementation",
                                               n->name, graph_op_name(n->op));
                /* Until the first run, report the plan. */
                sn->ran_on_primary = sn->on_primary;
        }
        return 0;
}

int cvopt_session_new(const CvoptGraph *g, const CvoptSessionOptions *options, CvoptSession **ret_session) {
        const Backend *backend = backend_find(options ? options->backend : NULL);

        if (!backend) {
                char names[256];

                return cvopt_error_set(-EINVAL, "unknown backend '%s' (known: %s)", options->backend,
                                       backend_names(names, sizeof(names)));
        }
        return session_new_with_backend(g, options, backend, ret_session);
}

int session_new_with_backend(const CvoptGraph *g, const CvoptSessionOptions *options, const Backend *backend,
                             CvoptSession **ret_session) {
        static const CvoptSessionOptions default_options = { 0 };
        _cleanup_(cvopt_session_freep) CvoptSession *s = NULL;
        int r;

        if (!g || !backend || !ret_session)
                return cvopt_error_set(-EINVAL, "cvopt_session_new: graph, backend and ret_session are required");
        if (!options)
                options = &default_options;
        r = session_check_graph(g);
        if (r < 0)
                return r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->graph = g;
        s->backend = backend;
        s->profile = options->profile;
        s->observer = options->observer;
        s->observer_userdata = options->observer_userdata;
        s->tensors = calloc(MAX(g->n_tensors, 1u), sizeof(CvoptTensor));
        if (!s->tensors)
                return -ENOMEM;
        for (uint32_t i = 0; i < g->n_tensors; i++) {
                s->tensors[i] = g->tensors[i];
                s->tensors[i].owns_data = false;
                if (!g->tensors[i].is_constant)
                        s->tensors[i].data = NULL;
        }

        r = backend_cpu_ref.init(g, options, &s->reference_ctx);
        if (r < 0)
                return cvopt_error_prefix(r, "backend cpu-ref");
        s->reference_ready = true;
        if (backend != &backend_cpu_ref) {
                r = backend->init(g, options, &s->backend_ctx);
                if (r < 0)
                        return cvopt_error_prefix(r, "backend %s", backend->name);
                s->backend_ready = true;
        }

        r = session_alloc_inputs(s);
        if (r < 0)
                return r;
        r = session_plan_memory(s);
        if (r < 0)
                return r;
        r = session_build_nodes(s);
        if (r < 0)
                return r;
        *ret_session = TAKE_PTR(s);
        return 0;
}

static uint64_t now_nsec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * UINT64_C(1000000000) + (uint64_t) ts.tv_nsec;
}

int cvopt_session_run(CvoptSession *s) {
        const CvoptGraph *g = s->graph;

        for (uint32_t k = 0; k < g->n_nodes; k++) {
                const CvoptNode *n = &g->nodes[k];
                SessionNode *sn = &s->nodes[k];
                uint64_t start = s->profile ? now_nsec() : 0;
                int r = -1;

                sn->ran_on_primary = false;
                if (sn->on_primary) {
                        r = s->backend->run_node(s->backend_ctx, g, n, k, sn->inputs, sn->outputs);
                        if (r >= 0)
                                sn->ran_on_primary = true;
                        else if (backend_cpu_ref.supports_op(s->reference_ctx, g, n)) {
                                /* A device that failed once (lost context, out
                                 * of memory) is likely to fail again: this node
                                 * stays on the CPU from now on. */
                                sn->on_primary = false;
                                s->n_fallbacks++;
                        } else
                                return cvopt_error_prefix(r, "node '%s' (op %s) on %s", n->name,
                                                          graph_op_name(n->op), s->backend->name);
                }
                if (!sn->ran_on_primary) {
                        r = backend_cpu_ref.run_node(s->reference_ctx, g, n, k, sn->inputs, sn->outputs);
                        if (r < 0)
                                return cvopt_error_prefix(r, "node '%s' (op %s)", n->name, graph_op_name(n->op));
                }
                if (s->profile)
                        sn->time_nsec = now_nsec() - start;
                if (s->observer)
                        s->observer(s->observer_userdata, g, k, sn->inputs, (const CvoptTensor *const *) sn->outputs);
        }
        return 0;
}

uint32_t cvopt_session_n_inputs(const CvoptSession *s) {
        return s->graph->n_inputs;
}

uint32_t cvopt_session_n_outputs(const CvoptSession *s) {
        return s->graph->n_outputs;
}

CvoptTensor *cvopt_session_input(CvoptSession *s, uint32_t index) {
        if (index >= s->graph->n_inputs)
                return NULL;
        return &s->tensors[s->graph->inputs[index]];
}

const CvoptTensor *cvopt_session_output(const CvoptSession *s, uint32_t index) {
        if (index >= s->graph->n_outputs)
                return NULL;
        return &s->tensors[s->graph->outputs[index]];
}

const char *cvopt_session_backend_name(const CvoptSession *s) {
        return s->backend->name;
}

const char *cvopt_session_node_backend_name(const CvoptSession *s, uint32_t node_index) {
        if (node_index >= s->graph->n_nodes)
                return NULL;
        return s->nodes[node_index].ran_on_primary ? s->backend->name : backend_cpu_ref.name;
}

uint64_t cvopt_session_node_time_nsec(const CvoptSession *s, uint32_t node_index) {
        if (node_index >= s->graph->n_nodes)
                return 0;
        return s->nodes[node_index].time_nsec;
}

size_t cvopt_session_activation_bytes(const CvoptSession *s) {
        return s->arena_bytes;
}

uint64_t cvopt_session_n_fallbacks(const CvoptSession *s) {
        return s->n_fallbacks;
}

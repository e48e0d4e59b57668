/* SPDX-License-Identifier: MIT */
#include <math.h>

#include "equalize.h"
#include "macro.h"

bool graph_has_depthwise(const CvoptGraph *g) {
        for (uint32_t k = 0; k < g->n_nodes; k++) {
                const CvoptNode *n = &g->nodes[k];
                const CvoptTensor *w = cvopt_node_input(g, n, 1);
                int64_t group = cvopt_node_get_int(n, "group", 1);

                if (n->op == CVOPT_OP_CONV && w && w->ndim == 4 && group > 1 && w->dims[1] == 1)
                        return true;
        }
        return false;
}

static bool sole_consumer(const CvoptGraph *g, int32_t t, uint32_t *ret) {
        int found = 0;

        for (uint32_t i = 0; i < g->n_outputs; i++)
                if (g->outputs[i] == t)
                        return false;
        for (uint32_t k = 0; k < g->n_nodes; k++)
                for (uint32_t s = 0; s < g->nodes[k].n_inputs; s++)
                        if (g->nodes[k].inputs[s] == t) {
                                if (found++)
                                        return false;
                                *ret = k;
                        }
        return found == 1;
}

/* A constant float Conv whose fused activation (if any) is homogeneous. */
static bool is_scalable_conv(const CvoptGraph *g, const CvoptNode *n) {
        const CvoptTensor *w = cvopt_node_input(g, n, 1), *b = cvopt_node_input(g, n, 2);
        const char *act = cvopt_node_get_string(n, "activation", NULL);

        return n->op == CVOPT_OP_CONV && w && w->is_constant && w->dtype == CVOPT_DTYPE_FLOAT32 && w->ndim == 4 &&
               (!b || (b->is_constant && b->dtype == CVOPT_DTYPE_FLOAT32 && cvopt_tensor_count(b) == w->dims[0])) &&
               (!act || streq(act, "Relu") || streq(act, "LeakyRelu"));
}

/* The Conv that A's output reaches through homogeneous per-channel ops. */
static bool find_pair(const CvoptGraph *g, uint32_t a, uint32_t *ret_b) {
        int32_t t = g->nodes[a].outputs[0];

        for (int hops = 0; hops < 8; hops++) {
                uint32_t c = 0;

                if (!sole_consumer(g, t, &c))
                        return false;
                const CvoptNode *n = &g->nodes[c];
                if (n->inputs[0] != t)
                        return false;
                switch (n->op) {
                case CVOPT_OP_RELU:
                case CVOPT_OP_LEAKY_RELU:
                case CVOPT_OP_MAX_POOL:
                case CVOPT_OP_AVERAGE_POOL:
                case CVOPT_OP_IDENTITY:
                        t = n->outputs[0];
                        continue;
                case CVOPT_OP_CONV:
                        if (!is_scalable_conv(g, n))
                                return false;
                        *ret_b = c;
                        return true;
                default:
                        return false;
                }
        }
        return false;
}

/* Makes weights/bias of node k privately owned, so scaling them never
 * writes into a mapped file or a tensor another node shares. */
static int own_data(CvoptTensor *t) {
        void *copy;

        if (!t || t->owns_data)
                return 0;
        copy = malloc(MAX(cvopt_tensor_bytes(t), 1u));
        if (!copy)
                return -ENOMEM;
        memcpy(copy, t->data, cvopt_tensor_bytes(t));
        t->data = copy;
        t->owns_data = true;
        return 0;
}

static int equalize_pair(CvoptGraph *g, uint32_t a, uint32_t b) {
        CvoptTensor *wa = cvopt_node_input(g, &g->nodes[a], 1), *ba = cvopt_node_input(g, &g->nodes[a], 2);
        CvoptTensor *wb = cvopt_node_input(g, &g->nodes[b], 1);
        const int64_t channels = wa->dims[0], per_a = wa->dims[1] * wa->dims[2] * wa->dims[3];
        const int64_t group_b = cvopt_node_get_int(&g->nodes[b], "group", 1);
        const int64_t out_b = wb->dims[0], in_b = wb->dims[1], window_b = wb->dims[2] * wb->dims[3];
        int r;

        /* A's output channel i is B's input channel i: in B's group
         * i / in_b, at slice i % in_b of each of that group's filters. */
        if (group_b < 1 || in_b * group_b != channels || out_b % group_b != 0)
                return 0;
        if ((r = own_data(wa)) < 0 || (r = own_data(ba)) < 0 || (r = own_data(wb)) < 0)
                return r;
        float *da = wa->data, *db = wb->data, *dba = ba ? ba->data : NULL;
        const int64_t out_per_group = out_b / group_b;
        for (int64_t i = 0; i < channels; i++) {
                const int64_t gi = i / in_b, slice = i % in_b;
                double ra = 0, rb = 0, s;

                for (int64_t k = 0; k < per_a; k++)
                        ra = MAX(ra, fabs(da[i * per_a + k]));
                for (int64_t o = gi * out_per_group; o < (gi + 1) * out_per_group; o++)
                        for (int64_t k = 0; k < window_b; k++)
                                rb = MAX(rb, fabs(db[(o * in_b + slice) * window_b + k]));
                if (!(ra > 0) || !(rb > 0))
                        continue;
                s = sqrt(ra / rb);
                /* Bounded so that nothing underflows or blows up on a dead
                 * channel. */
                s = CLAMP(s, 1e-4, 1e4);
                for (int64_t k = 0; k < per_a; k++)
                        da[i * per_a + k] = (float) (da[i * per_a + k] / s);
                if (dba)
                        dba[i] = (float) (dba[i] / s);
                for (int64_t o = gi * out_per_group; o < (gi + 1) * out_per_group; o++)
                        for (int64_t k = 0; k < window_b; k++)
                                db[(o * in_b + slice) * window_b + k] = (float) (db[(o * in_b + slice) * window_b + k] * s);
        }
        return 1;
}

int equalize_graph(CvoptGraph *g, unsigned iterations) {
        int pairs = 0, r;

        for (unsigned it = 0; it < iterations; it++)
                for (uint32_t a = 0; a < g->n_nodes; a++) {
                        uint32_t b;

                        if (!is_scalable_conv(g, &g->nodes[a]) || !find_pair(g, a, &b))
                                continue;
                        r = equalize_pair(g, a, b);
                        if (r < 0)
                                return r;
                        if (it == 0)
                                pairs += r;
                }
        return pairs;
}

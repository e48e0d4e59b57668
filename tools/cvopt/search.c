/* SPDX-License-Identifier: MIT */
#include <stdio.h>

#include "eval.h"
#include "macro.h"
#include "optimize.h"
#include "prune/prune.h"
#include "quant/gptq.h"
#include "search.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptModel *, cvopt_model_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(GptqStats *, gptq_stats_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(CalibrationStats *, calibration_stats_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(QuantizeReport *, quantize_report_free);

const LayerChoice search_choices[SEARCH_CHOICES] = {
        { 8, 0 }, { 8, 0.5 }, { 4, 0 }, { 4, 0.5 }, { 8, 0.75 }, { 4, 0.75 },
};

void sensitivity_done(Sensitivity *s) {
        for (uint32_t i = 0; i < s->n_layers && s->names; i++)
                free(s->names[i]);
        free(s->names);
        free(s->nodes);
        free(s->weights);
        free(s->top1);
        free(s->bytes);
        memset(s, 0, sizeof(*s));
}

void plan_done(Plan *p) {
        free(p->node_bits);
        free(p->node_sparsity);
        memset(p, 0, sizeof(*p));
}

/* Bytes a layer's weights take in the .cvm: dense packed values, or a
 * bitmask plus the non-zero values when that is smaller (what the writer
 * picks). Per-channel scales and the int32 bias come on top. */
static uint64_t estimate_bytes(uint64_t weights, uint64_t channels, const LayerChoice *c) {
        double dense = (double) weights * c->bits / 8.0;
        double sparse = (double) weights / 8.0 + (double) weights * (1.0 - c->sparsity) * (c->bits <= 4 ? 1.0 : c->bits / 8.0);

        return (uint64_t) MIN(dense, sparse) + channels * 8;
}

/* Models are evaluated many times here: quietly, on the analysis set. */
static int evaluate(const SearchContext *c, const CvoptModel *m, double *ret_top1) {
        EvalResult r = {};
        int k = eval_graph(m->graph, c->analysis->count, c->n_classes, data_source_fetch, c->analysis,
                           &(EvalOptions) { .backend = c->backend }, &r);

        if (k < 0)
                return k;
        *ret_top1 = r.top1;
        eval_result_done(&r);
        return 0;
}

typedef struct Prepared {
        CalibrationStats *calibration; /* of the float graph */
        GptqStats *hessians;           /* of the float graph, every layer */
} Prepared;

static int build(const SearchContext *c, const Prepared *prep, const Plan *p, CvoptModel **ret, QuantizeReport **ret_report) {
        _cleanup_(cvopt_model_freep) CvoptModel *copy = NULL;
        const CvoptGraph *g = c->float_model->graph;
        bool any_sparse = false, any_low = false;
        int r;

        r = model_clone(c->float_model, &copy);
        if (r < 0)
                return r;
        for (uint32_t k = 0; k < g->n_nodes; k++) {
                any_sparse |= p->node_sparsity[k] > 0;
                any_low |= p->node_bits[k] && p->node_bits[k] < 8;
        }
        if (any_sparse) {
                _cleanup_free_ double *amount = malloc(g->n_nodes * sizeof(double));
                PruneSpec spec = { .method = PRUNE_OBS };
                PruneResult pr = {};

                if (!amount)
                        return -ENOMEM;
                for (uint32_t k = 0; k < g->n_nodes; k++)
                        amount[k] = p->node_sparsity[k] > 0 ? p->node_sparsity[k] : 0;
                r = prep && prep->hessians ? prune_graph_with(copy->graph, &spec, amount, prep->hessians, &pr)
                                           : prune_graph(copy->graph, &spec, amount, c->calib->count, data_source_feed,
                                                         c->calib, &pr);
                if (r < 0)
                        return r;
                prune_result_done(&pr);
        }
        PipelineOptions options = {
                .quantize = { .calibration = c->calibration, .weight_bits = 8, .bias_correction = true,
                              .node_bits = p->node_bits },
                .gptq = any_low,
                .calibration = prep ? prep->calibration : NULL,
                /* Hessians of the float graph are still those of a pruned
                 * layer's inputs as long as only that layer changed; the final
                 * build collects them afresh. */
                .hessians = prep ? prep->hessians : NULL,
        };
        return pipeline_quantize(copy, c->calib->count, data_source_feed, c->calib, &options, ret, ret_report);
}

int search_build(const SearchContext *c, const Plan *p, CvoptModel **ret_model, QuantizeReport **ret_report) {
        return build(c, NULL, p, ret_model, ret_report);
}

static int plan_new(uint32_t n_nodes, Plan *ret) {
        Plan p = { .node_bits = calloc(MAX(n_nodes, 1u), 1), .node_sparsity = calloc(MAX(n_nodes, 1u), sizeof(double)) };

        if (!p.node_bits || !p.node_sparsity) {
                plan_done(&p);
                return -ENOMEM;
        }
        *ret = p;
        return 0;
}

int sensitivity_analyze(const SearchContext *c, Sensitivity *ret) {
        const CvoptGraph *g = c->float_model->graph;
        _cleanup_(calibration_stats_freep) CalibrationStats *calibration = NULL;
        _cleanup_(gptq_stats_freep) GptqStats *hessians = NULL;
        _cleanup_free_ bool *want = calloc(MAX(g->n_nodes, 1u), sizeof(bool));
        Sensitivity s = {};
        Plan p = {};
        int r;

        if (!want)
                return -ENOMEM;
        for (uint32_t k = 0; k < g->n_nodes; k++)
                if ((want[k] = quantize_is_layer(g, &g->nodes[k])))
                        s.n_layers++;
        s.nodes = calloc(MAX(s.n_layers, 1u), sizeof(uint32_t));
        s.names = calloc(MAX(s.n_layers, 1u), sizeof(char *));
        s.weights = calloc(MAX(s.n_layers, 1u), sizeof(uint64_t));
        s.top1 = calloc(MAX(s.n_layers, 1u) * SEARCH_CHOICES, sizeof(double));
        s.bytes = calloc(MAX(s.n_layers, 1u) * SEARCH_CHOICES, sizeof(uint64_t));
        if (!s.nodes || !s.names || !s.weights || !s.top1 || !s.bytes) {
                sensitivity_done(&s);
                return -ENOMEM;
        }
        s.n_eval = c->analysis->count;
        for (uint32_t k = 0, i = 0; k < g->n_nodes; k++) {
                const CvoptTensor *w;

                if (!want[k])
                        continue;
                w = cvopt_node_input(g, &g->nodes[k], 1);
                s.nodes[i] = k;
                s.names[i] = strdup(g->nodes[k].name);
                s.weights[i] = (uint64_t) cvopt_tensor_count(w);
                uint64_t channels = (uint64_t) (g->nodes[k].op == CVOPT_OP_CONV ? w->dims[0] : w->dims[w->ndim - 1]);
                for (int j = 0; j < SEARCH_CHOICES; j++)
                        s.bytes[i * SEARCH_CHOICES + j] = estimate_bytes(s.weights[i], channels, &search_choices[j]);
                i++;
        }

        if (c->progress)
                fprintf(stderr, "sensitivity: collecting statistics\n");
        if ((r = calibration_collect(g, c->calib->count, data_source_feed, NULL, c->calib, &calibration)) < 0 ||
            (r = gptq_collect(g, want, c->calib->count, data_source_feed, c->calib, &hessians)) < 0 ||
            (r = evaluate(c, c->float_model, &s.float_top1)) < 0 || (r = plan_new(g->n_nodes, &p)) < 0)
                goto fail;
        Prepared prep = { .calibration = calibration, .hessians = hessians };

        for (uint32_t i = 0; i < s.n_layers; i++)
                p.node_bits[s.nodes[i]] = 8;
        for (uint32_t i = 0; i <= s.n_layers; i++)
                for (int j = 0; j < SEARCH_CHOICES; j++) {
                        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
                        double top1 = 0; /* evaluate() sets it on success; gcc -O3 cannot tell. */

                        /* i == n_layers: the all-8-bit baseline, once. */
                        if ((i == s.n_layers) != (j == 0))
                                continue;
                        if (i < s.n_layers) {
                                p.node_bits[s.nodes[i]] = (uint8_t) search_choices[j].bits;
                                p.node_sparsity[s.nodes[i]] = search_choices[j].sparsity;
                        }
                        r = build(c, &prep, &p, &m, NULL);
                        if (r >= 0)
                                r = evaluate(c, m, &top1);
                        if (i < s.n_layers) {
                                p.node_bits[s.nodes[i]] = 8;
                                p.node_sparsity[s.nodes[i]] = 0;
                        }
                        if (r < 0)
                                goto fail;
                        if (i == s.n_layers)
                                s.base_top1 = top1;
                        else
                                s.top1[i * SEARCH_CHOICES + j] = top1;
                        if (c->progress)
                                fprintf(stderr, "sensitivity: %s %u-bit %.0f%% sparse: top-1 %.2f%%\n",
                                        i < s.n_layers ? s.names[i] : "all layers", search_choices[j].bits,
                                        100 * search_choices[j].sparsity, top1);
                }
        for (uint32_t i = 0; i < s.n_layers; i++)
                s.top1[i * SEARCH_CHOICES] = s.base_top1;
        plan_done(&p);
        *ret = s;
        return 0;
fail:
        plan_done(&p);
        sensitivity_done(&s);
        return r;
}

/* Drops are counted in hundredths of a point: fine enough for a 0.1-point
 * budget, coarse enough that the table stays small (2 points = 200). */
#define DROP_UNIT 0.01

int search_plan(const Sensitivity *s, uint32_t n_nodes, double drop_budget, Plan *ret) {
        const int64_t budget = (int64_t) (drop_budget / DROP_UNIT + 1e-9);
        _cleanup_free_ uint64_t *best = NULL;
        _cleanup_free_ int8_t *pick = NULL;
        const uint64_t none = UINT64_MAX;
        Plan p = {};
        int r;

        if (budget < 0)
                return -ENOSPC;
        best = malloc((size_t) (s->n_layers + 1) * (size_t) (budget + 1) * sizeof(uint64_t));
        pick = malloc((size_t) MAX(s->n_layers, 1u) * (size_t) (budget + 1));
        if (!best || !pick)
                return -ENOMEM;
        /* best[i][d]: fewest bytes for layers i.. with at most d units of
         * drop left; the drop of a choice is its top-1 loss against the
         * float model when only that layer changes, never counted below 0. */
        for (int64_t d = 0; d <= budget; d++)
                best[(size_t) s->n_layers * (size_t) (budget + 1) + (size_t) d] = 0;
        /* A layer whose every option saves under 1% of the 8-bit model is
         * kept at 8 bits, dense: its measured drop is within the noise of
         * the table, and a real loss there would buy nothing (the first
         * conv of a CNN is the usual case: few weights, sensitive). */
        uint64_t total = 0;
        for (uint32_t i = 0; i < s->n_layers; i++)
                total += s->bytes[i * SEARCH_CHOICES];
        for (int64_t i = (int64_t) s->n_layers - 1; i >= 0; i--)
                for (int64_t d = 0; d <= budget; d++) {
                        uint64_t value = none;
                        int8_t chosen = -1;

                        for (int j = 0; j < SEARCH_CHOICES; j++) {
                                double drop = MAX(s->float_top1 - s->top1[i * SEARCH_CHOICES + j], 0.0);
                                int64_t cost = (int64_t) (drop / DROP_UNIT + 0.5);
                                uint64_t saved = s->bytes[i * SEARCH_CHOICES] - MIN(s->bytes[i * SEARCH_CHOICES + j],
                                                                                    s->bytes[i * SEARCH_CHOICES]);
                                uint64_t rest;

                                if (cost > d || (j > 0 && saved * 100 < total))
                                        continue;
                                rest = best[(size_t) (i + 1) * (size_t) (budget + 1) + (size_t) (d - cost)];
                                if (rest == none)
                                        continue;
                                if (rest + s->bytes[i * SEARCH_CHOICES + j] < value) {
                                        value = rest + s->bytes[i * SEARCH_CHOICES + j];
                                        chosen = (int8_t) j;
                                }
                        }
                        best[(size_t) i * (size_t) (budget + 1) + (size_t) d] = value;
                        pick[(size_t) i * (size_t) (budget + 1) + (size_t) d] = chosen;
                }
        if (best[budget] == none)
                return -ENOSPC;
        r = plan_new(n_nodes, &p);
        if (r < 0)
                return r;
        p.estimated_bytes = best[budget];
        for (uint32_t i = 0, d = (uint32_t) budget; i < s->n_layers; i++) {
                int j = pick[(size_t) i * (size_t) (budget + 1) + d];
                double drop = MAX(s->float_top1 - s->top1[i * SEARCH_CHOICES + j], 0.0);

                p.node_bits[s->nodes[i]] = (uint8_t) search_choices[j].bits;
                p.node_sparsity[s->nodes[i]] = search_choices[j].sparsity;
                p.estimated_drop += drop;
                d -= (uint32_t) (drop / DROP_UNIT + 0.5);
        }
        *ret = p;
        return 0;
}

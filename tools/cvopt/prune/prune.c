/* SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdio.h>

#include "macro.h"
#include "prune.h"
#include "quant/gptq.h"
#include "quant/quantize.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(GptqStats *, gptq_stats_free);

int prune_graph_channels(CvoptGraph *g, const PruneSpec *spec, const double *node_amount, size_t n_calibration,
                         CalibrationFeed feed, void *userdata, PruneResult *ret);

const char *prune_method_name(PruneMethod m) {
        switch (m) {
        case PRUNE_MAGNITUDE:
                return "magnitude";
        case PRUNE_OBS:
                return "obs";
        case PRUNE_CHANNEL:
                return "channel";
        }
        return "invalid";
}

char *prune_spec_name(const PruneSpec *s, char *buf, size_t size) {
        if (s->n_keep)
                snprintf(buf, size, "%s %d:%d", prune_method_name(s->method), s->n_keep, s->m_group);
        else
                snprintf(buf, size, "%s %.0f%%%s", prune_method_name(s->method), 100 * s->amount,
                         s->global ? " (global)" : "");
        return buf;
}

int prune_spec_parse(const char *text, PruneSpec *ret) {
        PruneSpec s = {};
        char method[32], rest[64];
        int n, m;
        double amount;

        if (sscanf(text, "%31[^:]:%63s", method, rest) != 2)
                return cvopt_error_set(-EINVAL, "--prune '%s': expected METHOD:AMOUNT or METHOD:N:M", text);
        if (streq(method, "magnitude"))
                s.method = PRUNE_MAGNITUDE;
        else if (streq(method, "obs"))
                s.method = PRUNE_OBS;
        else if (streq(method, "channel"))
                s.method = PRUNE_CHANNEL;
        else
                return cvopt_error_set(-EINVAL, "--prune '%s': unknown method '%s' (magnitude, obs, channel)", text,
                                       method);
        if (strchr(rest, '.') == NULL && sscanf(rest, "%d:%d", &n, &m) == 2) {
                if (s.method == PRUNE_CHANNEL || n < 1 || m < 2 || n >= m || m > 16)
                        return cvopt_error_set(-EINVAL, "--prune '%s': N:M needs 1 <= N < M <= 16 (and not channel)", text);
                s.n_keep = n;
                s.m_group = m;
                s.amount = 1.0 - (double) n / m;
        } else {
                char *end;

                amount = strtod(rest, &end);
                if (end == rest || !(amount > 0) || !(amount < 1))
                        return cvopt_error_set(-EINVAL, "--prune '%s': amount must be a fraction in (0, 1)", text);
                s.amount = amount;
                if (streq(end, ":global"))
                        s.global = true;
                else if (*end)
                        return cvopt_error_set(-EINVAL, "--prune '%s': unexpected '%s'", text, end);
                if (s.global && s.method != PRUNE_MAGNITUDE)
                        return cvopt_error_set(-EINVAL, "--prune '%s': a global threshold is for magnitude pruning", text);
        }
        *ret = s;
        return 0;
}

void prune_result_done(PruneResult *r) {
        free(r->layers);
        memset(r, 0, sizeof(*r));
}

/* Which layers to prune, and by how much. */
static double layer_amount(const CvoptGraph *g, const PruneSpec *spec, const double *node_amount, uint32_t k) {
        int32_t first = -1, last = -1;

        if (node_amount && node_amount[k] >= 0)
                return node_amount[k];
        for (uint32_t i = 0; i < g->n_nodes; i++)
                if (quantize_is_layer(g, &g->nodes[i])) {
                        if (first < 0)
                                first = (int32_t) i;
                        last = (int32_t) i;
                }
        return (int32_t) k == first || (int32_t) k == last ? 0 : spec->amount;
}

static int compare_float(const void *a, const void *b) {
        float x = *(const float *) a, y = *(const float *) b;

        return (x > y) - (x < y);
}

/* Zeros the smallest |w| of each row's groups (N:M) or below threshold. */
static void magnitude_mask(const float *w, int64_t channels, int64_t depth, const PruneSpec *spec, float threshold,
                           uint8_t *mask) {
        for (int64_t c = 0; c < channels; c++) {
                const float *row = w + c * depth;
                uint8_t *row_mask = mask + c * depth;

                if (!spec->n_keep) {
                        for (int64_t k = 0; k < depth; k++)
                                row_mask[k] = fabsf(row[k]) <= threshold;
                        continue;
                }
                for (int64_t g0 = 0; g0 < depth; g0 += spec->m_group)
                        for (int drop = 0; drop < spec->m_group - spec->n_keep; drop++) {
                                int64_t best = -1;

                                for (int64_t k = g0; k < MIN(g0 + spec->m_group, depth); k++)
                                        if (!row_mask[k] && (best < 0 || fabsf(row[k]) < fabsf(row[best])))
                                                best = k;
                                if (best >= 0)
                                        row_mask[best] = 1;
                        }
        }
}

/* The |w| below which fraction amount of values lies. */
static int quantile_abs(const float *w, size_t n, double amount, float *ret) {
        _cleanup_free_ float *a = malloc(MAX(n, 1u) * sizeof(float));
        size_t k;

        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                a[i] = fabsf(w[i]);
        qsort(a, n, sizeof(float), compare_float);
        k = (size_t) (amount * (double) n);
        *ret = k == 0 ? -1.0f : a[MIN(k, n) - 1];
        return 0;
}

static int global_threshold(const CvoptGraph *g, const PruneSpec *spec, const double *node_amount, float *ret) {
        _cleanup_free_ float *all = NULL;
        size_t n = 0;
        int r;

        for (uint32_t k = 0; k < g->n_nodes; k++)
                if (quantize_is_layer(g, &g->nodes[k]) && layer_amount(g, spec, node_amount, k) > 0)
                        n += (size_t) cvopt_tensor_count(cvopt_node_input(g, &g->nodes[k], 1));
        all = malloc(MAX(n, 1u) * sizeof(float));
        if (!all)
                return -ENOMEM;
        n = 0;
        for (uint32_t k = 0; k < g->n_nodes; k++) {
                const CvoptTensor *w = cvopt_node_input(g, &g->nodes[k], 1);

                if (!quantize_is_layer(g, &g->nodes[k]) || layer_amount(g, spec, node_amount, k) <= 0)
                        continue;
                memcpy(all + n, w->data, cvopt_tensor_bytes(w));
                n += (size_t) cvopt_tensor_count(w);
        }
        r = quantile_abs(all, n, spec->amount, ret);
        return r;
}

static int prune_graph_full(CvoptGraph *g, const PruneSpec *spec, const double *node_amount, size_t n_calibration,
                            CalibrationFeed feed, void *userdata, const GptqStats *hessians, PruneResult *ret) {
        _cleanup_(gptq_stats_freep) GptqStats *collected = NULL;
        const GptqStats *stats = hessians;
        _cleanup_free_ bool *want = calloc(MAX(g->n_nodes, 1u), sizeof(bool));
        PruneResult result = {};
        float threshold = 0;
        int r;

        if (spec->method == PRUNE_CHANNEL) {
                if (!feed)
                        return -EINVAL;
                return prune_graph_channels(g, spec, node_amount, n_calibration, feed, userdata, ret);
        }
        if (!want)
                return -ENOMEM;
        result.layers = calloc(MAX(g->n_nodes, 1u), sizeof(PruneLayer));
        if (!result.layers)
                return -ENOMEM;
        for (uint32_t k = 0; k < g->n_nodes; k++)
                want[k] = quantize_is_layer(g, &g->nodes[k]) && layer_amount(g, spec, node_amount, k) > 0;
        if (spec->method == PRUNE_OBS && !stats) {
                r = gptq_collect(g, want, n_calibration, feed, userdata, &collected);
                if (r < 0)
                        goto fail;
                stats = collected;
        } else if (spec->global && (r = global_threshold(g, spec, node_amount, &threshold)) < 0)
                goto fail;

        for (uint32_t k = 0; k < g->n_nodes; k++) {
                _cleanup_free_ float *w = NULL;
                _cleanup_free_ uint8_t *mask = NULL;
                int64_t channels, depth;
                PruneSpec layer = *spec;

                if (!want[k])
                        continue;
                layer.amount = layer_amount(g, spec, node_amount, k);
                r = quantize_layer_weights(g, k, &w, &channels, &depth);
                if (r < 0)
                        continue; /* not a layer the quantizer handles: left dense */
                mask = calloc((size_t) (channels * depth), 1);
                if (!mask) {
                        r = -ENOMEM;
                        goto fail;
                }
                if (spec->method == PRUNE_OBS) {
                        const GptqHessian *h = gptq_find(stats, k);
                        ObsPrune prune = { .adaptive = true, .sparsity = layer.amount, .n_keep = layer.n_keep,
                                           .m_group = layer.m_group };

                        if (!h || h->depth != depth)
                                continue;
                        r = obs_solve(h, w, channels, 0, &prune, mask);
                        if (r < 0)
                                goto fail;
                } else {
                        float t = threshold;

                        if (!spec->global && !layer.n_keep && (r = quantile_abs(w, (size_t) (channels * depth), layer.amount, &t)) < 0)
                                goto fail;
                        magnitude_mask(w, channels, depth, &layer, t, mask);
                        for (int64_t i = 0; i < channels * depth; i++)
                                if (mask[i])
                                        w[i] = 0;
                }
                r = quantize_layer_store_weights(g, k, w);
                if (r < 0)
                        goto fail;
                PruneLayer *pl = &result.layers[result.n_layers++];
                pl->node = k;
                pl->weights = (uint64_t) (channels * depth);
                pl->channels_before = pl->channels_after = (uint64_t) channels;
                for (int64_t i = 0; i < channels * depth; i++)
                        pl->zeros += w[i] == 0;
        }
        *ret = result;
        return 0;
fail:
        prune_result_done(&result);
        return r;
}

int prune_graph(CvoptGraph *g, const PruneSpec *spec, const double *node_amount, size_t n_calibration,
                CalibrationFeed feed, void *userdata, PruneResult *ret) {
        return prune_graph_full(g, spec, node_amount, n_calibration, feed, userdata, NULL, ret);
}

int prune_graph_with(CvoptGraph *g, const PruneSpec *spec, const double *node_amount, const GptqStats *hessians,
                     PruneResult *ret) {
        return prune_graph_full(g, spec, node_amount, 0, NULL, NULL, hessians, ret);
}

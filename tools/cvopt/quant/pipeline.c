/* SPDX-License-Identifier: MIT */
#include "gptq.h"
#include "macro.h"
#include "pipeline.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptModel *, cvopt_model_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptGraph *, cvopt_graph_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(CalibrationStats *, calibration_stats_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(GptqStats *, gptq_stats_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(QuantizeReport *, quantize_report_free);

/* GPTQ per layer: the rounded weights go to the quantizer through
 * options.node_weights. */
static int run_gptq(const CvoptGraph *g, size_t n_samples, CalibrationFeed feed, void *userdata,
                    const QuantizeOptions *o, const GptqStats *hessians, float **node_weights) {
        _cleanup_(gptq_stats_freep) GptqStats *collected = NULL;
        _cleanup_free_ bool *want = calloc(MAX(g->n_nodes, 1u), sizeof(bool));
        const GptqStats *stats = hessians;
        int r;

        if (!want)
                return -ENOMEM;
        for (uint32_t k = 0; k < g->n_nodes; k++)
                want[k] = quantize_is_layer(g, &g->nodes[k]);
        if (!stats) {
                r = gptq_collect(g, want, n_samples, feed, userdata, &collected);
                if (r < 0)
                        return r;
                stats = collected;
        }
        for (uint32_t i = 0; i < stats->n_layers; i++) {
                const GptqHessian *h = &stats->layers[i];
                unsigned bits = quantize_layer_bits(g, o, h->node);
                float *w;
                int64_t channels, depth;

                if (bits >= 32)
                        continue;
                r = quantize_layer_weights(g, h->node, &w, &channels, &depth);
                if (r < 0)
                        continue; /* the quantizer keeps this one in float and says why */
                if (depth != h->depth) {
                        free(w);
                        continue;
                }
                /* Weights already pruned to 0 must stay 0: they become a
                 * fixed mask of the same OBS pass. */
                _cleanup_free_ uint8_t *mask = NULL;
                bool any_zero = false;
                for (int64_t i = 0; i < channels * depth && !any_zero; i++)
                        any_zero = w[i] == 0;
                if (any_zero) {
                        mask = malloc((size_t) (channels * depth));
                        if (!mask) {
                                free(w);
                                return -ENOMEM;
                        }
                        for (int64_t i = 0; i < channels * depth; i++)
                                mask[i] = w[i] == 0;
                }
                r = bits <= 8 ? obs_solve(h, w, channels, bits, NULL, mask) : 0;
                if (r < 0) {
                        free(w);
                        return cvopt_error_prefix(r, "node '%s'", g->nodes[h->node].name);
                }
                node_weights[h->node] = w;
        }
        return 0;
}

int pipeline_quantize(const CvoptModel *float_model, size_t n_calibration, CalibrationFeed feed, void *userdata,
                      const PipelineOptions *options, CvoptModel **ret_model, QuantizeReport **ret_report) {
        const CvoptGraph *g = float_model->graph;
        _cleanup_(calibration_stats_freep) CalibrationStats *collected = NULL;
        const CalibrationStats *stats = options->calibration;
        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
        _cleanup_(quantize_report_freep) QuantizeReport *report = NULL;
        float **node_weights = NULL;
        QuantizeOptions quantize = options->quantize;
        CvoptGraph *q = NULL;
        int r;

        if (!stats) {
                r = calibration_collect(g, n_calibration, feed, options->progress, userdata, &collected);
                if (r < 0)
                        return r;
                stats = collected;
        }
        if (options->gptq) {
                node_weights = calloc(MAX(g->n_nodes, 1u), sizeof(float *));
                if (!node_weights)
                        return -ENOMEM;
                size_t n = options->gptq_samples ? MIN(options->gptq_samples, n_calibration) : n_calibration;
                r = run_gptq(g, n, feed, userdata, &quantize, options->hessians, node_weights);
                if (r < 0)
                        goto finish;
                quantize.node_weights = node_weights;
        }
        r = quantize_graph(g, stats, &quantize, &q, &report);
        if (r < 0)
                goto finish;
        r = cvopt_graph_infer_shapes(q);
        if (r < 0) {
                cvopt_error_prefix(r, "quantized graph");
                cvopt_graph_free(q);
                goto finish;
        }
        r = cvopt_model_new(&m);
        if (r < 0) {
                cvopt_graph_free(q);
                goto finish;
        }
        cvopt_graph_free(m->graph);
        m->graph = q;
        m->input = float_model->input;
        if (float_model->n_labels) {
                m->labels = calloc(float_model->n_labels, sizeof(char *));
                if (!m->labels) {
                        r = -ENOMEM;
                        goto finish;
                }
                for (uint32_t i = 0; i < float_model->n_labels; i++) {
                        m->labels[i] = strdup(float_model->labels[i]);
                        if (!m->labels[i]) {
                                r = -ENOMEM;
                                goto finish;
                        }
                        m->n_labels = i + 1;
                }
        }
        *ret_model = TAKE_PTR(m);
        if (ret_report)
                *ret_report = TAKE_PTR(report);
        r = 0;
finish:
        if (node_weights)
                for (uint32_t k = 0; k < g->n_nodes; k++)
                        free(node_weights[k]);
        free(node_weights);
        return r;
}

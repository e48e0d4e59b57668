/* SPDX-License-Identifier: MIT */
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "data-source.h"
#include "eval.h"
#include "macro.h"
#include "cli.h"
#include "optimize.h"
#include "quant/equalize.h"
#include "sha256.h"
#include "search.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptDataset *, cvopt_dataset_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(QuantizeReport *, quantize_report_free);

typedef struct Progress {
        bool enabled;
        const char *what;
} Progress;

static void show_progress(void *userdata, size_t done, size_t total) {
        const Progress *p = userdata;

        if (!p->enabled || (done != total && done % 64 != 0))
                return;
        fprintf(stderr, "\r%s: %zu/%zu%s", p->what, done, total, done == total ? "\n" : "");
}

static void show_calibration(void *userdata, unsigned pass, size_t done, size_t total) {
        const DataSource *s = userdata;
        (void) s;
        if (done == total || done % 64 == 0)
                fprintf(stderr, "\rcalibration pass %u: %zu/%zu%s", pass, done, total, done == total ? "\n" : "");
}

static int measure(const CvoptModel *m, const CvoptDataset *val, const CvoptDataset *train, const size_t *train_indices,
                   const OptimizeArgs *args, const char *label, ModelNumbers *n) {
        DataSource source;
        EvalResult result = {};
        BenchResult bench = {};
        Progress progress = { .enabled = args->progress };
        char what[64];
        int r;

        r = data_source_init(&source, val, m, args->val_limit);
        if (r < 0)
                return r;
        snprintf(what, sizeof(what), "%s: validation", label);
        progress.what = what;
        r = eval_graph(m->graph, source.count, cvopt_dataset_n_classes(val), data_source_fetch, &source,
                       &(EvalOptions) { .backend = args->backend, .progress = show_progress, .progress_userdata = &progress },
                       &result);
        if (r < 0)
                return r;
        n->top1 = result.top1;
        n->top5 = result.top5;
        n->n_val = result.n;
        eval_result_done(&result);
        if (train && args->train_sample) {
                r = data_source_init(&source, train, m, 0);
                if (r < 0)
                        return r;
                source.indices = train_indices;
                source.count = args->train_sample;
                snprintf(what, sizeof(what), "%s: training sample", label);
                r = eval_graph(m->graph, source.count, cvopt_dataset_n_classes(train), data_source_fetch, &source,
                               &(EvalOptions) { .backend = args->backend, .progress = show_progress, .progress_userdata = &progress },
                               &result);
                if (r < 0)
                        return r;
                n->train_top1 = result.top1;
                n->n_train = result.n;
                eval_result_done(&result);
        }
        r = bench_graph(m->graph, &(BenchOptions) { .backend = args->backend, .warmup_runs = 10, .runs = args->bench_runs },
                        &bench);
        if (r < 0)
                return r;
        n->latency_ms = bench.median_ms;
        n->latency_p90_ms = bench.p90_ms;
        snprintf(n->backend, sizeof(n->backend), "%s", bench.backend);
        bench_result_done(&bench);
        return 0;
}

int model_clone(const CvoptModel *m, CvoptModel **ret_copy) {
        _cleanup_(cvopt_model_freep) CvoptModel *c = NULL;
        int r;

        r = cvopt_model_new(&c);
        if (r < 0)
                return r;
        cvopt_graph_free(c->graph);
        c->graph = NULL;
        r = cvopt_graph_clone(m->graph, &c->graph);
        if (r < 0)
                return r;
        c->input = m->input;
        if (m->n_labels) {
                c->labels = calloc(m->n_labels, sizeof(char *));
                if (!c->labels)
                        return -ENOMEM;
                for (uint32_t i = 0; i < m->n_labels; i++) {
                        c->labels[i] = strdup(m->labels[i]);
                        if (!c->labels[i])
                                return -ENOMEM;
                        c->n_labels = i + 1;
                }
        }
        *ret_copy = TAKE_PTR(c);
        return 0;
}

static int file_size(const char *path, uint64_t *ret) {
        struct stat st;

        if (stat(path, &st) < 0)
                return cvopt_error_set(-errno, "%s: %m", path);
        *ret = (uint64_t) st.st_size;
        return 0;
}

static double now_sec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void describe_pruning(const PruneSpec *spec, const CvoptGraph *g, const PruneResult *pr, OptimizeReport *report) {
        size_t used = strlen(report->summary);

        for (uint32_t i = 0; i < pr->n_layers && used < sizeof(report->summary); i++) {
                const PruneLayer *l = &pr->layers[i];

                if (spec->method == PRUNE_CHANNEL)
                        used += (size_t) snprintf(report->summary + used, sizeof(report->summary) - used,
                                                  "Removed %llu of %llu output channels of '%s' (least-squares refit of the next layer, statistics repaired). ",
                                                  (unsigned long long) (l->channels_before - l->channels_after),
                                                  (unsigned long long) l->channels_before, g->nodes[l->node].name);
                else
                        used += (size_t) snprintf(report->summary + used, sizeof(report->summary) - used,
                                                  "Pruned '%s' to %.1f%% zeros (%s%s). ", g->nodes[l->node].name,
                                                  l->weights ? 100.0 * (double) l->zeros / (double) l->weights : 0.0,
                                                  prune_method_name(spec->method), spec->n_keep ? ", N:M" : "");
        }
}

static void describe_settings(const OptimizeArgs *args, OptimizeReport *report) {
        const PipelineOptions *p = &args->pipeline;

        if (optimize_has_targets(args)) {
                snprintf(report->settings, sizeof(report->settings),
                         "per-layer bits and sparsity from the sensitivity search, uint8 activations, %s calibration, "
                         "bias correction, GPTQ for layers under 8 bits",
                         calibration_method_name(p->quantize.calibration));
                return;
        }
        snprintf(report->settings, sizeof(report->settings), "%s%s weights (per-channel), uint8 activations, %s calibration%s%s",
                 args->prune ? "pruned, " : "", p->quantize.weight_bits <= 4 ? "int4" : "int8",
                 calibration_method_name(p->quantize.calibration), p->quantize.bias_correction ? ", bias correction" : "",
                 p->gptq ? ", GPTQ rounding" : "");
}

/* searched: the per-layer search ran, the only way layers get pruned
 * without --prune (which describe_pruning() already told). */
static void describe(const QuantizeReport *layers, bool searched, OptimizeReport *report) {
        uint64_t params = 0, params_float = 0;
        unsigned at8 = 0, at4 = 0, kept = 0;
        size_t used;

        for (uint32_t i = 0; i < layers->n_layers; i++) {
                const LayerReport *l = &layers->layers[i];

                params += l->params;
                if (l->bits >= 32) {
                        kept++;
                        params_float += l->params;
                } else if (l->bits <= 4)
                        at4++;
                else
                        at8++;
        }
        used = strlen(report->summary);
        uint64_t weights = 0, zeros = 0;
        unsigned sparse_layers = 0;
        for (uint32_t i = 0; i < layers->n_layers; i++) {
                const LayerReport *l = &layers->layers[i];

                weights += l->params;
                zeros += (uint64_t) (l->sparsity * (double) l->params);
                sparse_layers += l->sparsity >= 0.25;
        }
        if (sparse_layers && searched && !strstr(report->summary, "Pruned") && !strstr(report->summary, "Removed"))
                used += (size_t) snprintf(report->summary + used, sizeof(report->summary) - used,
                                          "Pruned (OBS) %u layers to at least 25%% zeros; %.1f%% of all weights are 0. ",
                                          sparse_layers, weights ? 100.0 * (double) zeros / (double) weights : 0.0);
        else if (sparse_layers && !strstr(report->summary, "Pruned") && !strstr(report->summary, "Removed"))
                /* Not pruning: small weights that round to 0 at 4 bits. */
                used += (size_t) snprintf(report->summary + used, sizeof(report->summary) - used,
                                          "Rounding left %u layers with at least 25%% zero weights (%.1f%% of all weights are 0). ",
                                          sparse_layers, weights ? 100.0 * (double) zeros / (double) weights : 0.0);
        used += (size_t) snprintf(report->summary + used, sizeof(report->summary) - used,
                                 "Quantized %u of %u weighted layers: %u with 8-bit and %u with 4-bit weights "
                                 "(%llu of %llu parameters quantized); %u left in float. ",
                                 at8 + at4, layers->n_layers, at8, at4, (unsigned long long) (params - params_float),
                                 (unsigned long long) params, kept);
        if (used < sizeof(report->summary))
                used += (size_t) snprintf(report->summary + used, sizeof(report->summary) - used,
                                          "Activations are uint8 with ranges from %zu calibration images of the training split. ",
                                          report->n_calibration);
        if (used < sizeof(report->summary) && layers->n_float_ops)
                used += (size_t) snprintf(report->summary + used, sizeof(report->summary) - used,
                                          "Ops without an int8 kernel stay in float: %s. ", layers->float_ops);
        if (used < sizeof(report->summary))
                snprintf(report->summary + used, sizeof(report->summary) - used,
                         "Cost: %+.2f top-1 points for a %.2fx smaller file and %.2fx lower latency.",
                         report->after.top1 - report->before.top1,
                         report->after.size_bytes ? (double) report->before.size_bytes / report->after.size_bytes : 0,
                         report->after.latency_ms > 0 ? report->before.latency_ms / report->after.latency_ms : 0);
}

/* Records where the model came from and what was measured, inside the
 * .cvm (DESIGN: provenance), and saves it again. The file grows by the
 * provenance text; after.size_bytes is updated to the final size. */
static int provenance_save(CvoptModel *m, const char *source_path, OptimizeReport *report) {
        _cleanup_free_ void *data = NULL;
        char hex[2 * SHA256_DIGEST_BYTES + 1];
        struct stat st;
        size_t size = 0;
        json_t *root;
        int r;

        r = read_file_full(source_path, SIZE_MAX / 2, &data, &size);
        if (r < 0)
                return r;
        sha256_hex(data, size, hex);
        root = json_pack("{s:s, s:{s:s, s:s, s:I}, s:o}", "tool", "cvopt optimize", "source", "file",
                         source_path, "sha256", hex, "size_bytes", (json_int_t) size, "report", report_to_json(report));
        if (!root)
                return -ENOMEM;
        /* The per-layer table is in the report file; the model keeps the
         * summary numbers. */
        json_object_del(json_object_get(root, "report"), "layers");
        free(m->provenance_json);
        m->provenance_json = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(9));
        json_decref(root);
        if (!m->provenance_json)
                return -ENOMEM;
        r = cvopt_model_save(m, report->after.path);
        if (r < 0)
                return r;
        if (stat(report->after.path, &st) < 0)
                return cvopt_error_set(-errno, "%s: %m", report->after.path);
        report->after.size_bytes = (uint64_t) st.st_size;
        return 0;
}

/* Quantizes (after pruning with prune, if given) and measures a variant of
 * the configuration, for the report's comparison table. */
static int add_variant(const CvoptModel *float_model, const PruneSpec *prune, const PipelineOptions *pipeline,
                       DataSource *calib, const CvoptDataset *val, const OptimizeArgs *args, const char *name,
                       OptimizeReport *report) {
        _cleanup_(cvopt_model_freep) CvoptModel *pruned = NULL, *m = NULL;
        OptimizeArgs quick = *args;
        ModelNumbers n = {};
        ReportVariant *v;
        int r;

        if (report->n_variants + 2 > ELEMENTSOF(report->variants))
                return 0;
        if (prune) {
                PruneResult pr = {};

                r = model_clone(float_model, &pruned);
                if (r < 0)
                        return r;
                r = prune_graph(pruned->graph, prune, NULL, calib->count, data_source_feed, calib, &pr);
                prune_result_done(&pr);
                if (r < 0)
                        return r;
                float_model = pruned;
        }
        r = pipeline_quantize(float_model, calib->count, data_source_feed, calib, pipeline, &m, NULL);
        if (r < 0)
                return r;
        quick.train_sample = 0;
        r = measure(m, val, NULL, NULL, &quick, name, &n);
        if (r < 0)
                return r;
        v = &report->variants[report->n_variants++];
        snprintf(v->name, sizeof(v->name), "%s", name);
        v->top1 = n.top1;
        v->top5 = n.top5;
        return cvopt_model_serialized_size(m, &v->size_bytes);
}

bool optimize_has_targets(const OptimizeArgs *args) {
        return !isnan(args->max_drop) || args->min_size_reduction_pct > 0 || args->min_speedup_pct > 0 ||
               args->target_size > 0;
}

static void add_target(OptimizeReport *r, const char *name, double bound, double value, bool met) {
        size_t used = strlen(r->targets_missed);

        r->targets[r->n_targets++] = (TargetResult) { .name = name, .bound = bound, .value = value, .met = met };
        r->all_targets_met &= met;
        if (!met)
                snprintf(r->targets_missed + used, sizeof(r->targets_missed) - used, "%s%s: %.2f against a bound of %.2f",
                         used ? "; " : "target not met: ", name, value, bound);
}

static void check_targets(const OptimizeArgs *args, OptimizeReport *r) {
        const double drop = r->before.top1 - r->after.top1;
        const double reduction = 100.0 * (1.0 - (double) r->after.size_bytes / (double) r->before.size_bytes);
        const double speedup = 100.0 * (r->before.latency_ms / r->after.latency_ms - 1.0);

        r->all_targets_met = true;
        r->n_targets = 0;
        r->targets_missed[0] = 0;
        if (!isnan(args->max_drop))
                add_target(r, "max_drop", args->max_drop, drop, drop <= args->max_drop);
        if (args->min_size_reduction_pct > 0)
                add_target(r, "min_size_reduction_pct", args->min_size_reduction_pct, reduction,
                           reduction >= args->min_size_reduction_pct);
        if (args->min_speedup_pct > 0)
                add_target(r, "min_speedup_pct", args->min_speedup_pct, speedup, speedup >= args->min_speedup_pct);
        if (args->target_size > 0)
                add_target(r, "target_size", (double) args->target_size, (double) r->after.size_bytes,
                           r->after.size_bytes <= args->target_size);
}

/* The accuracy-aware search: the sensitivity table on held-out training
 * images, the knapsack for the smallest model within the drop budget, then
 * verification on the validation set; while the measured drop exceeds
 * --max-drop the budget shrinks, which sends the most sensitive layers
 * back to 8 bits and dense. */
static int search_targets(const CvoptModel *float_model, const CvoptDataset *train, DataSource *calib,
                          const CvoptDataset *val, const OptimizeArgs *args, OptimizeReport *report,
                          CvoptModel **ret_model, QuantizeReport **ret_layers) {
        _cleanup_free_ size_t *indices = NULL;
        Sensitivity table = {};
        DataSource analysis;
        double budget = isnan(args->max_drop) ? 5.0 : args->max_drop;
        size_t count = MIN(args->analysis_count ? args->analysis_count : 1000, cvopt_dataset_count(train));
        int r;

        indices = calloc(count, sizeof(size_t));
        if (!indices)
                return -ENOMEM;
        r = cvopt_dataset_sample(train, count, args->seed ^ 0xa11a1ULL, indices);
        if (r < 0)
                return r;
        r = data_source_init(&analysis, train, float_model, 0);
        if (r < 0)
                return r;
        analysis.indices = indices;
        analysis.count = count;
        SearchContext c = { .float_model = float_model, .calib = calib, .analysis = &analysis,
                            .n_classes = cvopt_dataset_n_classes(train),
                            .calibration = args->pipeline.quantize.calibration, .backend = args->backend,
                            .progress = args->progress };
        r = sensitivity_analyze(&c, &table);
        if (r < 0)
                return r;

        /* The knapsack plans with half the budget: its drops are sums of
         * single-layer drops measured on 1000 images (noisy, and combined
         * changes interact), so it needs a margin. */
        Plan plan = {};
        r = search_plan(&table, float_model->graph->n_nodes, budget * 0.5, &plan);
        if (r == -ENOSPC)
                r = search_plan(&table, float_model->graph->n_nodes, 1000, &plan);
        if (r < 0) {
                sensitivity_done(&table);
                return r;
        }
        for (unsigned attempt = 0; attempt <= table.n_layers; attempt++) {
                _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
                _cleanup_(quantize_report_freep) QuantizeReport *layers = NULL;
                ModelNumbers n = {};
                OptimizeArgs quick = *args;

                r = search_build(&c, &plan, &m, &layers);
                if (r < 0)
                        break;
                quick.train_sample = 0;
                r = measure(m, val, NULL, NULL, &quick, "candidate", &n);
                if (r < 0)
                        break;
                if (args->progress)
                        fprintf(stderr, "search: candidate %u: validation top-1 %.2f%% (drop %.2f)\n", attempt, n.top1,
                                report->before.top1 - n.top1);
                /* Keep the last candidate even if it misses: the caller
                 * reports what was reached. */
                cvopt_model_free(*ret_model);
                quantize_report_free(*ret_layers);
                *ret_model = TAKE_PTR(m);
                *ret_layers = TAKE_PTR(layers);
                if (isnan(args->max_drop) || report->before.top1 - n.top1 <= args->max_drop)
                        break;
                /* Accuracy-aware rollback: the changed layer the table says
                 * is most sensitive goes back to 8 bits, dense; then measure
                 * again. */
                int32_t worst = -1;
                double worst_drop = -INFINITY;
                for (uint32_t i = 0; i < table.n_layers; i++) {
                        uint32_t k = table.nodes[i];
                        int j;

                        if (plan.node_bits[k] == 8 && plan.node_sparsity[k] == 0)
                                continue;
                        for (j = 0; j < SEARCH_CHOICES; j++)
                                if (search_choices[j].bits == plan.node_bits[k] &&
                                    search_choices[j].sparsity == plan.node_sparsity[k])
                                        break;
                        double drop = j < SEARCH_CHOICES ? table.float_top1 - table.top1[i * SEARCH_CHOICES + j] : 0;
                        /* Ties (common: many single-layer drops are 0 on 1000
                         * images) go to the layer with the most weights. */
                        drop += 1e-9 * (double) table.weights[i];
                        if (drop > worst_drop) {
                                worst_drop = drop;
                                worst = (int32_t) k;
                        }
                }
                if (worst < 0)
                        break;
                if (args->progress)
                        fprintf(stderr, "search: back to 8 bits, dense: %s\n", float_model->graph->nodes[worst].name);
                plan.node_bits[worst] = 8;
                plan.node_sparsity[worst] = 0;
        }
        plan_done(&plan);
        sensitivity_done(&table);
        return r < 0 ? r : 0;
}

int optimize_run(const CvoptModel *float_model, const OptimizeArgs *args, OptimizeReport *ret_report,
                 QuantizeReport **ret_layers, CvoptModel **ret_model) {
        _cleanup_(cvopt_dataset_freep) CvoptDataset *calib = NULL, *val = NULL;
        _cleanup_(cvopt_model_freep) CvoptModel *quantized = NULL;
        _cleanup_(quantize_report_freep) QuantizeReport *layers = NULL;
        _cleanup_free_ size_t *calib_indices = NULL, *train_indices = NULL;
        OptimizeReport report = { .source = args->source_path, .val_spec = args->val_spec, .calib_spec = args->calib_spec };
        PipelineOptions pipeline = args->pipeline;
        DataSource calib_source;
        double start = now_sec();
        int r;

        r = cvopt_dataset_open(args->calib_spec, &calib);
        if (r < 0)
                return r;
        r = cvopt_dataset_open(args->val_spec, &val);
        if (r < 0)
                return r;
        if (args->calib_count == 0 || args->calib_count > cvopt_dataset_count(calib))
                return cvopt_error_set(-CVOPT_E_DATA, "%s has %zu images; asked for %zu calibration images",
                                       args->calib_spec, cvopt_dataset_count(calib), args->calib_count);
        calib_indices = calloc(args->calib_count, sizeof(size_t));
        if (!calib_indices)
                return -ENOMEM;
        r = cvopt_dataset_sample(calib, args->calib_count, args->seed, calib_indices);
        if (r < 0)
                return r;
        /* The training-split accuracy sample is drawn with another seed, so
         * it is not the calibration subset itself. */
        size_t train_sample = MIN(args->train_sample, cvopt_dataset_count(calib));
        if (train_sample) {
                train_indices = calloc(train_sample, sizeof(size_t));
                if (!train_indices)
                        return -ENOMEM;
                r = cvopt_dataset_sample(calib, train_sample, args->seed ^ 0x5eedULL, train_indices);
                if (r < 0)
                        return r;
        }
        OptimizeArgs measured = *args;
        measured.train_sample = train_sample;

        report.before.path = args->source_path;
        r = file_size(args->source_path, &report.before.size_bytes);
        if (r < 0)
                return r;
        r = measure(float_model, val, calib, train_indices, &measured, "float", &report.before);
        if (r < 0)
                return r;

        r = data_source_init(&calib_source, calib, float_model, 0);
        if (r < 0)
                return r;
        calib_source.indices = calib_indices;
        calib_source.count = args->calib_count;
        report.n_calibration = args->calib_count;
        pipeline.progress = args->progress ? show_calibration : NULL;

        _cleanup_(cvopt_model_freep) CvoptModel *equalized = NULL;
        if (args->equalize > 0 || (args->equalize < 0 && graph_has_depthwise(float_model->graph))) {
                r = model_clone(float_model, &equalized);
                if (r < 0)
                        return r;
                r = equalize_graph(equalized->graph, 4);
                if (r < 0)
                        return r;
                snprintf(report.summary + strlen(report.summary), sizeof(report.summary) - strlen(report.summary),
                         "Equalized %d conv pairs across layers (weights rescaled, function unchanged). ", r);
                float_model = equalized;
        }

        _cleanup_(cvopt_model_freep) CvoptModel *pruned = NULL;
        const CvoptModel *original = float_model;
        if (args->prune) {
                PruneResult pr = {};

                r = model_clone(float_model, &pruned);
                if (r < 0)
                        return r;
                r = prune_graph(pruned->graph, args->prune, NULL, calib_source.count, data_source_feed, &calib_source, &pr);
                if (r < 0)
                        return r;
                describe_pruning(args->prune, pruned->graph, &pr, &report);
                prune_result_done(&pr);
                float_model = pruned;
        }

        if (args->compare && pipeline.gptq) {
                /* The same settings without GPTQ, measured for the report. */
                PipelineOptions rounding = pipeline;
                char name[64];

                rounding.gptq = false;
                snprintf(name, sizeof(name), "%u-bit weights, plain rounding", pipeline.quantize.weight_bits);
                r = add_variant(float_model, NULL, &rounding, &calib_source, val, &measured, name, &report);
                if (r < 0)
                        return r;
        }
        if (args->compare && args->prune && args->prune->method == PRUNE_OBS) {
                /* The same sparsity by magnitude: the baseline OBS must beat. */
                PruneSpec magnitude = *args->prune;
                char name[64];

                magnitude.method = PRUNE_MAGNITUDE;
                prune_spec_name(&magnitude, name, sizeof(name));
                r = add_variant(original, &magnitude, &pipeline, &calib_source, val, &measured, name, &report);
                if (r < 0)
                        return r;
        }

        if (optimize_has_targets(args))
                r = search_targets(float_model, calib, &calib_source, val, &measured, &report, &quantized, &layers);
        else
                r = pipeline_quantize(float_model, calib_source.count, data_source_feed, &calib_source, &pipeline,
                                      &quantized, &layers);
        if (r < 0)
                return r;
        r = cvopt_model_save(quantized, args->output_path);
        if (r < 0)
                return r;
        report.after.path = args->output_path;
        r = file_size(args->output_path, &report.after.size_bytes);
        if (r < 0)
                return r;
        r = measure(quantized, val, calib, train_indices, &measured, "quantized", &report.after);
        if (r < 0)
                return r;
        if (args->compare && (pipeline.gptq || (args->prune && args->prune->method == PRUNE_OBS))) {
                ReportVariant *v = &report.variants[report.n_variants++];
                if (args->prune)
                        prune_spec_name(args->prune, v->name, sizeof(v->name));
                else
                        snprintf(v->name, sizeof(v->name), "%u-bit weights, GPTQ", pipeline.quantize.weight_bits);
                v->top1 = report.after.top1;
                v->top5 = report.after.top5;
                v->size_bytes = report.after.size_bytes;
        }
        report.seconds = now_sec() - start;
        describe_settings(args, &report);
        r = provenance_save(quantized, args->source_path, &report);
        if (r < 0)
                return r;
        describe(layers, optimize_has_targets(args), &report);
        if (optimize_has_targets(args))
                check_targets(args, &report);
        *ret_report = report;
        *ret_layers = TAKE_PTR(layers);
        *ret_model = TAKE_PTR(quantized);
        if (optimize_has_targets(args) && !report.all_targets_met)
                return cvopt_error_set(-CVOPT_E_TARGET, "%s", report.targets_missed);
        return 0;
}

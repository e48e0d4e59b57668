/* SPDX-License-Identifier: MIT */
#include <math.h>

#include "macro.h"
#include "report.h"

static double ratio(double a, double b) {
        return b > 0 ? a / b : 0;
}

void report_write_table(const OptimizeReport *r, FILE *f) {
        const ModelNumbers *b = &r->before, *a = &r->after;

        fprintf(f, "| | before (float) | after | change |\n|---|---:|---:|---:|\n");
        fprintf(f, "| model size on disk | %.2f MB | %.2f MB | %.2fx smaller (%+.1f%%) |\n", b->size_bytes / 1e6,
                a->size_bytes / 1e6, ratio((double) b->size_bytes, (double) a->size_bytes),
                100.0 * (ratio((double) a->size_bytes, (double) b->size_bytes) - 1));
        fprintf(f, "| latency, median (p90), batch 1, %s | %.3f ms (%.3f) | %.3f ms (%.3f) | %.2fx faster (%+.1f%%) |\n",
                a->backend, b->latency_ms, b->latency_p90_ms, a->latency_ms, a->latency_p90_ms,
                ratio(b->latency_ms, a->latency_ms), 100.0 * (ratio(a->latency_ms, b->latency_ms) - 1));
        fprintf(f, "| validation top-1 (%zu images) | %.2f%% | %.2f%% | %+.2f points |\n", b->n_val, b->top1, a->top1,
                a->top1 - b->top1);
        fprintf(f, "| validation top-5 | %.2f%% | %.2f%% | %+.2f points |\n", b->top5, a->top5, a->top5 - b->top5);
        if (b->n_train)
                fprintf(f, "| training-split top-1 (%zu-image sample) | %.2f%% | %.2f%% | %+.2f points |\n", b->n_train,
                        b->train_top1, a->train_top1, a->train_top1 - b->train_top1);
}

void report_write_markdown(const OptimizeReport *r, FILE *f) {
        fprintf(f, "# cvopt optimization report\n\n");
        fprintf(f, "- source: `%s`\n- output: `%s`\n- settings: %s\n", strempty(r->source), strempty(r->after.path),
                r->settings);
        fprintf(f, "- calibration: %zu images of `%s`; validation: `%s`\n", r->n_calibration, strempty(r->calib_spec),
                strempty(r->val_spec));
        fprintf(f, "- time taken: %.1f s\n\n", r->seconds);
        fprintf(f, "## Before and after\n\n");
        report_write_table(r, f);
        if (r->summary[0])
                fprintf(f, "\n## What was done\n\n%s\n", r->summary);
        if (r->n_targets) {
                fprintf(f, "\n## Targets\n\n| target | bound | reached | met |\n|---|---:|---:|---|\n");
                for (unsigned i = 0; i < r->n_targets; i++)
                        fprintf(f, "| %s | %.2f | %.2f | %s |\n", r->targets[i].name, r->targets[i].bound,
                                r->targets[i].value, r->targets[i].met ? "yes" : "**no**");
        }
        if (r->n_variants) {
                fprintf(f, "\n## Variants measured\n\n| variant | top-1 | top-5 | size |\n|---|---:|---:|---:|\n");
                for (unsigned i = 0; i < r->n_variants; i++)
                        fprintf(f, "| %s | %.2f%% | %.2f%% | %.2f MB |\n", r->variants[i].name, r->variants[i].top1,
                                r->variants[i].top5, r->variants[i].size_bytes / 1e6);
        }
        if (r->layers) {
                fprintf(f, "\n## Layers\n\n| layer | op | weight bits | parameters | bytes | zeros | weight SQNR (dB) | note |\n");
                fprintf(f, "|---|---|---:|---:|---:|---:|---:|---|\n");
                for (uint32_t i = 0; i < r->layers->n_layers; i++) {
                        const LayerReport *l = &r->layers->layers[i];

                        fprintf(f, "| %s | %s | %u | %llu | %llu | %.1f%% | ", l->name, l->op, l->bits,
                                (unsigned long long) l->params, (unsigned long long) l->bytes, 100.0 * l->sparsity);
                        if (isfinite(l->weight_sqnr_db))
                                fprintf(f, "%.1f", l->weight_sqnr_db);
                        else
                                fprintf(f, "—");
                        fprintf(f, " | %s |\n", l->note ? l->note : "");
                }
                if (r->layers->n_float_ops)
                        fprintf(f, "\nOps kept in float (no int8 kernel): %s.\n", r->layers->float_ops);
        }
}

static json_t *numbers_json(const ModelNumbers *n) {
        json_t *o = json_pack("{s:s?, s:I, s:f, s:f, s:s, s:f, s:f, s:I}", "path", n->path, "size_bytes",
                              (json_int_t) n->size_bytes, "latency_ms", n->latency_ms, "latency_p90_ms",
                              n->latency_p90_ms, "backend", n->backend, "top1", n->top1, "top5", n->top5, "n_val",
                              (json_int_t) n->n_val);

        if (o && n->n_train) {
                json_object_set_new(o, "train_top1", json_real(n->train_top1));
                json_object_set_new(o, "n_train", json_integer((json_int_t) n->n_train));
        }
        return o;
}

json_t *report_to_json(const OptimizeReport *r) {
        json_t *o = json_object(), *layers = json_array(), *variants = json_array();

        if (!o || !layers || !variants) {
                json_decref(o);
                json_decref(layers);
                json_decref(variants);
                return NULL;
        }
        json_object_set_new(o, "source", json_string(strempty(r->source)));
        json_object_set_new(o, "settings", json_string(r->settings));
        json_object_set_new(o, "calibration_images", json_integer((json_int_t) r->n_calibration));
        json_object_set_new(o, "before", numbers_json(&r->before));
        json_object_set_new(o, "after", numbers_json(&r->after));
        json_object_set_new(o, "size_reduction_pct",
                            json_real(100.0 * (1 - ratio((double) r->after.size_bytes, (double) r->before.size_bytes))));
        json_object_set_new(o, "size_ratio", json_real(ratio((double) r->before.size_bytes, (double) r->after.size_bytes)));
        json_object_set_new(o, "speedup_pct", json_real(100.0 * (ratio(r->before.latency_ms, r->after.latency_ms) - 1)));
        json_object_set_new(o, "top1_drop", json_real(r->before.top1 - r->after.top1));
        json_object_set_new(o, "summary", json_string(r->summary));
        if (r->n_targets) {
                json_t *targets = json_object();

                for (unsigned i = 0; i < r->n_targets; i++)
                        json_object_set_new(targets, r->targets[i].name,
                                            json_pack("{s:f, s:f, s:b}", "bound", r->targets[i].bound, "value",
                                                      r->targets[i].value, "met", r->targets[i].met));
                json_object_set_new(o, "targets", targets);
                json_object_set_new(o, "all_targets_met", json_boolean(r->all_targets_met));
        }
        json_object_set_new(o, "seconds", json_real(r->seconds));
        for (unsigned i = 0; i < r->n_variants; i++)
                json_array_append_new(variants, json_pack("{s:s, s:f, s:f, s:I}", "name", r->variants[i].name, "top1",
                                                          r->variants[i].top1, "top5", r->variants[i].top5,
                                                          "size_bytes", (json_int_t) r->variants[i].size_bytes));
        json_object_set_new(o, "variants", variants);
        for (uint32_t i = 0; r->layers && i < r->layers->n_layers; i++) {
                const LayerReport *l = &r->layers->layers[i];
                json_t *layer = json_pack("{s:s, s:s, s:i, s:I, s:I}", "name", l->name, "op", l->op, "bits", (int) l->bits,
                                          "params", (json_int_t) l->params, "bytes", (json_int_t) l->bytes);

                if (!layer)
                        continue;
                json_object_set_new(layer, "sparsity", json_real(l->sparsity));
                json_object_set_new(layer, "weight_sqnr_db", isfinite(l->weight_sqnr_db) ? json_real(l->weight_sqnr_db) : json_null());
                if (l->note)
                        json_object_set_new(layer, "note", json_string(l->note));
                json_array_append_new(layers, layer);
        }
        json_object_set_new(o, "layers", layers);
        if (r->layers)
                json_object_set_new(o, "float_ops", json_string(strempty(r->layers->float_ops)));
        return o;
}

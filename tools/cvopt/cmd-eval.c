/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>

#include "cli.h"
#include "data-source.h"
#include "eval.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptDataset *, cvopt_dataset_free);

void cmd_eval_help(FILE *f) {
        fprintf(f, "Usage: cvopt eval MODEL --data DATASET [options]\n\n"
               "Top-1/top-5 accuracy, per-class accuracy and confusion matrix of MODEL (.onnx or .cvm)\n"
               "on DATASET: fashion-mnist:train, fashion-mnist:test, idx:IMAGES,LABELS or dir:PATH.\n\n"
               "  --data DATASET           the labelled images\n"
               "  --limit N                only the first N images\n"
               "  --backend B              cpu (default), cpu-ref, cpu-simd, opencl, auto\n"
               "  --threads N              parallel sessions (default: one per core)\n"
               "  --json                   one JSON object (keys top1, top5, n, ...)\n"
               INPUT_SPEC_HELP);
}

static void progress(void *userdata, size_t done, size_t total) {
        (void) userdata;
        if (done == total || done % 500 == 0)
                fprintf(stderr, "\reval: %zu/%zu%s", done, total, done == total ? "\n" : "");
}

static const char *class_label(const CvoptModel *m, const CvoptDataset *ds, uint32_t c, char *buf, size_t size) {
        if (c < m->n_labels)
                return m->labels[c];
        if (cvopt_dataset_class_name(ds, c))
                return cvopt_dataset_class_name(ds, c);
        snprintf(buf, size, "class %u", c);
        return buf;
}

static void print_human(const CvoptModel *m, const CvoptDataset *ds, const EvalResult *r) {
        char buf[32];

        printf("top-1 %.2f%%  top-5 %.2f%%  (%zu images, %.0f images/s)\n\n", r->top1, r->top5, r->n, r->images_per_sec);
        printf("%-20s %8s %8s\n", "class", "images", "top-1");
        for (uint32_t c = 0; c < r->n_classes; c++) {
                uint64_t correct = r->confusion[(size_t) c * r->n_classes + c];

                printf("%-20s %8llu %7.2f%%\n", class_label(m, ds, c, buf, sizeof(buf)),
                       (unsigned long long) r->class_count[c],
                       r->class_count[c] ? 100.0 * (double) correct / (double) r->class_count[c] : 0.0);
        }
        printf("\nconfusion matrix (rows: true class, columns: predicted)\n");
        for (uint32_t c = 0; c < r->n_classes; c++) {
                for (uint32_t p = 0; p < r->n_classes; p++)
                        printf("%6llu", (unsigned long long) r->confusion[(size_t) c * r->n_classes + p]);
                printf("\n");
        }
}

static int print_json(const char *model_path, const CvoptModel *m, const CvoptDataset *ds, const EvalResult *r,
                      const char *backend) {
        json_t *o = json_object(), *classes = json_array(), *confusion = json_array();
        char buf[32];

        if (!o || !classes || !confusion)
                return -ENOMEM;
        json_object_set_new(o, "model", json_string(model_path));
        json_object_set_new(o, "model_id", json_string(m->id));
        json_object_set_new(o, "data", json_string(cvopt_dataset_spec(ds)));
        json_object_set_new(o, "backend", json_string(backend ? backend : "cpu"));
        json_object_set_new(o, "n", json_integer((json_int_t) r->n));
        json_object_set_new(o, "top1", json_real(r->top1));
        json_object_set_new(o, "top5", json_real(r->top5));
        json_object_set_new(o, "images_per_sec", json_real(r->images_per_sec));
        for (uint32_t c = 0; c < r->n_classes; c++) {
                uint64_t correct = r->confusion[(size_t) c * r->n_classes + c];
                json_t *row = json_array();

                json_array_append_new(classes,
                                      json_pack("{s:i, s:s, s:I, s:f}", "class", (int) c, "label",
                                                class_label(m, ds, c, buf, sizeof(buf)), "n",
                                                (json_int_t) r->class_count[c], "top1",
                                                r->class_count[c] ? 100.0 * (double) correct / (double) r->class_count[c] : 0.0));
                for (uint32_t p = 0; p < r->n_classes; p++)
                        json_array_append_new(row, json_integer((json_int_t) r->confusion[(size_t) c * r->n_classes + p]));
                json_array_append_new(confusion, row);
        }
        json_object_set_new(o, "per_class", classes);
        json_object_set_new(o, "confusion", confusion);
        json_dumpf(o, stdout, JSON_COMPACT);
        printf("\n");
        json_decref(o);
        return 0;
}

int cmd_eval(int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "data", required_argument, NULL, 'd' },
                { "limit", required_argument, NULL, 'l' },
                { "backend", required_argument, NULL, 'b' },
                { "threads", required_argument, NULL, 't' },
                { "json", no_argument, NULL, 'j' },
                INPUT_SPEC_LONG_OPTIONS,
                {},
        };
        _cleanup_(cvopt_model_freep) CvoptModel *model = NULL;
        _cleanup_(cvopt_dataset_freep) CvoptDataset *dataset = NULL;
        const char *data = NULL, *backend = NULL;
        InputSpecFlags spec = {};
        EvalResult result = {};
        DataSource source;
        unsigned long limit = 0, threads = 0;
        bool json = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        cmd_eval_help(stdout);
                        return EXIT_SUCCESS;
                case 'd':
                        data = optarg;
                        break;
                case 'l':
                case 't':
                        if (parse_count(optarg, c == 't' ? 64 : ULONG_MAX, c == 'l' ? &limit : &threads) < 0)
                                return usage_error("eval", "%s", c == 'l' ? "--limit needs a count" : "--threads needs 1..64");
                        break;
                case 'b':
                        backend = optarg;
                        break;
                case 'j':
                        json = true;
                        break;
                default:
                        r = input_spec_flags_parse(&spec, c, optarg);
                        if (r <= 0)
                                return usage_hint("eval");
                }
        }
        if (optind + 1 != argc || !data)
                return usage_error("eval", "%s", "needs one MODEL and --data DATASET");

        r = model_open_any(argv[optind], &spec, &model);
        if (r < 0)
                return log_error(r, NULL), EXIT_FAILURE;
        r = cvopt_dataset_open(data, &dataset);
        if (r < 0)
                return log_error(r, NULL), EXIT_FAILURE;
        r = data_source_init(&source, dataset, model, limit);
        if (r < 0)
                return log_error(r, NULL), EXIT_FAILURE;
        r = eval_graph(model->graph, source.count, cvopt_dataset_n_classes(dataset), data_source_fetch, &source,
                       &(EvalOptions) { .backend = backend, .threads = (unsigned) threads,
                                        .progress = cli_show_progress(json) ? progress : NULL },
                       &result);
        if (r < 0)
                return log_error(r, argv[optind]), EXIT_FAILURE;
        if (json)
                r = print_json(argv[optind], model, dataset, &result, backend);
        else
                print_human(model, dataset, &result);
        eval_result_done(&result);
        return r < 0 ? (log_error(r, NULL), EXIT_FAILURE) : EXIT_SUCCESS;
}

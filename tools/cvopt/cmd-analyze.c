/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>

#include "cli.h"
#include "macro.h"
#include "search.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptDataset *, cvopt_dataset_free);

void cmd_analyze_help(FILE *f) {
        fprintf(f, "Usage: cvopt analyze MODEL --calib DATASET --val DATASET [options]\n\n"
               "Sensitivity of each weighted layer: top-1 on the validation images when only that layer\n"
               "is quantized to 8 or 4 bits and pruned (OBS) to 0, 50 or 75%%, every other layer at\n"
               "8 bits; and the bytes each choice would take.\n\n"
               "  --calib DATASET          calibration images (training split)\n"
               "  --val DATASET            images the accuracy is measured on\n"
               "  --val-limit N            first N images of --val (default 1000)\n"
               "  --calib-count N          calibration images (default 256)\n"
               "  --json                   the table as JSON\n"
               INPUT_SPEC_HELP);
}

int cmd_analyze(int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },      { "calib", required_argument, NULL, 'c' },
                { "val", required_argument, NULL, 'v' }, { "val-limit", required_argument, NULL, 'l' },
                { "calib-count", required_argument, NULL, 'n' }, { "json", no_argument, NULL, 'j' },
                INPUT_SPEC_LONG_OPTIONS,                      {},
        };
        _cleanup_(cvopt_model_freep) CvoptModel *model = NULL;
        _cleanup_(cvopt_dataset_freep) CvoptDataset *calib = NULL, *val = NULL;
        _cleanup_free_ size_t *indices = NULL;
        const char *calib_spec = NULL, *val_spec = NULL;
        unsigned long limit = 1000, calib_count = 256;
        InputSpecFlags spec = {};
        DataSource calib_source, val_source;
        Sensitivity table = {};
        bool json = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        cmd_analyze_help(stdout);
                        return EXIT_SUCCESS;
                case 'c':
                        calib_spec = optarg;
                        break;
                case 'v':
                        val_spec = optarg;
                        break;
                case 'l':
                case 'n':
                        if (parse_count(optarg, ULONG_MAX, c == 'l' ? &limit : &calib_count) < 0 ||
                            (c == 'l' ? limit : calib_count) == 0)
                                return usage_error("analyze", "%s", "--val-limit/--calib-count need a positive count");
                        break;
                case 'j':
                        json = true;
                        break;
                default:
                        r = input_spec_flags_parse(&spec, c, optarg);
                        if (r <= 0)
                                return usage_hint("analyze");
                }
        }
        if (optind + 1 != argc || !calib_spec || !val_spec)
                return usage_error("analyze", "%s", "needs MODEL, --calib DATASET and --val DATASET");
        if ((r = model_open_any(argv[optind], &spec, &model)) < 0 || (r = cvopt_dataset_open(calib_spec, &calib)) < 0 ||
            (r = cvopt_dataset_open(val_spec, &val)) < 0 || (r = data_source_init(&calib_source, calib, model, 0)) < 0 ||
            (r = data_source_init(&val_source, val, model, limit)) < 0)
                return log_error(r, NULL), EXIT_FAILURE;
        calib_count = MIN(calib_count, (unsigned long) cvopt_dataset_count(calib));
        indices = calloc(calib_count, sizeof(size_t));
        if (!indices)
                return log_error(-ENOMEM, NULL), EXIT_FAILURE;
        if ((r = cvopt_dataset_sample(calib, calib_count, 1, indices)) < 0)
                return log_error(r, NULL), EXIT_FAILURE;
        calib_source.indices = indices;
        calib_source.count = calib_count;

        SearchContext ctx = { .float_model = model, .calib = &calib_source, .analysis = &val_source,
                              .n_classes = cvopt_dataset_n_classes(val), .calibration = CALIBRATION_MSE,
                              .progress = cli_show_progress(json) };
        r = sensitivity_analyze(&ctx, &table);
        if (r < 0)
                return log_error(r, "analyze"), EXIT_FAILURE;
        if (json) {
                json_t *o = json_pack("{s:s, s:I, s:f, s:f}", "model", argv[optind], "n", (json_int_t) table.n_eval,
                                      "float_top1", table.float_top1, "int8_top1", table.base_top1);
                json_t *layers = json_array();

                for (uint32_t i = 0; i < table.n_layers; i++) {
                        json_t *choices = json_array();

                        for (int j = 0; j < SEARCH_CHOICES; j++)
                                json_array_append_new(choices,
                                                      json_pack("{s:i, s:f, s:f, s:f, s:I}", "bits", (int) search_choices[j].bits,
                                                                "sparsity", search_choices[j].sparsity, "top1",
                                                                table.top1[i * SEARCH_CHOICES + j], "drop",
                                                                table.float_top1 - table.top1[i * SEARCH_CHOICES + j],
                                                                "bytes", (json_int_t) table.bytes[i * SEARCH_CHOICES + j]));
                        json_array_append_new(layers, json_pack("{s:s, s:I, s:o}", "name", table.names[i], "weights",
                                                                (json_int_t) table.weights[i], "choices", choices));
                }
                json_object_set_new(o, "layers", layers);
                json_dumpf(o, stdout, JSON_COMPACT);
                printf("\n");
                json_decref(o);
        } else {
                printf("top-1 on %zu images: float %.2f%%, every layer int8 %.2f%%\n\n", table.n_eval, table.float_top1,
                       table.base_top1);
                printf("%-24s %10s", "layer", "weights");
                for (int j = 0; j < SEARCH_CHOICES; j++)
                        printf("   %u-bit %2.0f%%", search_choices[j].bits, 100 * search_choices[j].sparsity);
                printf("\n");
                for (uint32_t i = 0; i < table.n_layers; i++) {
                        printf("%-24s %10llu", table.names[i], (unsigned long long) table.weights[i]);
                        for (int j = 0; j < SEARCH_CHOICES; j++)
                                printf("   %9.2f%%", table.top1[i * SEARCH_CHOICES + j]);
                        printf("\n");
                }
        }
        sensitivity_done(&table);
        return EXIT_SUCCESS;
}

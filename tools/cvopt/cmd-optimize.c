/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include "cli.h"
#include "macro.h"
#include "optimize.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(QuantizeReport *, quantize_report_free);

void cmd_optimize_help(FILE *f) {
        fprintf(f, "Usage: cvopt optimize MODEL.onnx -o OUT.cvm --calib DATASET --val DATASET [options]\n\n"
               "Post-training compression of a float model: optional pruning, then int8 (or int4-weight)\n"
               "quantization; evaluates before and after on the same data and writes OUT.cvm and a report.\n\n"
               "  -o, --output FILE        the optimized model (.cvm)\n"
               "  --calib DATASET          calibration images (from the training split)\n"
               "  --val DATASET            validation images (the accuracy reported)\n"
               "  --quantize int8|w4a8     8-bit weights, or 4-bit weights with 8-bit activations (default int8)\n"
               "  --calibration METHOD     minmax, percentile, mse, entropy or auto (default mse)\n"
               "  --calib-count N          calibration images (default 512)\n"
               "  --gptq / --no-gptq       error-compensating weight rounding (default: on for w4a8)\n"
               "  --compare                also measure the baseline each method must beat: plain rounding\n"
               "                           for GPTQ, magnitude pruning for obs (report variants)\n"
               "  --no-bias-correction     keep the biases as they are\n"
               "  --equalize/--no-equalize cross-layer weight equalization (default: on for nets with\n"
               "                           depthwise convolutions)\n"
               "  --prune METHOD:AMOUNT    magnitude|obs|channel, e.g. obs:0.5, obs:2:4, channel:0.25\n"
               "  --report FILE.md         write the report (Markdown; FILE.json too with --json)\n"
               "  --val-limit N            only the first N validation images\n"
               "  --train-sample N         training-split top-1 on N images (default 2000, 0: skip)\n"
               "  --seed N                 for the calibration and training samples (default 1)\n"
               "  --backend B              backend for the latency column (default cpu)\n"
               "  --json                   print the report as JSON\n"
               "\nTargets (any of them turns on the per-layer search: a sensitivity table on held-out\n"
               "training images, a knapsack over it, verification on --val; exit 1 if one is missed):\n"
               "  --max-drop POINTS        largest top-1 drop allowed\n"
               "  --min-size-reduction PCT smallest size reduction on disk, in percent\n"
               "  --min-speedup PCT        smallest speedup, in percent (before/after - 1)\n"
               "  --target-size BYTES      largest file size\n"
               "  --analysis-count N       held-out training images for the sensitivity table (default 1000)\n"
               INPUT_SPEC_HELP);
}

enum {
        OPT_CALIB = 0x2000,
        OPT_VAL,
        OPT_QUANTIZE,
        OPT_CALIBRATION,
        OPT_CALIB_COUNT,
        OPT_GPTQ,
        OPT_NO_GPTQ,
        OPT_COMPARE,
        OPT_NO_BIAS,
        OPT_PRUNE,
        OPT_REPORT,
        OPT_VAL_LIMIT,
        OPT_TRAIN_SAMPLE,
        OPT_SEED,
        OPT_BACKEND,
        OPT_JSON,
        OPT_MAX_DROP,
        OPT_MIN_SIZE,
        OPT_MIN_SPEEDUP,
        OPT_TARGET_SIZE,
        OPT_ANALYSIS_COUNT,
        OPT_EQUALIZE,
        OPT_NO_EQUALIZE,
};

static int write_report(const char *path, const OptimizeReport *report, bool json) {
        FILE *f = fopen(path, "we");

        if (!f)
                return cvopt_error_set(-errno, "%s: %m", path);
        report_write_markdown(report, f);
        if (fclose(f) != 0)
                return cvopt_error_set(-EIO, "%s: write failed", path);
        if (json) {
                char json_path[4096];
                json_t *o = report_to_json(report);
                size_t len = strlen(path);

                if (len > 3 && streq(path + len - 3, ".md"))
                        len -= 3;
                snprintf(json_path, sizeof(json_path), "%.*s.json", (int) len, path);
                if (!o || json_dump_file(o, json_path, JSON_INDENT(2)) < 0) {
                        json_decref(o);
                        return cvopt_error_set(-EIO, "%s: write failed", json_path);
                }
                json_decref(o);
        }
        return 0;
}

int cmd_optimize(int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "output", required_argument, NULL, 'o' },
                { "calib", required_argument, NULL, OPT_CALIB },
                { "val", required_argument, NULL, OPT_VAL },
                { "quantize", required_argument, NULL, OPT_QUANTIZE },
                { "calibration", required_argument, NULL, OPT_CALIBRATION },
                { "calib-count", required_argument, NULL, OPT_CALIB_COUNT },
                { "gptq", no_argument, NULL, OPT_GPTQ },
                { "no-gptq", no_argument, NULL, OPT_NO_GPTQ },
                { "compare", no_argument, NULL, OPT_COMPARE },
                { "no-bias-correction", no_argument, NULL, OPT_NO_BIAS },
                { "prune", required_argument, NULL, OPT_PRUNE },
                { "report", required_argument, NULL, OPT_REPORT },
                { "val-limit", required_argument, NULL, OPT_VAL_LIMIT },
                { "train-sample", required_argument, NULL, OPT_TRAIN_SAMPLE },
                { "seed", required_argument, NULL, OPT_SEED },
                { "backend", required_argument, NULL, OPT_BACKEND },
                { "json", no_argument, NULL, OPT_JSON },
                { "max-drop", required_argument, NULL, OPT_MAX_DROP },
                { "min-size-reduction", required_argument, NULL, OPT_MIN_SIZE },
                { "min-speedup", required_argument, NULL, OPT_MIN_SPEEDUP },
                { "target-size", required_argument, NULL, OPT_TARGET_SIZE },
                { "analysis-count", required_argument, NULL, OPT_ANALYSIS_COUNT },
                { "equalize", no_argument, NULL, OPT_EQUALIZE },
                { "no-equalize", no_argument, NULL, OPT_NO_EQUALIZE },
                INPUT_SPEC_LONG_OPTIONS,
                {},
        };
        _cleanup_(cvopt_model_freep) CvoptModel *model = NULL;
        _cleanup_(quantize_report_freep) QuantizeReport *layers = NULL;
        OptimizeArgs args = {
                .calib_count = 512,
                .max_drop = NAN,
                .equalize = -1,
                .train_sample = 2000,
                .seed = 1,
                .bench_runs = 100,
                .pipeline = { .quantize = { .calibration = CALIBRATION_MSE, .weight_bits = 8, .keep_edges_8bit = true,
                                            .bias_correction = true } },
        };
        InputSpecFlags spec = {};
        OptimizeReport report;
        PruneSpec prune;
        const char *report_path = NULL;
        int gptq = -1; /* default by weight bits */
        bool json = false;
        unsigned long v;
        int c, r;

        while ((c = getopt_long(argc, argv, "ho:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        cmd_optimize_help(stdout);
                        return EXIT_SUCCESS;
                case 'o':
                        args.output_path = optarg;
                        break;
                case OPT_CALIB:
                        args.calib_spec = optarg;
                        break;
                case OPT_VAL:
                        args.val_spec = optarg;
                        break;
                case OPT_QUANTIZE:
                        if (streq(optarg, "int8"))
                                args.pipeline.quantize.weight_bits = 8;
                        else if (streq(optarg, "w4a8"))
                                args.pipeline.quantize.weight_bits = 4;
                        else
                                return usage_error("optimize", "%s", "--quantize takes int8 or w4a8");
                        break;
                case OPT_CALIBRATION:
                        r = calibration_method_from_name(optarg);
                        if (r < 0)
                                return usage_error("optimize", "%s", "--calibration takes minmax, percentile, mse, entropy or auto");
                        args.pipeline.quantize.calibration = r;
                        break;
                case OPT_CALIB_COUNT:
                        if (parse_count(optarg, 1000000, &v) < 0 || v == 0)
                                return usage_error("optimize", "%s", "--calib-count needs a positive count");
                        args.calib_count = v;
                        break;
                case OPT_GPTQ:
                case OPT_NO_GPTQ:
                        gptq = c == OPT_GPTQ;
                        break;
                case OPT_EQUALIZE:
                case OPT_NO_EQUALIZE:
                        args.equalize = c == OPT_EQUALIZE;
                        break;
                case OPT_COMPARE:
                        args.compare = true;
                        break;
                case OPT_NO_BIAS:
                        args.pipeline.quantize.bias_correction = false;
                        break;
                case OPT_PRUNE:
                        if (prune_spec_parse(optarg, &prune) < 0) {
                                fprintf(stderr, "cvopt optimize: %s\n", cvopt_error_detail());
                                return EXIT_USAGE;
                        }
                        args.prune = &prune;
                        break;
                case OPT_REPORT:
                        report_path = optarg;
                        break;
                case OPT_VAL_LIMIT:
                case OPT_TRAIN_SAMPLE:
                        if (parse_count(optarg, 100000000, &v) < 0)
                                return usage_error("optimize", "%s", "--val-limit/--train-sample need a count");
                        *(c == OPT_VAL_LIMIT ? &args.val_limit : &args.train_sample) = v;
                        break;
                case OPT_SEED:
                        if (parse_count(optarg, ULONG_MAX, &v) < 0)
                                return usage_error("optimize", "%s", "--seed needs a number");
                        args.seed = v;
                        break;
                case OPT_BACKEND:
                        args.backend = optarg;
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                case OPT_MAX_DROP:
                case OPT_MIN_SIZE:
                case OPT_MIN_SPEEDUP: {
                        char *end;
                        double d = strtod(optarg, &end);

                        if (end == optarg || *end || !(d >= 0) || d > 1e6)
                                return usage_error("optimize", "%s", "--max-drop/--min-size-reduction/--min-speedup need a number >= 0");
                        if (c == OPT_MAX_DROP)
                                args.max_drop = d;
                        else if (c == OPT_MIN_SIZE)
                                args.min_size_reduction_pct = d;
                        else
                                args.min_speedup_pct = d;
                        break;
                }
                case OPT_TARGET_SIZE:
                case OPT_ANALYSIS_COUNT:
                        if (parse_count(optarg, ULONG_MAX, &v) < 0 || v == 0)
                                return usage_error("optimize", "%s", "--target-size/--analysis-count need a positive count");
                        if (c == OPT_TARGET_SIZE)
                                args.target_size = v;
                        else
                                args.analysis_count = v;
                        break;
                default:
                        r = input_spec_flags_parse(&spec, c, optarg);
                        if (r <= 0)
                                return usage_hint("optimize");
                }
        }
        if (optind + 1 != argc || !args.output_path || !args.calib_spec || !args.val_spec)
                return usage_error("optimize", "%s", "needs MODEL, -o OUT.cvm, --calib DATASET and --val DATASET");
        args.source_path = argv[optind];
        args.pipeline.gptq = gptq >= 0 ? gptq : args.pipeline.quantize.weight_bits < 8;
        args.progress = cli_show_progress(json);

        r = model_open_any(args.source_path, &spec, &model);
        if (r < 0)
                return log_error(r, NULL), EXIT_FAILURE;
        _cleanup_(cvopt_model_freep) CvoptModel *written = NULL;
        r = optimize_run(model, &args, &report, &layers, &written);
        /* A missed target still has a model and a report to show: the best
         * reached, then the failure. */
        if (r < 0 && r != -CVOPT_E_TARGET)
                return log_error(r, "optimize"), EXIT_FAILURE;
        int missed = r;
        report.layers = layers;
        if (report_path && (r = write_report(report_path, &report, json)) < 0)
                return log_error(r, NULL), EXIT_FAILURE;
        if (json) {
                json_t *o = report_to_json(&report);

                if (!o)
                        return log_error(-ENOMEM, NULL), EXIT_FAILURE;
                json_dumpf(o, stdout, JSON_COMPACT);
                printf("\n");
                json_decref(o);
        } else {
                report_write_table(&report, stdout);
                printf("\n%s\n", report.summary);
                for (unsigned i = 0; i < report.n_targets; i++)
                        printf("target %s: bound %.2f, reached %.2f: %s\n", report.targets[i].name,
                               report.targets[i].bound, report.targets[i].value, report.targets[i].met ? "met" : "NOT MET");
        }
        if (missed < 0)
                return log_error(missed, "optimize"), EXIT_FAILURE;
        return EXIT_SUCCESS;
}

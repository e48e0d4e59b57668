/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>

#include "bench.h"
#include "cli.h"
#include "macro.h"


void cmd_bench_help(FILE *f) {
        fprintf(f, "Usage: cvopt bench MODEL [options]\n\n"
               "Latency of one inference (batch 1) after warm-up: median and p90 over the runs,\n"
               "and the process's peak resident memory.\n\n"
               "  --backend B              cpu (default), cpu-ref, cpu-simd, opencl, auto\n"
               "  --threads N              threads per inference (cpu-simd; 0, 1: one)\n"
               "  --runs N                 timed runs (default 200)\n"
               "  --warmup N               untimed runs first (default 20)\n"
               "  --layers                 per-layer median times\n"
               "  --json                   one JSON object\n"
               INPUT_SPEC_HELP);
}

int cmd_bench(int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },     { "backend", required_argument, NULL, 'b' },
                { "threads", required_argument, NULL, 't' }, { "runs", required_argument, NULL, 'r' },
                { "warmup", required_argument, NULL, 'w' }, { "layers", no_argument, NULL, 'L' },
                { "json", no_argument, NULL, 'j' },    INPUT_SPEC_LONG_OPTIONS,
                {},
        };
        _cleanup_(cvopt_model_freep) CvoptModel *model = NULL;
        BenchOptions bo = { .warmup_runs = 20, .runs = 200 };
        InputSpecFlags spec = {};
        BenchResult result = {};
        bool json = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                unsigned long v;

                switch (c) {
                case 'h':
                        cmd_bench_help(stdout);
                        return EXIT_SUCCESS;
                case 'b':
                        bo.backend = optarg;
                        break;
                case 't':
                case 'r':
                case 'w':
                        if (parse_count(optarg, 1000000, &v) < 0 || (c == 'r' && v == 0))
                                return usage_error("bench", "%s", "--threads/--runs/--warmup need a count");
                        if (c == 't')
                                bo.threads = (int) v;
                        else if (c == 'r')
                                bo.runs = (unsigned) v;
                        else
                                bo.warmup_runs = (unsigned) v;
                        break;
                case 'L':
                        bo.layers = true;
                        break;
                case 'j':
                        json = true;
                        break;
                default:
                        r = input_spec_flags_parse(&spec, c, optarg);
                        if (r <= 0)
                                return usage_hint("bench");
                }
        }
        if (optind + 1 != argc)
                return usage_error("bench", "%s", "needs one MODEL");
        r = model_open_any(argv[optind], &spec, &model);
        if (r < 0)
                return log_error(r, NULL), EXIT_FAILURE;
        r = bench_graph(model->graph, &bo, &result);
        if (r < 0)
                return log_error(r, argv[optind]), EXIT_FAILURE;
        if (json) {
                json_t *o = json_pack("{s:s, s:s, s:f, s:f, s:f, s:f, s:i, s:I, s:I}", "model", argv[optind], "backend",
                                      result.backend, "median_ms", result.median_ms, "p90_ms", result.p90_ms, "min_ms",
                                      result.min_ms, "mean_ms", result.mean_ms, "runs", (int) result.runs,
                                      "peak_rss_bytes", (json_int_t) result.peak_rss_bytes, "activation_bytes",
                                      (json_int_t) result.activation_bytes);
                if (o && bo.layers) {
                        json_t *layers = json_array();

                        for (uint32_t k = 0; k < result.n_nodes; k++)
                                json_array_append_new(layers, json_pack("{s:s, s:s, s:f}", "name", model->graph->nodes[k].name,
                                                                        "op", cvopt_op_name(model->graph->nodes[k].op),
                                                                        "median_ms", result.node_median_ms[k]));
                        json_object_set_new(o, "layers", layers);
                }
                if (o)
                        json_dumpf(o, stdout, JSON_COMPACT);
                printf("\n");
                json_decref(o);
        } else {
                printf("%s on %s: median %.3f ms, p90 %.3f ms, min %.3f ms (%u runs after %u warm-up)\n", argv[optind],
                       result.backend, result.median_ms, result.p90_ms, result.min_ms, result.runs, bo.warmup_runs);
                printf("peak RSS %.1f MiB, activation arena %.1f KiB\n", result.peak_rss_bytes / 1048576.0,
                       result.activation_bytes / 1024.0);
                if (bo.layers) {
                        printf("\n%-32s %-20s %10s\n", "layer", "op", "median ms");
                        for (uint32_t k = 0; k < result.n_nodes; k++)
                                printf("%-32s %-20s %10.4f\n", model->graph->nodes[k].name,
                                       cvopt_op_name(model->graph->nodes[k].op), result.node_median_ms[k]);
                }
        }
        bench_result_done(&result);
        return EXIT_SUCCESS;
}

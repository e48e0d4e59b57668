/* SPDX-License-Identifier: MIT */
/* cvopt convert: ONNX model -> optimized graph with its input spec and
 * labels -> .cvm, recording where it came from (file name, SHA-256, flags)
 * in the model's provenance. */
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <string.h>

#include "cli.h"
#include "sha256.h"

/* protobuf's own limit on a message; ONNX models above it cannot exist. */
#define SOURCE_MAX_BYTES ((size_t) 2 << 30)

enum {
        ARG_OUTPUT = ARG_COMMAND_FIRST,
};

void cmd_convert_help(FILE *f) {
        fprintf(f,
                "Usage: cvopt convert MODEL.onnx -o MODEL.cvm [OPTIONS...]\n"
                "\n"
                "Imports an ONNX model, folds batch norms, fuses activations, and writes a\n"
                ".cvm model with its input spec, labels and provenance.\n"
                "\n"
                "Options:\n"
                "  -o --output FILE             the .cvm to write (required)\n"
                "  -h --help                    show this help\n"
                "\n" INPUT_SPEC_HELP);
}

static json_t *json_channels(const float *values, uint32_t n) {
        json_t *a = json_array();

        for (uint32_t i = 0; a && i < n; i++)
                json_array_append_new(a, json_real(values[i]));
        return a;
}

/* The provenance object: the source file (base name, SHA-256) and the
 * spec flags given, so a .cvm can be traced to its exact source and
 * rebuilt with the same command. */
static int provenance_build(const char *source_path, const InputSpecFlags *flags, char **ret_json) {
        _cleanup_free_ void *data = NULL;
        _cleanup_free_ char *path_copy = strdup(source_path);
        char hex[2 * SHA256_DIGEST_BYTES + 1];
        json_t *root, *source, *spec_flags;
        size_t size;
        char *text;
        int r;

        if (!path_copy)
                return -ENOMEM;
        r = read_file_full(source_path, SOURCE_MAX_BYTES, &data, &size);
        if (r < 0)
                return r;
        sha256_hex(data, size, hex);

        spec_flags = json_object();
        if (flags->color)
                json_object_set_new(spec_flags, "color", json_string(cvopt_color_name((CvoptColor) flags->color)));
        if (flags->n_mean)
                json_object_set_new(spec_flags, "mean", json_channels(flags->mean, flags->n_mean));
        if (flags->n_std)
                json_object_set_new(spec_flags, "std", json_channels(flags->std, flags->n_std));
        if (flags->resize)
                json_object_set_new(spec_flags, "resize",
                                    json_string(cvopt_resize_name((CvoptResize) flags->resize)));
        source = json_pack("{s:s, s:s, s:s, s:I}", "file", basename(path_copy), "format", "onnx", "sha256", hex,
                           "size_bytes", (json_int_t) size);
        root = json_pack("{s:s, s:o, s:o}", "tool", "cvopt " CVOPT_VERSION " convert", "source", source,
                         "input_spec_flags", spec_flags);
        if (!root)
                return -ENOMEM;
        text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));
        json_decref(root);
        if (!text)
                return -ENOMEM;
        *ret_json = text;
        return 0;
}

int cmd_convert(int argc, char **argv) {
        static const struct option options[] = {
                { "output", required_argument, NULL, 'o' },
                { "help", no_argument, NULL, 'h' },
                INPUT_SPEC_LONG_OPTIONS,
                {},
        };
        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
        InputSpecFlags flags = {};
        const char *output = NULL, *source;
        GraphStats stats;
        uint64_t size_bytes = 0;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "o:h", options, NULL)) >= 0) {
                switch (c) {
                case 'o':
                        output = optarg;
                        break;
                case 'h':
                        cmd_convert_help(stdout);
                        return EXIT_SUCCESS;
                default:
                        /* '?': getopt_long printed what is wrong. */
                        if (c == '?' || input_spec_flags_parse(&flags, c, optarg) <= 0)
                                return usage_hint("convert");
                }
        }
        if (argc - optind != 1)
                return usage_error("convert", "expected one MODEL.onnx argument");
        if (!output)
                return usage_error("convert", "missing -o/--output FILE.cvm");
        source = argv[optind];

        r = model_open_any(source, &flags, &m);
        if (r < 0) {
                log_error(r, source);
                return EXIT_FAILURE;
        }
        /* A .cvm given as source keeps its provenance: it already names its
         * original source, which a re-save must not overwrite. */
        if (!m->provenance_json) {
                r = provenance_build(source, &flags, &m->provenance_json);
                if (r < 0) {
                        log_error(r, source);
                        return EXIT_FAILURE;
                }
        }
        r = cvopt_model_save(m, output);
        if (r < 0) {
                log_error(r, output);
                return EXIT_FAILURE;
        }
        r = cvopt_model_serialized_size(m, &size_bytes);
        if (r < 0) {
                log_error(r, output);
                return EXIT_FAILURE;
        }
        graph_stats(m->graph, &stats);
        printf("%s: %u nodes, %llu params, %llu bytes, id %s\n", output, m->graph->n_nodes,
               (unsigned long long) stats.n_params, (unsigned long long) size_bytes, m->id);
        return EXIT_SUCCESS;
}

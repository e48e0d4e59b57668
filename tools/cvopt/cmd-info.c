/* SPDX-License-Identifier: MIT */
/* cvopt info: what a model is (inputs, outputs, input spec, labels, op
 * counts, parameters, layers, id, provenance), as text or one JSON object. */
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "cli.h"

enum {
        ARG_JSON = ARG_COMMAND_FIRST,
};

void cmd_info_help(FILE *f) {
        fprintf(f,
                "Usage: cvopt info MODEL [OPTIONS...]\n"
                "\n"
                "Describes a model (.onnx or .cvm): inputs and outputs with shapes, input\n"
                "spec, labels, operator counts, parameters, per-layer table, id, provenance.\n"
                "\n"
                "Options:\n"
                "      --json                   print one JSON object\n"
                "  -h --help                    show this help\n"
                "\n" INPUT_SPEC_HELP);
}

static json_t *json_tensor(const CvoptTensor *t) {
        json_t *shape = json_array();

        for (uint32_t d = 0; t->has_shape && d < t->ndim; d++)
                json_array_append_new(shape, json_integer(t->dims[d]));
        return json_pack("{s:s, s:s, s:o}", "name", t->name ? t->name : "", "dtype", cvopt_dtype_name(t->dtype),
                         "shape", t->has_shape ? shape : (json_decref(shape), json_null()));
}

static json_t *json_floats(const float *v, uint32_t n) {
        json_t *a = json_array();

        for (uint32_t i = 0; i < n; i++)
                json_array_append_new(a, json_real(v[i]));
        return a;
}

static uint64_t node_params(const CvoptGraph *g, const CvoptNode *n) {
        uint64_t params = 0;

        for (uint32_t k = 0; k < n->n_inputs; k++) {
                const CvoptTensor *t = cvopt_node_input(g, n, k);
                int64_t count;

                if (!t || !t->is_constant)
                        continue;
                count = cvopt_tensor_count(t);
                if (count > 0)
                        params += (uint64_t) count;
        }
        return params;
}

/* Everything info shows, as one JSON object; the text form prints from it,
 * so the two never disagree. */
static json_t *info_build(const char *path, const CvoptModel *m) {
        const CvoptGraph *g = m->graph;
        const CvoptInputSpec *s = &m->input;
        uint32_t channels = cvopt_color_channels(s->color);
        json_t *root, *inputs = json_array(), *outputs = json_array(), *labels = json_array();
        json_t *ops = json_object(), *layers = json_array(), *provenance = json_null();
        uint64_t size_bytes = 0;
        GraphStats stats;
        char buf[32];

        for (uint32_t i = 0; i < g->n_inputs; i++)
                json_array_append_new(inputs, json_tensor(&g->tensors[g->inputs[i]]));
        for (uint32_t i = 0; i < g->n_outputs; i++)
                json_array_append_new(outputs, json_tensor(&g->tensors[g->outputs[i]]));
        for (uint32_t i = 0; i < m->n_labels; i++)
                json_array_append_new(labels, json_string(model_label(m, i, buf, sizeof buf)));
        for (uint32_t i = 0; i < g->n_nodes; i++) {
                const CvoptNode *n = &g->nodes[i];
                const char *op = cvopt_op_name(n->op);
                const CvoptTensor *out = cvopt_node_output(g, n, 0);
                json_t *count = json_object_get(ops, op);
                json_t *shape = json_array();

                json_object_set_new(ops, op, json_integer(count ? json_integer_value(count) + 1 : 1));
                for (uint32_t d = 0; out && out->has_shape && d < out->ndim; d++)
                        json_array_append_new(shape, json_integer(out->dims[d]));
                /* A fused activation (cvopt_graph_fuse_activations) is part of the layer. */
                json_array_append_new(layers, json_pack("{s:s, s:s, s:s?, s:o, s:I}", "name", n->name ? n->name : "",
                                                        "op", op, "activation",
                                                        cvopt_node_get_string(n, "activation", NULL), "output_shape",
                                                        shape, "params", (json_int_t) node_params(g, n)));
        }
        if (m->provenance_json) {
                json_decref(provenance);
                /* Provenance is free-form: shown as JSON when it is JSON, else as text. */
                provenance = json_loads(m->provenance_json, 0, NULL);
                if (!provenance)
                        provenance = json_string(m->provenance_json);
        }
        graph_stats(g, &stats);
        if (cvopt_model_serialized_size(m, &size_bytes) < 0)
                size_bytes = 0;

        root = json_pack("{s:s, s:s, s:o, s:o, s:{s:i, s:i, s:s, s:o, s:o, s:s}, s:o, s:o, s:I, s:I, s:I, s:I, "
                         "s:o, s:o}",
                         "file", path, "id", m->id, "inputs", inputs, "outputs", outputs, "input_spec", "width",
                         (int) s->width, "height", (int) s->height, "color", cvopt_color_name(s->color) ?: "?", "mean",
                         json_floats(s->mean, channels), "std", json_floats(s->std, channels), "resize",
                         cvopt_resize_name(s->resize) ?: "?", "labels", labels, "op_counts", ops, "n_nodes",
                         (json_int_t) g->n_nodes, "n_params", (json_int_t) stats.n_params, "params_bytes",
                         (json_int_t) stats.params_bytes, "cvm_bytes", (json_int_t) size_bytes, "layers", layers,
                         "provenance", provenance);
        return root;
}

static void print_shape(json_t *shape) {
        size_t i;
        json_t *d;

        if (!json_is_array(shape)) {
                fputs("?", stdout);
                return;
        }
        if (json_array_size(shape) == 0)
                fputs("scalar", stdout);
        json_array_foreach(shape, i, d)
                printf("%s%lld", i ? "x" : "", (long long) json_integer_value(d));
}

static void print_tensors(const char *title, json_t *list) {
        size_t i;
        json_t *t;

        printf("%s:\n", title);
        json_array_foreach(list, i, t) {
                printf("  %s  %s ", json_string_value(json_object_get(t, "name")),
                       json_string_value(json_object_get(t, "dtype")));
                print_shape(json_object_get(t, "shape"));
                putchar('\n');
        }
}

static void print_floats(json_t *list) {
        size_t i;
        json_t *v;

        json_array_foreach(list, i, v)
                printf("%s%g", i ? "," : "", json_real_value(v));
}

static void info_print_text(json_t *info) {
        json_t *spec = json_object_get(info, "input_spec");
        json_t *labels = json_object_get(info, "labels"), *v;
        const char *key;
        size_t i;

        printf("Model:       %s\n", json_string_value(json_object_get(info, "file")));
        printf("Id:          %s\n", *json_string_value(json_object_get(info, "id")) ?
                                            json_string_value(json_object_get(info, "id")) :
                                            "(none: not saved as .cvm)");
        print_tensors("Inputs", json_object_get(info, "inputs"));
        print_tensors("Outputs", json_object_get(info, "outputs"));
        printf("Input spec:  %lldx%lld %s, mean ", (long long) json_integer_value(json_object_get(spec, "width")),
               (long long) json_integer_value(json_object_get(spec, "height")),
               json_string_value(json_object_get(spec, "color")));
        print_floats(json_object_get(spec, "mean"));
        fputs(", std ", stdout);
        print_floats(json_object_get(spec, "std"));
        printf(", resize %s\n", json_string_value(json_object_get(spec, "resize")));
        printf("Labels:      %zu", json_array_size(labels));
        json_array_foreach(labels, i, v)
                printf("%s%s", i ? ", " : ": ", json_string_value(v));
        putchar('\n');
        printf("Parameters:  %lld (%lld bytes in memory, %lld bytes as .cvm)\n",
               (long long) json_integer_value(json_object_get(info, "n_params")),
               (long long) json_integer_value(json_object_get(info, "params_bytes")),
               (long long) json_integer_value(json_object_get(info, "cvm_bytes")));
        printf("Operators:   %lld nodes;", (long long) json_integer_value(json_object_get(info, "n_nodes")));
        json_object_foreach(json_object_get(info, "op_counts"), key, v)
                printf(" %s %lld", key, (long long) json_integer_value(v));
        putchar('\n');
        printf("Layers:\n  %-32s %-20s %-18s %s\n", "NAME", "OP", "OUTPUT", "PARAMS");
        json_array_foreach(json_object_get(info, "layers"), i, v) {
                char shape[64] = "";
                size_t used = 0, k;
                json_t *d;

                json_array_foreach(json_object_get(v, "output_shape"), k, d)
                        if (used < sizeof shape)
                                used += (size_t) snprintf(shape + used, sizeof shape - used, "%s%lld", k ? "x" : "",
                                                          (long long) json_integer_value(d));
                const char *activation = json_string_value(json_object_get(v, "activation"));
                char op[64];

                snprintf(op, sizeof op, "%s%s%s", json_string_value(json_object_get(v, "op")), activation ? "+" : "",
                         activation ?: "");
                printf("  %-32s %-20s %-18s %lld\n", json_string_value(json_object_get(v, "name")), op, shape,
                       (long long) json_integer_value(json_object_get(v, "params")));
        }
        v = json_object_get(info, "provenance");
        if (!json_is_null(v)) {
                char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

                printf("Provenance:  %s\n", text ? text : "?");
                free(text);
        }
}

int cmd_info(int argc, char **argv) {
        static const struct option options[] = {
                { "json", no_argument, NULL, ARG_JSON },
                { "help", no_argument, NULL, 'h' },
                INPUT_SPEC_LONG_OPTIONS,
                {},
        };
        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
        InputSpecFlags flags = {};
        bool json = false;
        const char *path;
        json_t *info;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_JSON:
                        json = true;
                        break;
                case 'h':
                        cmd_info_help(stdout);
                        return EXIT_SUCCESS;
                default:
                        if (c == '?' || input_spec_flags_parse(&flags, c, optarg) <= 0)
                                return usage_hint("info");
                }
        }
        if (argc - optind != 1)
                return usage_error("info", "expected one MODEL argument");
        path = argv[optind];

        r = model_open_any(path, &flags, &m);
        if (r < 0) {
                log_error(r, path);
                return EXIT_FAILURE;
        }
        info = info_build(path, m);
        if (!info) {
                log_error(-ENOMEM, path);
                return EXIT_FAILURE;
        }
        if (json) {
                char *text = json_dumps(info, JSON_COMPACT | JSON_REAL_PRECISION(9));

                if (text)
                        puts(text);
                free(text);
        } else
                info_print_text(info);
        json_decref(info);
        return EXIT_SUCCESS;
}

/* SPDX-License-Identifier: MIT */
/* cvopt run: classify images with a model and print the top-K labels, or
 * run it on a raw float32 input tensor and dump the raw output (the
 * interface bench/compare_ort.sh uses to compare cvopt with its peers). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "cli.h"

/* Raw input files hold one input or a batch of them back to back; 1 GiB
 * covers the Fashion-MNIST test set (30 MiB) and 1000 ImageNet-size inputs
 * (574 MiB), and keeps a wrong path from eating all RAM. */
#define INPUT_RAW_MAX_BYTES ((size_t) 1 << 30)
/* More than the widest classifier head we expect (21841 classes). */
#define TOP_MAX 65536

enum {
        ARG_JSON = ARG_COMMAND_FIRST,
        ARG_TOP,
        ARG_INPUT_RAW,
        ARG_LOGITS_OUT,
};

void cmd_run_help(FILE *f) {
        fprintf(f,
                "Usage: cvopt run MODEL IMAGE... [OPTIONS...]\n"
                "       cvopt run MODEL --input-raw INPUT.bin [--logits-out OUTPUT.bin]\n"
                "\n"
                "Classifies each IMAGE (PNG, JPEG, PGM/PPM, BMP) with MODEL (.onnx or .cvm)\n"
                "and prints the top K labels with their probabilities (softmax of the\n"
                "output, unless the model ends in Softmax).\n"
                "\n"
                "Options:\n"
                "  -k --top K                   how many classes to print per image (default 3)\n"
                "      --json                   one JSON object per image and line: image,\n"
                "                               class, label, score, top [{class,label,score}]\n"
                "      --input-raw FILE         run on raw float32 NCHW input tensors instead of\n"
                "                               images: one, or several back to back (the size\n"
                "                               must be a multiple of the model input's)\n"
                "      --logits-out FILE        write the raw float32 output of every run, in\n"
                "                               order, to FILE\n"
                "  -h --help                    show this help\n"
                "\n" INPUT_SPEC_HELP);
}

typedef struct RunContext {
        CvoptModel *model;
        CvoptSession *session;
        CvoptTensor *input;
        size_t input_count;
        uint32_t top_k;
        bool json;
        bool apply_softmax;
        FILE *logits_out;
        const char *logits_out_path;
        float *probabilities; /* output count entries */
        uint32_t *order;      /* output count entries */
} RunContext;

/* Whether the graph's first output comes out of a Softmax: then the model
 * already gives probabilities and applying softmax again would flatten them. */
static bool graph_ends_in_softmax(const CvoptGraph *g) {
        for (uint32_t i = g->n_nodes; i-- > 0;) {
                const CvoptNode *n = &g->nodes[i];

                for (uint32_t k = 0; k < n->n_outputs; k++)
                        if (n->outputs[k] == g->outputs[0])
                                return n->op == CVOPT_OP_SOFTMAX;
        }
        return false;
}

static void softmax(const float *x, size_t n, float *ret) {
        float max = -INFINITY;
        double sum = 0;

        for (size_t i = 0; i < n; i++)
                max = fmaxf(max, x[i]);
        for (size_t i = 0; i < n; i++) {
                ret[i] = expf(x[i] - max);
                sum += ret[i];
        }
        for (size_t i = 0; i < n; i++)
                ret[i] = (float) (ret[i] / sum);
}

/* Runs the session on its filled input, writes the raw output if asked,
 * and prints the top K for name. */
static int run_and_print(RunContext *ctx, const char *name) {
        const CvoptTensor *out;
        int64_t count;
        uint32_t k_max;
        json_t *top = NULL;
        char buf[32];
        int r;

        r = cvopt_session_run(ctx->session);
        if (r < 0)
                return cvopt_error_prefix(r, "%s", name);
        out = cvopt_session_output(ctx->session, 0);
        count = cvopt_tensor_count(out);
        if (!out || out->dtype != CVOPT_DTYPE_FLOAT32 || !out->data || count < 1 || count > UINT32_MAX)
                return cvopt_error_set(-CVOPT_E_SHAPE, "%s: the model output is not a float32 vector of scores", name);
        if (ctx->logits_out && fwrite(out->data, sizeof(float), (size_t) count, ctx->logits_out) != (size_t) count)
                return cvopt_error_set(-EIO, "%s: write error", ctx->logits_out_path);

        if (!ctx->probabilities) {
                ctx->probabilities = calloc((size_t) count, sizeof(float));
                ctx->order = calloc((size_t) count, sizeof(uint32_t));
                if (!ctx->probabilities || !ctx->order)
                        return -ENOMEM;
        }
        if (ctx->apply_softmax)
                softmax(out->data, (size_t) count, ctx->probabilities);
        else
                memcpy(ctx->probabilities, out->data, (size_t) count * sizeof(float));

        /* Partial selection sort: K is small, and ties keep the lower class first. */
        k_max = MIN(ctx->top_k, (uint32_t) count);
        for (uint32_t i = 0; i < (uint32_t) count; i++)
                ctx->order[i] = i;
        for (uint32_t i = 0; i < k_max; i++) {
                uint32_t best = i, tmp;

                for (uint32_t j = i + 1; j < (uint32_t) count; j++)
                        if (ctx->probabilities[ctx->order[j]] > ctx->probabilities[ctx->order[best]])
                                best = j;
                tmp = ctx->order[i];
                ctx->order[i] = ctx->order[best];
                ctx->order[best] = tmp;
        }

        if (ctx->json) {
                json_t *line;
                char *text;

                top = json_array();
                for (uint32_t i = 0; i < k_max; i++) {
                        uint32_t c = ctx->order[i];

                        json_array_append_new(top, json_pack("{s:i, s:s, s:f}", "class", (int) c, "label",
                                                             model_label(ctx->model, c, buf, sizeof buf), "score",
                                                             (double) ctx->probabilities[c]));
                }
                line = json_pack("{s:s, s:i, s:s, s:f, s:o}", "image", name, "class", (int) ctx->order[0], "label",
                                 model_label(ctx->model, ctx->order[0], buf, sizeof buf), "score",
                                 (double) ctx->probabilities[ctx->order[0]], "top", top);
                if (!line)
                        return -ENOMEM;
                text = json_dumps(line, JSON_COMPACT | JSON_REAL_PRECISION(6));
                json_decref(line);
                if (!text)
                        return -ENOMEM;
                puts(text);
                free(text);
        } else {
                printf("%s:", name);
                for (uint32_t i = 0; i < k_max; i++) {
                        uint32_t c = ctx->order[i];

                        printf("%s %s %.4f", i ? " |" : "", model_label(ctx->model, c, buf, sizeof buf),
                               (double) ctx->probabilities[c]);
                }
                putchar('\n');
        }
        fflush(stdout);
        return 0;
}

static int run_image(RunContext *ctx, const char *path) {
        _cleanup_(cvopt_image_freep) CvoptImage *img = NULL;
        int r;

        r = cvopt_image_load(path, &img);
        if (r < 0)
                return r;
        r = cvopt_preprocess_image(&ctx->model->input, img, ctx->input->data);
        if (r < 0)
                return cvopt_error_prefix(r, "%s", path);
        return run_and_print(ctx, path);
}

/* A raw file holds one input tensor, or several back to back (a whole
 * test set for bench/compare_ort.sh, as ort_run.js takes it): each is run
 * in order, named FILE[i] when there are several. */
static int run_raw(RunContext *ctx, const char *path) {
        _cleanup_free_ void *data = NULL;
        size_t size, input_bytes = ctx->input_count * sizeof(float), n_runs;
        int r;

        r = read_file_full(path, INPUT_RAW_MAX_BYTES, &data, &size);
        if (r < 0)
                return r;
        if (size == 0 || size % input_bytes != 0)
                return cvopt_error_set(-CVOPT_E_SHAPE,
                                       "%s: %zu bytes, not a multiple of the model input's %zu (%zu float32)", path,
                                       size, input_bytes, ctx->input_count);
        n_runs = size / input_bytes;
        for (size_t i = 0; i < n_runs; i++) {
                char name[4200];

                if (n_runs == 1)
                        snprintf(name, sizeof name, "%s", path);
                else
                        snprintf(name, sizeof name, "%s[%zu]", path, i);
                memcpy(ctx->input->data, (const uint8_t *) data + i * input_bytes, input_bytes);
                r = run_and_print(ctx, name);
                if (r < 0)
                        return r;
        }
        return 0;
}

int cmd_run(int argc, char **argv) {
        static const struct option options[] = {
                { "top", required_argument, NULL, 'k' },
                { "json", no_argument, NULL, ARG_JSON },
                { "input-raw", required_argument, NULL, ARG_INPUT_RAW },
                { "logits-out", required_argument, NULL, ARG_LOGITS_OUT },
                { "help", no_argument, NULL, 'h' },
                INPUT_SPEC_LONG_OPTIONS,
                {},
        };
        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
        _cleanup_(cvopt_session_freep) CvoptSession *session = NULL;
        _cleanup_(fclosep) FILE *logits_out = NULL;
        _cleanup_free_ float *probabilities = NULL;
        _cleanup_free_ uint32_t *order = NULL;
        const char *input_raw = NULL, *logits_out_path = NULL, *model_path;
        InputSpecFlags flags = {};
        RunContext ctx = { .top_k = 3 };
        int c, r, failed = 0;
        int64_t count;

        optind = 0;
        while ((c = getopt_long(argc, argv, "k:h", options, NULL)) >= 0) {
                switch (c) {
                case 'k': {
                        char *end;
                        long v;

                        errno = 0;
                        v = strtol(optarg, &end, 10);
                        if (errno || *end || end == optarg || v < 1 || v > TOP_MAX)
                                return usage_error("run", "--top: '%s' is not a number from 1 to %d", optarg, TOP_MAX);
                        ctx.top_k = (uint32_t) v;
                        break;
                }
                case ARG_JSON:
                        ctx.json = true;
                        break;
                case ARG_INPUT_RAW:
                        input_raw = optarg;
                        break;
                case ARG_LOGITS_OUT:
                        logits_out_path = optarg;
                        break;
                case 'h':
                        cmd_run_help(stdout);
                        return EXIT_SUCCESS;
                default:
                        if (c == '?' || input_spec_flags_parse(&flags, c, optarg) <= 0)
                                return usage_hint("run");
                }
        }
        if (optind >= argc)
                return usage_error("run", "expected a MODEL argument");
        model_path = argv[optind++];
        if (input_raw && optind < argc)
                return usage_error("run", "give either IMAGE arguments or --input-raw, not both");
        if (!input_raw && optind >= argc)
                return usage_error("run", "expected IMAGE arguments (or --input-raw FILE)");

        r = model_open_any(model_path, &flags, &m);
        if (r < 0) {
                log_error(r, model_path);
                return EXIT_FAILURE;
        }
        r = cvopt_session_new(m->graph, NULL, &session);
        if (r < 0) {
                log_error(cvopt_error_prefix(r, "%s", model_path), model_path);
                return EXIT_FAILURE;
        }
        ctx.model = m;
        ctx.session = session;
        ctx.input = cvopt_session_input(session, 0);
        count = ctx.input ? cvopt_tensor_count(ctx.input) : -1;
        if (!ctx.input || ctx.input->dtype != CVOPT_DTYPE_FLOAT32 || !ctx.input->data || count < 1) {
                fprintf(stderr, "cvopt: %s: the model has no float32 input\n", model_path);
                return EXIT_FAILURE;
        }
        ctx.input_count = (size_t) count;
        if (!input_raw &&
            ctx.input_count != (size_t) cvopt_color_channels(m->input.color) * m->input.width * m->input.height) {
                fprintf(stderr, "cvopt: %s: the input spec (%ux%u %s) does not match the input tensor\n", model_path,
                        m->input.width, m->input.height, cvopt_color_name(m->input.color));
                return EXIT_FAILURE;
        }
        ctx.apply_softmax = !graph_ends_in_softmax(m->graph);
        if (logits_out_path) {
                logits_out = fopen(logits_out_path, "we");
                if (!logits_out) {
                        fprintf(stderr, "cvopt: %s: %s\n", logits_out_path, strerror(errno));
                        return EXIT_FAILURE;
                }
                ctx.logits_out = logits_out;
                ctx.logits_out_path = logits_out_path;
        }

        if (input_raw) {
                r = run_raw(&ctx, input_raw);
                if (r < 0) {
                        log_error(r, input_raw);
                        failed++;
                }
        } else
                /* A bad image is reported and the others still run: one
                 * corrupt file in a folder should not hide the rest. */
                for (int i = optind; i < argc; i++) {
                        r = run_image(&ctx, argv[i]);
                        if (r < 0) {
                                log_error(r, argv[i]);
                                failed++;
                        }
                }
        probabilities = ctx.probabilities;
        order = ctx.order;
        if (logits_out) {
                FILE *f = TAKE_PTR(logits_out);

                if (fclose(f) != 0) {
                        fprintf(stderr, "cvopt: %s: %s\n", logits_out_path, strerror(errno));
                        return EXIT_FAILURE;
                }
        }
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* SPDX-License-Identifier: MIT */
/* ONNX conformance: runs the node and PyTorch tests of Debian's
 * libonnx-testdata through the importer, the graph passes and the
 * executor, and compares every output with the expected one.
 *
 * Each test folder holds model.onnx and test_data_set_N/{input,output}_K.pb.
 * A test whose model uses an op outside enum CvoptOp (or another domain)
 * is skipped, counted per op. Every other test must pass, in two variants:
 * the imported graph after shape inference only, and after the whole
 * cvopt_graph_optimize() pipeline (BN folding, fusion, identity removal).
 * A test of supported ops may be skipped only when expected-skips.txt lists
 * it with a reason; an unlisted failure, or a listed test that passes (a
 * stale entry), fails the run. So skips cannot grow silently.
 *
 * Tolerance: ONNX's own backend test runner (onnx/backend/test/loader and
 * runner, onnx 1.12 as in Debian) uses numpy.testing.assert_allclose with
 * rtol 1e-3, atol 1e-7 and requires equal dtypes; we do the same:
 * |actual - expected| <= atol + rtol * |expected|, NaN equal to NaN,
 * integers exact, shapes equal.
 *
 * Usage: conformance [-v] [--list-skips] DATA_DIR EXPECTED_SKIPS_FILE */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cvopt/cvopt.h"
#include "macro.h"
#include "onnx.pb-c.h"
#include "onnx/onnx-import.h"

#define RTOL 1e-3
#define ATOL 1e-7
/* The suites to walk, in the order reported. "real" and "simple" are
 * whole-model tests of other kinds (downloads, sequences) and not walked. */
static const char *const suites[] = { "node", "pytorch-converted", "pytorch-operator" };
/* A node test has a handful of inputs and outputs; more means a broken folder. */
#define MAX_TENSORS 16
/* protobuf's limit; test models are a few KiB. */
#define MAX_FILE_BYTES ((size_t) 64 << 20)

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptModel *, cvopt_model_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptGraph *, cvopt_graph_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptSession *, cvopt_session_free);

typedef struct ExpectedSkip {
        char *test; /* "node/test_x" */
        char *reason;
        bool seen;
} ExpectedSkip;

typedef struct Count {
        char *key;
        unsigned n;
} Count;

typedef struct Runner {
        const char *data_dir;
        bool verbose, list_skips;
        ExpectedSkip *expected;
        size_t n_expected;
        unsigned ran, passed, failed, skipped;
        Count *reasons; /* skip reason -> count */
        size_t n_reasons;
        Count *ops; /* unsupported op -> tests skipped for it */
        size_t n_ops;
} Runner;

typedef struct TensorSet {
        size_t n;
        CvoptTensor *t[MAX_TENSORS];
} TensorSet;

static void tensor_set_done(TensorSet *s) {
        for (size_t i = 0; i < s->n; i++)
                onnx_tensor_free(s->t[i]);
        s->n = 0;
}

static int count_add(Count **list, size_t *n, const char *key) {
        Count *p;

        for (size_t i = 0; i < *n; i++)
                if (streq((*list)[i].key, key)) {
                        (*list)[i].n++;
                        return 0;
                }
        p = reallocarray(*list, *n + 1, sizeof(Count));
        if (!p)
                return -ENOMEM;
        *list = p;
        p[*n] = (Count) { .key = strdup(key), .n = 1 };
        if (!p[*n].key)
                return -ENOMEM;
        (*n)++;
        return 0;
}

static int expected_skips_load(Runner *r, const char *path) {
        _cleanup_free_ char *line = NULL;
        size_t size = 0;
        unsigned lineno = 0;
        FILE *f;

        f = fopen(path, "re");
        if (!f) {
                fprintf(stderr, "conformance: %s: %s\n", path, strerror(errno));
                return -errno;
        }
        while (getline(&line, &size, f) >= 0) {
                char *p = line, *name, *reason;
                ExpectedSkip *e;

                lineno++;
                p[strcspn(p, "\n")] = 0;
                p += strspn(p, " \t");
                if (!*p || *p == '#')
                        continue;
                name = p;
                p += strcspn(p, " \t");
                if (*p)
                        *p++ = 0;
                reason = p + strspn(p, " \t");
                if (!*reason) {
                        fprintf(stderr, "conformance: %s:%u: '%s' has no reason\n", path, lineno, name);
                        fclose(f);
                        return -EINVAL;
                }
                e = reallocarray(r->expected, r->n_expected + 1, sizeof(ExpectedSkip));
                if (!e) {
                        fclose(f);
                        return -ENOMEM;
                }
                r->expected = e;
                e[r->n_expected++] = (ExpectedSkip) { .test = strdup(name), .reason = strdup(reason) };
        }
        fclose(f);
        return 0;
}

static ExpectedSkip *expected_skip_find(Runner *r, const char *test) {
        for (size_t i = 0; i < r->n_expected; i++)
                if (streq(r->expected[i].test, test))
                        return &r->expected[i];
        return NULL;
}

static int read_file(const char *path, void **ret_data, size_t *ret_size) {
        FILE *f = fopen(path, "re");
        void *data;
        long size;

        if (!f)
                return -errno;
        if (fseek(f, 0, SEEK_END) < 0 || (size = ftell(f)) < 0 || (size_t) size > MAX_FILE_BYTES ||
            fseek(f, 0, SEEK_SET) < 0) {
                fclose(f);
                return -EFBIG;
        }
        data = malloc((size_t) size + 1);
        if (!data || fread(data, 1, (size_t) size, f) != (size_t) size) {
                free(data);
                fclose(f);
                return -EIO;
        }
        fclose(f);
        *ret_data = data;
        *ret_size = (size_t) size;
        return 0;
}

/* The first op of the model outside enum CvoptOp (or outside the default
 * domain), into buf; "" when every op is supported. Also returns the names
 * of the graph inputs that are not initializers, in order. */
static int model_scan(const char *path, char *buf, size_t size, char ***ret_inputs, size_t *ret_n_inputs) {
        _cleanup_free_ void *data = NULL;
        Onnx__ModelProto *mp;
        Onnx__GraphProto *g;
        size_t n_data = 0, n_inputs = 0;
        char **inputs;
        int r;

        buf[0] = 0;
        r = read_file(path, &data, &n_data);
        if (r < 0)
                return r;
        mp = onnx__model_proto__unpack(NULL, n_data, data);
        if (!mp || !mp->graph) {
                if (mp)
                        onnx__model_proto__free_unpacked(mp, NULL);
                return -CVOPT_E_FORMAT;
        }
        g = mp->graph;
        for (size_t i = 0; i < g->n_node && !buf[0]; i++) {
                const char *domain = g->node[i]->domain ? g->node[i]->domain : "";
                const char *op = g->node[i]->op_type ? g->node[i]->op_type : "?";

                if (!streq(domain, "") && !streq(domain, "ai.onnx"))
                        snprintf(buf, size, "%s:%s", domain, op);
                else if (cvopt_op_from_name(op) < 0)
                        snprintf(buf, size, "%s", op);
        }
        inputs = calloc(g->n_input + 1, sizeof(char *));
        if (!inputs) {
                onnx__model_proto__free_unpacked(mp, NULL);
                return -ENOMEM;
        }
        for (size_t i = 0; i < g->n_input; i++) {
                bool is_initializer = false;

                for (size_t k = 0; k < g->n_initializer; k++)
                        if (g->initializer[k]->name && streq(g->initializer[k]->name, g->input[i]->name))
                                is_initializer = true;
                if (!is_initializer)
                        inputs[n_inputs++] = strdup(g->input[i]->name ? g->input[i]->name : "");
        }
        onnx__model_proto__free_unpacked(mp, NULL);
        *ret_inputs = inputs;
        *ret_n_inputs = n_inputs;
        return 0;
}

/* Loads PREFIX_0.pb, PREFIX_1.pb, ... of a data set folder. */
static int tensor_set_load(const char *dir, const char *prefix, TensorSet *set) {
        for (size_t k = 0; k < MAX_TENSORS; k++) {
                char path[4096];
                int r;

                snprintf(path, sizeof path, "%s/%s_%zu.pb", dir, prefix, k);
                if (access(path, F_OK) < 0)
                        return 0;
                r = onnx_tensor_load_file(path, &set->t[set->n]);
                if (r < 0)
                        return r;
                set->n++;
        }
        return cvopt_error_set(-E2BIG, "%s: more than %d %s files", dir, MAX_TENSORS, prefix);
}

static bool values_close(const CvoptTensor *got, const CvoptTensor *want, size_t count, char *why, size_t why_size) {
        for (size_t i = 0; i < count; i++) {
                double a, e;

                switch (want->dtype) {
                case CVOPT_DTYPE_FLOAT32:
                        a = ((const float *) got->data)[i];
                        e = ((const float *) want->data)[i];
                        if (isnan(e) && isnan(a))
                                continue;
                        if (isinf(e) && a == e)
                                continue;
                        if (fabs(a - e) <= ATOL + RTOL * fabs(e))
                                continue;
                        snprintf(why, why_size, "element %zu: %.9g, expected %.9g", i, a, e);
                        return false;
                default:
                        if (memcmp((const char *) got->data + i * cvopt_dtype_size(want->dtype),
                                   (const char *) want->data + i * cvopt_dtype_size(want->dtype),
                                   cvopt_dtype_size(want->dtype)) != 0) {
                                snprintf(why, why_size, "element %zu differs (%s)", i, cvopt_dtype_name(want->dtype));
                                return false;
                        }
                }
        }
        return true;
}

/* Runs one variant (optimize or not) of an imported model on one data
 * set. 0 or a negative error with detail. */
static int run_variant(const CvoptGraph *imported, bool optimize, const TensorSet *inputs,
                       const TensorSet *outputs) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        _cleanup_(cvopt_session_freep) CvoptSession *s = NULL;
        const char *variant = optimize ? "optimized" : "shape-inferred";
        char why[256], a[96], b[96];
        int r;

        r = cvopt_graph_clone(imported, &g);
        if (r < 0)
                return r;
        r = optimize ? cvopt_graph_optimize(g) : cvopt_graph_infer_shapes(g);
        if (r < 0)
                return cvopt_error_prefix(r, "%s: %s", variant, optimize ? "optimize" : "infer shapes");
        r = cvopt_session_new(g, NULL, &s);
        if (r < 0)
                return cvopt_error_prefix(r, "%s: session", variant);
        for (uint32_t i = 0; i < cvopt_session_n_inputs(s); i++) {
                CvoptTensor *t = cvopt_session_input(s, i);
                const CvoptTensor *src = NULL;

                for (size_t k = 0; k < inputs->n; k++)
                        if (inputs->t[k]->name && t->name && streq(inputs->t[k]->name, t->name))
                                src = inputs->t[k];
                if (!src)
                        return cvopt_error_set(-ENOENT, "%s: no data for input '%s'", variant, t->name);
                if (src->dtype != t->dtype || cvopt_tensor_count(src) != cvopt_tensor_count(t) ||
                    (!t->data && cvopt_tensor_count(t) > 0))
                        return cvopt_error_set(-CVOPT_E_SHAPE, "%s: input '%s': data is %s %s, input is %s %s",
                                               variant, t->name, cvopt_dtype_name(src->dtype),
                                               cvopt_tensor_shape_str(src, a, sizeof a), cvopt_dtype_name(t->dtype),
                                               cvopt_tensor_shape_str(t, b, sizeof b));
                if (cvopt_tensor_count(src) > 0)
                        memcpy(t->data, src->data, cvopt_tensor_bytes(src));
        }
        r = cvopt_session_run(s);
        if (r < 0)
                return cvopt_error_prefix(r, "%s: run", variant);
        if (cvopt_session_n_outputs(s) != outputs->n)
                return cvopt_error_set(-CVOPT_E_SHAPE, "%s: %u outputs, expected %zu", variant,
                                       cvopt_session_n_outputs(s), outputs->n);
        for (uint32_t i = 0; i < outputs->n; i++) {
                const CvoptTensor *got = cvopt_session_output(s, i), *want = outputs->t[i];
                bool same_shape = got->ndim == want->ndim;

                for (uint32_t d = 0; same_shape && d < want->ndim; d++)
                        same_shape = got->dims[d] == want->dims[d];
                if (got->dtype != want->dtype || !same_shape)
                        return cvopt_error_set(-CVOPT_E_SHAPE, "%s: output %u is %s %s, expected %s %s", variant, i,
                                               cvopt_dtype_name(got->dtype), cvopt_tensor_shape_str(got, a, sizeof a),
                                               cvopt_dtype_name(want->dtype),
                                               cvopt_tensor_shape_str(want, b, sizeof b));
                /* An empty tensor (a zero dim, as Reshape allowzero makes) may have no buffer. */
                if (!got->data && cvopt_tensor_count(want) > 0)
                        return cvopt_error_set(-EINVAL, "%s: output %u has no data", variant, i);
                if (!values_close(got, want, (size_t) cvopt_tensor_count(want), why, sizeof why))
                        return cvopt_error_set(-EDOM, "%s: output %u: %s (rtol %g, atol %g)", variant, i, why, RTOL,
                                               ATOL);
        }
        return 0;
}

/* Imports with the inputs in bind fixed, and runs both variants on a data set. */
static int run_attempt(const char *model_path, size_t n_bind, CvoptTensor *const *bind, const TensorSet *inputs,
                       const TensorSet *outputs) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
        int r;

        r = n_bind ? onnx_import_file_bound(model_path, n_bind, bind, &m) : onnx_import_file(model_path, &m);
        if (r < 0)
                return cvopt_error_prefix(r, "import");
        r = run_variant(m->graph, false, inputs, outputs);
        if (r < 0)
                return r;
        return run_variant(m->graph, true, inputs, outputs);
}

/* One data set: first with every input fed at run time; if that fails and
 * the model has more than one input, with inputs 1..n fixed as constants
 * (node tests pass Clip bounds, Squeeze axes and Reshape shapes as graph
 * inputs, which the IR needs to be constants; the first input stays a
 * run-time input so the executor, not constant folding, computes). */
static int run_data_set(const char *model_path, const char *set_dir, char **input_names, size_t n_input_names,
                        char *detail, size_t detail_size) {
        _cleanup_(tensor_set_done) TensorSet inputs = {}, outputs = {};
        int r, r2;

        r = tensor_set_load(set_dir, "input", &inputs);
        if (r >= 0)
                r = tensor_set_load(set_dir, "output", &outputs);
        if (r < 0) {
                snprintf(detail, detail_size, "test data: %s", cvopt_error_detail());
                return r;
        }
        /* The runner feeds inputs by position; name them after the graph's. */
        for (size_t k = 0; k < inputs.n && k < n_input_names; k++)
                if (!inputs.t[k]->name || !streq(inputs.t[k]->name, input_names[k])) {
                        free(inputs.t[k]->name);
                        inputs.t[k]->name = strdup(input_names[k]);
                        if (!inputs.t[k]->name)
                                return -ENOMEM;
                }

        r = run_attempt(model_path, 0, NULL, &inputs, &outputs);
        if (r >= 0)
                return 0;
        snprintf(detail, detail_size, "%s", cvopt_error_detail());
        if (inputs.n < 2)
                return r;
        r2 = run_attempt(model_path, inputs.n - 1, inputs.t + 1, &inputs, &outputs);
        if (r2 >= 0)
                return 0;
        snprintf(detail + strlen(detail), detail_size - strlen(detail), "; with inputs 1..%zu constant: %s",
                 inputs.n - 1, cvopt_error_detail());
        return r;
}

static int filter_dirs(const struct dirent *d) {
        return d->d_name[0] != '.';
}

static int filter_data_sets(const struct dirent *d) {
        return startswith(d->d_name, "test_data_set_");
}

static void run_test(Runner *rn, const char *suite, const char *name) {
        char dir[4096], model_path[4200], test[512], op[256], detail[2048] = "";
        char **input_names = NULL;
        size_t n_input_names = 0;
        struct dirent **sets = NULL;
        ExpectedSkip *listed;
        int n_sets, r = 0;

        snprintf(dir, sizeof dir, "%s/%s/%s", rn->data_dir, suite, name);
        snprintf(model_path, sizeof model_path, "%s/model.onnx", dir);
        snprintf(test, sizeof test, "%s/%s", suite, name);
        if (access(model_path, F_OK) < 0)
                return;
        rn->ran++;
        r = model_scan(model_path, op, sizeof op, &input_names, &n_input_names);
        if (r < 0) {
                snprintf(detail, sizeof detail, "model.onnx unreadable: %s", cvopt_strerror(r));
                goto done;
        }
        if (op[0]) {
                char key[300];

                snprintf(key, sizeof key, "op %s not supported", op);
                rn->skipped++;
                count_add(&rn->reasons, &rn->n_reasons, "op not in the supported list");
                count_add(&rn->ops, &rn->n_ops, op);
                if (rn->verbose)
                        printf("SKIP %s: %s\n", test, key);
                goto out;
        }
        n_sets = scandir(dir, &sets, filter_data_sets, alphasort);
        if (n_sets <= 0) {
                r = -ENOENT;
                snprintf(detail, sizeof detail, "no test_data_set_N folders");
                goto done;
        }
        for (int i = 0; i < n_sets && r >= 0; i++) {
                char set_dir[4400];

                snprintf(set_dir, sizeof set_dir, "%s/%s", dir, sets[i]->d_name);
                r = run_data_set(model_path, set_dir, input_names, n_input_names, detail, sizeof detail);
                if (r < 0) {
                        char tmp[2048];

                        snprintf(tmp, sizeof tmp, "%s: %s", sets[i]->d_name, detail);
                        memcpy(detail, tmp, sizeof detail);
                }
        }
        for (int i = 0; i < n_sets; i++)
                free(sets[i]);
        free(sets);

done:
        listed = expected_skip_find(rn, test);
        if (listed)
                listed->seen = true;
        if (r >= 0 && listed) {
                rn->failed++;
                printf("FAIL %s: passes, but expected-skips.txt lists it (%s): remove the entry\n", test,
                       listed->reason);
        } else if (r >= 0) {
                rn->passed++;
                if (rn->verbose)
                        printf("PASS %s\n", test);
        } else if (listed) {
                rn->skipped++;
                count_add(&rn->reasons, &rn->n_reasons, listed->reason);
                if (rn->verbose)
                        printf("SKIP %s: %s (%s)\n", test, listed->reason, detail);
        } else {
                rn->failed++;
                printf("FAIL %s: %s\n", test, detail);
                if (rn->list_skips)
                        printf("LIST %-50s %s\n", test, detail);
        }
out:
        for (size_t i = 0; input_names && i < n_input_names; i++)
                free(input_names[i]);
        free(input_names);
}

static int compare_counts(const void *a, const void *b) {
        const Count *x = a, *y = b;

        if (x->n != y->n)
                return x->n < y->n ? 1 : -1;
        return strcmp(x->key, y->key);
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "verbose", no_argument, NULL, 'v' },
                { "list-skips", no_argument, NULL, 'l' },
                {},
        };
        Runner rn = {};
        struct timespec t0, t1;
        int c, r;

        while ((c = getopt_long(argc, argv, "vl", options, NULL)) >= 0)
                switch (c) {
                case 'v':
                        rn.verbose = true;
                        break;
                case 'l':
                        rn.list_skips = true;
                        break;
                default:
                        return 2;
                }
        if (argc - optind != 2) {
                fprintf(stderr, "usage: conformance [-v] [--list-skips] DATA_DIR EXPECTED_SKIPS_FILE\n");
                return 2;
        }
        rn.data_dir = argv[optind];
        r = expected_skips_load(&rn, argv[optind + 1]);
        if (r < 0)
                return 1;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (size_t s = 0; s < ELEMENTSOF(suites); s++) {
                char dir[4096];
                struct dirent **tests = NULL;
                int n;

                snprintf(dir, sizeof dir, "%s/%s", rn.data_dir, suites[s]);
                n = scandir(dir, &tests, filter_dirs, alphasort);
                if (n < 0) {
                        fprintf(stderr, "conformance: %s: %s (install libonnx-testdata)\n", dir, strerror(errno));
                        return 1;
                }
                for (int i = 0; i < n; i++) {
                        run_test(&rn, suites[s], tests[i]->d_name);
                        free(tests[i]);
                }
                free(tests);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);

        for (size_t i = 0; i < rn.n_expected; i++)
                if (!rn.expected[i].seen) {
                        rn.failed++;
                        printf("FAIL %s: listed in expected-skips.txt but no such test: remove the entry\n",
                               rn.expected[i].test);
                }

        qsort(rn.reasons, rn.n_reasons, sizeof(Count), compare_counts);
        qsort(rn.ops, rn.n_ops, sizeof(Count), compare_counts);
        printf("conformance: %u ran, %u passed, %u failed, %u skipped\n", rn.ran, rn.passed, rn.failed, rn.skipped);
        printf("skip reasons:\n");
        for (size_t i = 0; i < rn.n_reasons; i++)
                printf("  %4u  %s\n", rn.reasons[i].n, rn.reasons[i].key);
        printf("unsupported ops (tests):");
        for (size_t i = 0; i < rn.n_ops; i++)
                printf(" %s (%u)", rn.ops[i].key, rn.ops[i].n);
        printf("\ntime: %.2f s\n", (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) * 1e-9);

        for (size_t i = 0; i < rn.n_reasons; i++)
                free(rn.reasons[i].key);
        free(rn.reasons);
        for (size_t i = 0; i < rn.n_ops; i++)
                free(rn.ops[i].key);
        free(rn.ops);
        for (size_t i = 0; i < rn.n_expected; i++) {
                free(rn.expected[i].test);
                free(rn.expected[i].reason);
        }
        free(rn.expected);
        return rn.failed ? 1 : 0;
}

/* SPDX-License-Identifier: MIT */
/* Helper for the daemon's integration tests, on the engine's public API:
 *
 *   test-daemon-helper mkmodel OUT.cvm [VARIANT]
 *       A real (if simple) trained classifier: nearest class centroid on
 *       Fashion-MNIST's training set, as Flatten -> Gemm, with the
 *       dataset's labels. VARIANT (an integer) nudges the biases so the
 *       file, and its model id, differ. ~70% top-1 on the test set.
 *   test-daemon-helper eval MODEL.cvm DATASET COUNT
 *       Classifies the first COUNT items the way `cvopt eval` does (the
 *       dataset's own pixels, the engine's preprocessing) and prints
 *       "INDEX PREDICTED LABEL" per line: the reference the daemon's
 *       published labels are compared with. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvopt/dataset.h"
#include "cvopt/engine.h"
#include "cvopt/errors.h"
#include "cvopt/model.h"

#define N_PIXELS 784u
#define N_CLASSES 10u

static int fail(const char *what, int r) {
        fprintf(stderr, "%s: %s: %s\n", what, cvopt_strerror(r), cvopt_error_detail());
        return 1;
}

static int mkmodel(const char *out, int variant) {
        CvoptDataset *ds = NULL;
        CvoptModel *m = NULL;
        int r = cvopt_dataset_open("fashion-mnist:train", &ds);
        if (r < 0)
                return fail("fashion-mnist:train", r);
        r = cvopt_model_new(&m);
        if (r < 0)
                return fail("model", r);
        m->input = (CvoptInputSpec) { .width = 28, .height = 28, .color = CVOPT_COLOR_GRAY,
                                      .mean = { 0, 0, 0 }, .std = { 1, 1, 1 }, .resize = CVOPT_RESIZE_STRETCH };

        double *sum = calloc(N_CLASSES * N_PIXELS, sizeof(double));
        size_t count[N_CLASSES] = { 0 };
        float *x = malloc(N_PIXELS * sizeof(float));
        for (size_t i = 0; i < cvopt_dataset_count(ds); i++) {
                CvoptImage *img = NULL;
                int label;
                if ((r = cvopt_dataset_get(ds, i, &img, &label)) < 0)
                        return fail("dataset", r);
                if ((r = cvopt_preprocess_image(&m->input, img, x)) < 0)
                        return fail("preprocess", r);
                cvopt_image_free(img);
                for (uint32_t p = 0; p < N_PIXELS; p++)
                        sum[label * N_PIXELS + p] += x[p];
                count[label]++;
        }
        /* Nearest centroid as a linear layer: argmin |x - c|^2 is
         * argmax c.x - |c|^2 / 2. */
        float *w = malloc(N_CLASSES * N_PIXELS * sizeof(float));
        float *b = malloc(N_CLASSES * sizeof(float));
        for (uint32_t k = 0; k < N_CLASSES; k++) {
                double norm = 0;
                for (uint32_t p = 0; p < N_PIXELS; p++) {
                        float c = (float) (sum[k * N_PIXELS + p] / (double) (count[k] ? count[k] : 1));
                        w[k * N_PIXELS + p] = c;
                        norm += (double) c * c;
                }
                b[k] = (float) (-norm / 2) + (float) variant * 1e-4f;
        }
        CvoptGraph *g = m->graph;
        int32_t in, flat, wi, bi, outi, node;
        int64_t in_dims[] = { 1, 1, 28, 28 }, flat_dims[] = { 1, N_PIXELS }, w_dims[] = { N_CLASSES, N_PIXELS },
                b_dims[] = { N_CLASSES }, out_dims[] = { 1, N_CLASSES };
        if ((r = cvopt_graph_add_tensor(g, "image", CVOPT_DTYPE_FLOAT32, 4, in_dims, &in)) < 0 ||
            (r = cvopt_graph_add_tensor(g, "flat", CVOPT_DTYPE_FLOAT32, 2, flat_dims, &flat)) < 0 ||
            (r = cvopt_graph_add_constant(g, "centroids", CVOPT_DTYPE_FLOAT32, 2, w_dims, w, true, &wi)) < 0 ||
            (r = cvopt_graph_add_constant(g, "bias", CVOPT_DTYPE_FLOAT32, 1, b_dims, b, true, &bi)) < 0 ||
            (r = cvopt_graph_add_tensor(g, "scores", CVOPT_DTYPE_FLOAT32, 2, out_dims, &outi)) < 0)
                return fail("graph", r);
        if ((r = cvopt_graph_add_node(g, "flatten", CVOPT_OP_FLATTEN, 1, &in, 1, &flat, &node)) < 0)
                return fail("graph", r);
        cvopt_node_set_int(&g->nodes[node], "axis", 1);
        int32_t gemm_in[] = { flat, wi, bi };
        if ((r = cvopt_graph_add_node(g, "classify", CVOPT_OP_GEMM, 3, gemm_in, 1, &outi, &node)) < 0)
                return fail("graph", r);
        cvopt_node_set_int(&g->nodes[node], "transB", 1);
        if ((r = cvopt_graph_set_inputs(g, 1, &in)) < 0 || (r = cvopt_graph_set_outputs(g, 1, &outi)) < 0)
                return fail("graph", r);
        m->n_labels = N_CLASSES;
        m->labels = calloc(N_CLASSES, sizeof(char *));
        for (uint32_t k = 0; k < N_CLASSES; k++)
                m->labels[k] = strdup(cvopt_dataset_class_name(ds, k));
        /* A nested object, as cvopt optimize writes one: cvoptctl's tests
         * check that it is displayed. */
        m->provenance_json = strdup("{\"source\":\"test-daemon-helper nearest centroid\",\"optimizer\":{\"method\":\"none\",\"top1_after\":0.7}}");
        if ((r = cvopt_model_save(m, out)) < 0)
                return fail(out, r);
        printf("%s\n", m->id);
        free(sum);
        free(x);
        cvopt_model_free(m);
        cvopt_dataset_free(ds);
        return 0;
}

static int eval(const char *path, const char *spec, size_t n) {
        CvoptModel *m = NULL;
        CvoptDataset *ds = NULL;
        CvoptSession *s = NULL;
        int r;
        if ((r = cvopt_model_load(path, &m)) < 0)
                return fail(path, r);
        if ((r = cvopt_graph_infer_shapes(m->graph)) < 0 || (r = cvopt_session_new(m->graph, NULL, &s)) < 0)
                return fail("session", r);
        if ((r = cvopt_dataset_open(spec, &ds)) < 0)
                return fail(spec, r);
        n = n < cvopt_dataset_count(ds) ? n : cvopt_dataset_count(ds);
        size_t correct = 0;
        for (size_t i = 0; i < n; i++) {
                CvoptImage *img = NULL;
                int label;
                if ((r = cvopt_dataset_get(ds, i, &img, &label)) < 0)
                        return fail("dataset", r);
                if ((r = cvopt_preprocess_image(&m->input, img, cvopt_session_input(s, 0)->data)) < 0)
                        return fail("preprocess", r);
                cvopt_image_free(img);
                if ((r = cvopt_session_run(s)) < 0)
                        return fail("run", r);
                const CvoptTensor *out = cvopt_session_output(s, 0);
                const float *v = out->data;
                int64_t k = cvopt_tensor_count(out), best = 0;
                for (int64_t c = 1; c < k; c++)
                        if (v[c] > v[best])
                                best = c;
                correct += best == label;
                printf("%zu %lld %d\n", i, (long long) best, label);
        }
        fprintf(stderr, "accuracy %.4f over %zu\n", n ? (double) correct / (double) n : 0.0, n);
        cvopt_session_free(s);
        cvopt_dataset_free(ds);
        cvopt_model_free(m);
        return 0;
}

int main(int argc, char **argv) {
        if (argc >= 3 && strcmp(argv[1], "mkmodel") == 0)
                return mkmodel(argv[2], argc > 3 ? atoi(argv[3]) : 0);
        if (argc == 5 && strcmp(argv[1], "eval") == 0)
                return eval(argv[2], argv[3], strtoul(argv[4], NULL, 10));
        fprintf(stderr, "usage: %s mkmodel OUT.cvm [VARIANT] | eval MODEL.cvm DATASET COUNT\n", argv[0]);
        return 2;
}

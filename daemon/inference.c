/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cvopt/errors.h"
#include "inference.h"

Inference *inference_free(Inference *inf) {
        if (!inf)
                return NULL;
        cvopt_session_free(inf->session);
        cvopt_model_free(inf->model);
        preprocessor_free(inf->preprocessor);
        free(inf->scores);
        free(inf->path);
        free(inf);
        return NULL;
}

float *inference_input(Inference *inf) {
        return cvopt_session_input(inf->session, 0)->data;
}

static int check_io(Inference *inf) {
        const CvoptGraph *g = inf->model->graph;
        const CvoptInputSpec *spec = &inf->model->input;

        if (g->n_inputs != 1 || g->n_outputs < 1)
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "model has %u inputs and %u outputs, need 1 and >= 1",
                                       g->n_inputs, g->n_outputs);
        const CvoptTensor *in = &g->tensors[g->inputs[0]];
        /* The daemon writes float input; an int8-input model needs the int8
         * row writer (see preprocess.h), which comes with the quantizer. */
        if (in->dtype != CVOPT_DTYPE_FLOAT32)
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "input '%s' is %s; this cvoptd serves float inputs",
                                       in->name, cvopt_dtype_name(in->dtype));
        int64_t want = (int64_t) cvopt_color_channels(spec->color) * spec->width * spec->height;
        if (cvopt_tensor_count(in) != want)
                return cvopt_error_set(-CVOPT_E_SHAPE, "input '%s' has %lld values, the input spec says %ux%ux%u",
                                       in->name, (long long) cvopt_tensor_count(in),
                                       cvopt_color_channels(spec->color), spec->height, spec->width);
        const CvoptTensor *out = cvopt_session_output(inf->session, 0);
        int64_t n = cvopt_tensor_count(out);
        if (out->dtype != CVOPT_DTYPE_FLOAT32 || n < 1 || n > 1000000)
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "output '%s' must be 1..1000000 float scores",
                                       out->name);
        if (inf->model->n_labels && inf->model->n_labels != (uint64_t) n)
                return cvopt_error_set(-CVOPT_E_SHAPE, "output has %lld scores but the model has %u labels",
                                       (long long) n, inf->model->n_labels);
        inf->n_classes = (uint32_t) n;
        return 0;
}

int inference_load(const char *path, const Conf *conf, Inference **ret) {
        _cleanup_(inference_freep) Inference *inf = calloc(1, sizeof *inf);
        int r;

        if (!inf || !(inf->path = strdup(path)))
                return -ENOMEM;
        r = cvopt_model_load(path, &inf->model);
        if (r < 0)
                return r;
        r = cvopt_graph_infer_shapes(inf->model->graph);
        if (r < 0)
                return cvopt_error_prefix(r, "%s: ", path);
        /* "auto" measures the backends at start once the engine has more
         * than the CPU one; "opencl" falls back to the CPU when no OpenCL
         * backend or device is there, and says so (inf->backend_note). */
        CvoptSessionOptions options = {
                .backend = streq(conf->inference_backend, "opencl") ? "opencl" : "cpu",
                .threads = (int) conf->threads,
        };
        r = cvopt_session_new(inf->model->graph, &options, &inf->session);
        if (r < 0 && !streq(options.backend, "cpu")) {
                snprintf(inf->backend_note, sizeof inf->backend_note, "%s unavailable (%s), using cpu",
                         options.backend, cvopt_error_detail());
                options.backend = "cpu";
                r = cvopt_session_new(inf->model->graph, &options, &inf->session);
        }
        if (r < 0)
                return cvopt_error_prefix(r, "%s: ", path);
        r = check_io(inf);
        if (r < 0)
                return cvopt_error_prefix(r, "%s: ", path);
        r = preprocessor_new(&inf->model->input, &inf->preprocessor);
        if (r < 0)
                return cvopt_error_prefix(r, "%s: input spec: ", path);
        inf->scores = calloc(inf->n_classes, sizeof(float));
        if (!inf->scores)
                return -ENOMEM;

        /* Verify by running once on the normalized mean (all zeros): a
         * model whose kernels fail or produce NaN never replaces a
         * serving one. */
        float *in = inference_input(inf);
        memset(in, 0, cvopt_tensor_bytes(cvopt_session_input(inf->session, 0)));
        r = cvopt_session_run(inf->session);
        if (r < 0)
                return cvopt_error_prefix(r, "%s: test run: ", path);
        const float *out = cvopt_session_output(inf->session, 0)->data;
        for (uint32_t i = 0; i < inf->n_classes; i++)
                if (!isfinite(out[i]))
                        return cvopt_error_set(-CVOPT_E_DATA, "%s: test run gives a non-finite score", path);
        snprintf(inf->backend, sizeof inf->backend, "%s", strempty(cvopt_session_backend_name(inf->session)));
        *ret = TAKE_PTR(inf);
        return 0;
}

int inference_run(Inference *inf, uint32_t top_k, double min_score, Prediction *ret) {
        int r = cvopt_session_run(inf->session);
        if (r < 0)
                return r;
        const float *out = cvopt_session_output(inf->session, 0)->data;
        uint32_t n = inf->n_classes;
        float sum = 0, max = -INFINITY;
        bool distribution = true;

        for (uint32_t i = 0; i < n; i++) {
                if (!isfinite(out[i]))
                        return cvopt_error_set(-CVOPT_E_DATA, "non-finite score for class %u", i);
                if (out[i] < 0 || out[i] > 1)
                        distribution = false;
                sum += out[i];
                max = MAX(max, out[i]);
        }
        /* Models that end in Softmax already give probabilities. */
        if (distribution && fabsf(sum - 1.f) < 1e-3f)
                memcpy(inf->scores, out, n * sizeof(float));
        else {
                sum = 0;
                for (uint32_t i = 0; i < n; i++)
                        sum += inf->scores[i] = expf(out[i] - max);
                for (uint32_t i = 0; i < n; i++)
                        inf->scores[i] /= sum;
        }

        /* Partial selection: top_k is small (<= 100), n may be 1000. */
        uint32_t k = MIN(MIN(top_k, n), INFERENCE_MAX_TOP);
        ret->n_top = 0;
        for (uint32_t i = 0; i < n; i++) {
                float s = inf->scores[i];
                if (s < min_score)
                        continue;
                if (ret->n_top == k && s <= ret->top[k - 1].score)
                        continue;
                uint32_t j = ret->n_top < k ? ret->n_top++ : k - 1;
                while (j > 0 && ret->top[j - 1].score < s) {
                        ret->top[j] = ret->top[j - 1];
                        j--;
                }
                ret->top[j] = (TopClass) { .cls = i, .score = s };
        }
        return 0;
}

const char *inference_label(const Inference *inf, uint32_t cls) {
        if (cls < inf->model->n_labels && inf->model->labels[cls])
                return inf->model->labels[cls];
        return NULL;
}

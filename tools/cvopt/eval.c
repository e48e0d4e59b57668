/* SPDX-License-Identifier: MIT */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "eval.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptSession *, cvopt_session_free);

typedef struct EvalShared {
        const CvoptGraph *graph;
        size_t count;
        uint32_t n_classes;
        EvalFetch fetch;
        void *userdata;
        const EvalOptions *options;
        atomic_size_t next;
        atomic_size_t done;
        pthread_mutex_t lock; /* guards the result and the first error */
        EvalResult *result;
        int error;
        char error_detail[512];
} EvalShared;

void eval_top_k(const float *scores, uint32_t n, uint32_t k, uint32_t *ret_classes) {
        for (uint32_t i = 0; i < k; i++) {
                int64_t best = -1;

                for (uint32_t c = 0; c < n; c++) {
                        bool taken = false;

                        for (uint32_t j = 0; j < i; j++)
                                taken |= ret_classes[j] == c;
                        if (taken)
                                continue;
                        /* NaN never wins: a broken output must not look like a class. */
                        if (best < 0 || scores[c] > scores[best] || (isnan(scores[best]) && !isnan(scores[c])))
                                best = c;
                }
                ret_classes[i] = (uint32_t) best;
        }
}

static void eval_fail(EvalShared *s, int r) {
        pthread_mutex_lock(&s->lock);
        if (s->error == 0) {
                s->error = r;
                snprintf(s->error_detail, sizeof(s->error_detail), "%s", cvopt_error_detail());
        }
        pthread_mutex_unlock(&s->lock);
        /* Makes every worker stop taking samples. */
        atomic_store(&s->next, s->count);
}

static void *eval_worker(void *arg) {
        EvalShared *s = arg;
        _cleanup_(cvopt_session_freep) CvoptSession *session = NULL;
        CvoptTensor *input;
        const CvoptTensor *output;
        int r;

        r = cvopt_session_new(s->graph, &(CvoptSessionOptions) { .backend = s->options->backend }, &session);
        if (r < 0) {
                eval_fail(s, r);
                return NULL;
        }
        input = cvopt_session_input(session, 0);
        output = cvopt_session_output(session, 0);
        for (;;) {
                size_t i = atomic_fetch_add(&s->next, 1);
                uint32_t top[5];
                int label;

                if (i >= s->count)
                        break;
                r = s->fetch(s->userdata, i, input->data, (size_t) cvopt_tensor_count(input), &label);
                if (r >= 0)
                        r = cvopt_session_run(session);
                if (r < 0) {
                        eval_fail(s, r);
                        break;
                }
                if (label < 0 || (uint32_t) label >= s->n_classes) {
                        cvopt_error_set(-CVOPT_E_DATA, "sample %zu: label %d out of range 0..%u", i, label,
                                        s->n_classes - 1);
                        eval_fail(s, -CVOPT_E_DATA);
                        break;
                }
                uint32_t k = MIN(5u, s->n_classes);
                eval_top_k(output->data, s->n_classes, k, top);
                pthread_mutex_lock(&s->lock);
                s->result->predicted[i] = top[0];
                s->result->confusion[(size_t) label * s->n_classes + top[0]]++;
                s->result->class_count[label]++;
                s->result->top1_correct += top[0] == (uint32_t) label;
                for (uint32_t j = 0; j < k; j++)
                        s->result->top5_correct += top[j] == (uint32_t) label;
                pthread_mutex_unlock(&s->lock);
                size_t done = atomic_fetch_add(&s->done, 1) + 1;
                if (s->options->progress)
                        s->options->progress(s->options->progress_userdata, done, s->count);
        }
        return NULL;
}

void eval_result_done(EvalResult *r) {
        free(r->confusion);
        free(r->class_count);
        free(r->predicted);
        memset(r, 0, sizeof(*r));
}

static double now_sec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int eval_graph(const CvoptGraph *g, size_t count, uint32_t n_classes, EvalFetch fetch, void *userdata,
               const EvalOptions *options, EvalResult *ret) {
        EvalResult result = { .n = count, .n_classes = n_classes };
        EvalShared s = { .graph = g, .count = count, .n_classes = n_classes, .fetch = fetch, .userdata = userdata,
                         .options = options, .result = &result };
        pthread_t threads[64];
        unsigned n_threads = options->threads ? options->threads : (unsigned) MAX(sysconf(_SC_NPROCESSORS_ONLN), 1L);
        unsigned started = 0;
        double start;
        int r = 0;

        if (count == 0)
                return cvopt_error_set(-CVOPT_E_DATA, "nothing to evaluate: the dataset is empty");
        if (g->n_inputs != 1 || g->n_outputs < 1 || g->tensors[g->inputs[0]].dtype != CVOPT_DTYPE_FLOAT32)
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "evaluation needs one float input and an output");
        const CvoptTensor *out = &g->tensors[g->outputs[0]];
        if (out->dtype != CVOPT_DTYPE_FLOAT32 || cvopt_tensor_count(out) != (int64_t) n_classes)
                return cvopt_error_set(-CVOPT_E_SHAPE, "the model outputs %lld values but the dataset has %u classes",
                                       (long long) cvopt_tensor_count(out), n_classes);
        n_threads = MIN(n_threads, (unsigned) ELEMENTSOF(threads));
        n_threads = (unsigned) MIN((size_t) n_threads, count);
        result.confusion = calloc((size_t) n_classes * n_classes, sizeof(uint64_t));
        result.class_count = calloc(n_classes, sizeof(uint64_t));
        result.predicted = calloc(count, sizeof(uint32_t));
        if (!result.confusion || !result.class_count || !result.predicted) {
                eval_result_done(&result);
                return -ENOMEM;
        }
        pthread_mutex_init(&s.lock, NULL);
        start = now_sec();
        for (; started < n_threads; started++)
                if (pthread_create(&threads[started], NULL, eval_worker, &s) != 0)
                        break;
        if (started == 0)
                eval_worker(&s);
        for (unsigned i = 0; i < started; i++)
                pthread_join(threads[i], NULL);
        pthread_mutex_destroy(&s.lock);
        if (s.error < 0) {
                eval_result_done(&result);
                return cvopt_error_set(s.error, "%s", s.error_detail);
        }
        result.seconds = now_sec() - start;
        result.images_per_sec = result.seconds > 0 ? (double) count / result.seconds : 0;
        result.top1 = 100.0 * (double) result.top1_correct / (double) count;
        result.top5 = 100.0 * (double) result.top5_correct / (double) count;
        *ret = result;
        return r;
}

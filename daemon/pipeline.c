/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>

#include "cvopt/errors.h"
#include "pipeline.h"

/* First retry 100 ms after a camera fails, doubling up to
 * [camera] retry_max_msec: a replug is noticed quickly, an absent camera
 * costs a few opens per second at most. */
#define RETRY_FIRST_USEC 100000u
/* The worker wakes at least this often, to beat its heartbeat and check
 * for a stop, even when nothing happens (paused, replay ended). */
#define IDLE_WAKE_USEC 500000u

OutboxItem *outbox_item_free(OutboxItem *item) {
        if (!item)
                return NULL;
        json_decref(item->json);
        json_decref(item->request_id);
        free(item->text);
        free(item);
        return NULL;
}

Job *job_free(Job *job) {
        if (!job)
                return NULL;
        cvopt_image_free(job->image);
        inference_free(job->inference);
        json_decref(job->request_id);
        free(job);
        return NULL;
}

static void eventfd_signal(int fd) {
        uint64_t one = 1;
        /* EAGAIN only when the counter is about to overflow: it is then
         * already readable, which is all we need. */
        (void) !write(fd, &one, sizeof one);
}

static void eventfd_drain(int fd) {
        uint64_t v;
        (void) !read(fd, &v, sizeof v);
}

static void outbox_push(Pipeline *p, OutboxItem *item) {
        pthread_mutex_lock(&p->lock);
        *p->outbox_tail = item;
        p->outbox_tail = &item->next;
        pthread_mutex_unlock(&p->lock);
        eventfd_signal(p->outbox_fd);
}

static void outbox_push_text(Pipeline *p, OutboxKind kind, const char *text) {
        OutboxItem *item = calloc(1, sizeof *item);
        if (!item)
                return;
        item->kind = kind;
        item->text = text ? strdup(text) : NULL;
        outbox_push(p, item);
}

OutboxItem *pipeline_take_outbox(Pipeline *p) {
        eventfd_drain(p->outbox_fd);
        pthread_mutex_lock(&p->lock);
        OutboxItem *list = p->outbox;
        p->outbox = NULL;
        p->outbox_tail = &p->outbox;
        pthread_mutex_unlock(&p->lock);
        return list;
}

void pipeline_submit(Pipeline *p, Job *job) {
        pthread_mutex_lock(&p->lock);
        *p->jobs_tail = job;
        p->jobs_tail = &job->next;
        pthread_mutex_unlock(&p->lock);
        eventfd_signal(p->wake_fd);
}

void pipeline_set_paused(Pipeline *p, bool paused) {
        atomic_store(&p->paused, paused);
        eventfd_signal(p->wake_fd);
}

static json_t *prediction_to_json(const Inference *inf, const Prediction *pred) {
        json_t *top = json_array();
        for (uint32_t i = 0; top && i < pred->n_top; i++) {
                const char *label = inference_label(inf, pred->top[i].cls);
                json_array_append_new(top, json_pack("{s:I,s:s?,s:f}", "class", (json_int_t) pred->top[i].cls,
                                                     "label", label, "score", (double) pred->top[i].score));
        }
        if (pred->n_top == 0)
                return json_pack("{s:n,s:n,s:n,s:o}", "label", "class", "score", "top", top);
        return json_pack("{s:s?,s:I,s:f,s:o}", "label", inference_label(inf, pred->top[0].cls), "class",
                         (json_int_t) pred->top[0].cls, "score", (double) pred->top[0].score, "top", top);
}

static void reply(Pipeline *p, Job *job, int error, const char *message, json_t *result) {
        OutboxItem *item = calloc(1, sizeof *item);
        if (!item) {
                json_decref(result);
                return;
        }
        item->kind = OUTBOX_REPLY;
        item->client_id = job->client_id;
        item->request_id = TAKE_PTR(job->request_id);
        item->error = error;
        item->text = message ? strdup(message) : NULL;
        item->json = result;
        outbox_push(p, item);
}

static void job_run(Pipeline *p, Job *job) {
        Inference *inf = p->inference;
        Prediction pred;
        int r;

        if (job->kind == JOB_SWAP_MODEL) {
                json_t *ids = json_pack("{s:s,s:s,s:s}", "id", job->inference->model->id, "previous",
                                        inf ? inf->model->id : "", "path", job->inference->path);
                p->inference = TAKE_PTR(job->inference);
                inference_free(inf);
                OutboxItem *item = calloc(1, sizeof *item);
                if (item) {
                        item->kind = OUTBOX_MODEL_SWAPPED;
                        item->json = json_incref(ids);
                        outbox_push(p, item);
                }
                reply(p, job, 0, NULL, ids);
                return;
        }

        /* JOB_CLASSIFY */
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        r = preprocess_image_float(inf->preprocessor, job->image, inference_input(inf));
        if (r < 0) {
                reply(p, job, r, cvopt_error_detail(), NULL);
                return;
        }
        uint64_t t1 = now_usec(CLOCK_MONOTONIC);
        r = inference_run(inf, p->conf->top_k, p->conf->min_score, &pred);
        if (r < 0) {
                reply(p, job, r, cvopt_error_detail(), NULL);
                return;
        }
        uint64_t t2 = now_usec(CLOCK_MONOTONIC);
        json_t *result = prediction_to_json(inf, &pred);
        json_object_update_new(result, json_pack("{s:I,s:s,s:{s:I,s:I},s:s,s:s}", "seq", (json_int_t) 0,
                                                 "source", "classify", "latency_usec", "preprocess",
                                                 (json_int_t) (t1 - t0), "inference", (json_int_t) (t2 - t1),
                                                 "backend", inf->backend, "model", inf->model->id));
        pthread_mutex_lock(&p->telemetry->lock);
        p->telemetry->classify_requests++;
        pthread_mutex_unlock(&p->telemetry->lock);
        reply(p, job, 0, NULL, result);
}

static void jobs_run(Pipeline *p) {
        pthread_mutex_lock(&p->lock);
        Job *list = p->jobs;
        p->jobs = NULL;
        p->jobs_tail = &p->jobs;
        pthread_mutex_unlock(&p->lock);
        while (list) {
                Job *next = list->next;
                job_run(p, list);
                job_free(list);
                list = next;
        }
}

static void frame_process(Pipeline *p, Frame *frame, uint64_t dropped) {
        Inference *inf = p->inference;
        Telemetry *t = p->telemetry;
        Prediction pred;
        uint64_t cpu0 = now_usec(CLOCK_THREAD_CPUTIME_ID);
        uint64_t t0 = now_usec(CLOCK_MONOTONIC);
        int r;

        r = preprocess_frame_float(inf->preprocessor, frame, inference_input(inf));
        /* The buffer goes back to the driver as soon as its pixels are in
         * the input tensor. */
        Frame f = *frame;
        p->source->ops->release(p->source, frame);
        if (r < 0) {
                pthread_mutex_lock(&t->lock);
                t->frames_captured += 1 + dropped;
                t->frames_dropped += dropped;
                /* Logged by the main loop from the counter, not per frame:
                 * a camera sending garbage must not flood the journal. */
                t->frame_errors++;
                pthread_mutex_unlock(&t->lock);
                return;
        }
        uint64_t t1 = now_usec(CLOCK_MONOTONIC);
        r = inference_run(inf, p->conf->top_k, p->conf->min_score, &pred);
        uint64_t t2 = now_usec(CLOCK_MONOTONIC);
        if (r < 0) {
                pthread_mutex_lock(&t->lock);
                t->frames_captured += 1 + dropped;
                t->frames_dropped += dropped;
                t->frame_errors++;
                pthread_mutex_unlock(&t->lock);
                return;
        }

        uint64_t capture_wait = t0 > f.ts_usec ? t0 - f.ts_usec : 0;
        json_t *result = prediction_to_json(inf, &pred);
        json_t *head = json_pack("{s:s,s:I,s:I,s:I}", "event", "result", "seq", (json_int_t) ++p->seq, "frame_seq",
                                 (json_int_t) f.sequence, "ts_usec", (json_int_t) f.ts_usec);
        json_object_update_new(head, result);
        if (f.truth >= 0)
                json_object_set_new(head, "truth", json_integer(f.truth));
        uint64_t t3 = now_usec(CLOCK_MONOTONIC);
        json_object_set_new(head, "latency_usec",
                            json_pack("{s:I,s:I,s:I,s:I,s:I}", "capture_wait", (json_int_t) capture_wait, "preprocess",
                                      (json_int_t) (t1 - t0), "inference", (json_int_t) (t2 - t1), "postprocess",
                                      (json_int_t) (t3 - t2), "total",
                                      (json_int_t) (t3 > f.ts_usec ? t3 - f.ts_usec : 0)));
        json_object_set_new(head, "backend", json_string(inf->backend));
        json_object_set_new(head, "model", json_string(inf->model->id));

        OutboxItem *item = calloc(1, sizeof *item);
        if (!item) {
                json_decref(head);
                return;
        }
        item->kind = OUTBOX_RESULT;
        item->json = head;
        item->frame_ts_usec = f.ts_usec;
        item->got_frame_usec = t0;
        item->inference_usec = t2 - t1;
        item->capture_wait_usec = capture_wait;
        item->enqueued_usec = now_usec(CLOCK_MONOTONIC);
        uint64_t cpu = now_usec(CLOCK_THREAD_CPUTIME_ID) - cpu0;

        pthread_mutex_lock(&t->lock);
        t->frames_captured += 1 + dropped;
        t->frames_dropped += dropped;
        t->frames_classified++;
        t->cpu_usec_total += cpu;
        t->fallbacks = cvopt_session_n_fallbacks(inf->session);
        histogram_add(&t->stages[STAGE_CAPTURE_WAIT], capture_wait);
        histogram_add(&t->stages[STAGE_PREPROCESS], t1 - t0);
        histogram_add(&t->stages[STAGE_INFERENCE], t2 - t1);
        histogram_add(&t->stages[STAGE_POSTPROCESS], item->enqueued_usec - t2);
        pthread_mutex_unlock(&t->lock);

        outbox_push(p, item);
}

static void *worker_main(void *userdata) {
        Pipeline *p = userdata;
        Source *src = p->source;
        bool started = false, ever_started = false, lost = false, ended = false;
        uint64_t backoff_usec = RETRY_FIRST_USEC, last_frame_usec = 0;
        char desc[256], reason[512];

        while (!atomic_load(&p->stop)) {
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                atomic_store(&p->heartbeat_usec, now);
                jobs_run(p);

                if (!started) {
                        int r = src->ops->start(src);
                        if (r < 0) {
                                snprintf(reason, sizeof reason, "%s", *cvopt_error_detail() ? cvopt_error_detail() : cvopt_strerror(r));
                                /* Reported once per loss, not per retry. */
                                if (!lost) {
                                        outbox_push_text(p, ever_started ? OUTBOX_CAMERA_LOST : OUTBOX_CAMERA_ABSENT, reason);
                                        lost = true;
                                }
                                if (wait_wake_fd(p->wake_fd, backoff_usec) > 0)
                                        eventfd_drain(p->wake_fd);
                                backoff_usec = MIN(backoff_usec * 2, p->conf->camera_retry_max_usec);
                                continue;
                        }
                        started = true;
                        backoff_usec = RETRY_FIRST_USEC;
                        last_frame_usec = now_usec(CLOCK_MONOTONIC);
                        src->ops->describe(src, desc, sizeof desc);
                        if (lost && ever_started) {
                                pthread_mutex_lock(&p->telemetry->lock);
                                p->telemetry->camera_reconnects++;
                                pthread_mutex_unlock(&p->telemetry->lock);
                                outbox_push_text(p, OUTBOX_CAMERA_BACK, desc);
                        } else
                                outbox_push_text(p, OUTBOX_CAMERA_OPENED, desc);
                        lost = false;
                        ever_started = true;
                }

                if (ended || atomic_load(&p->paused)) {
                        if (wait_wake_fd(p->wake_fd, IDLE_WAKE_USEC) > 0)
                                eventfd_drain(p->wake_fd);
                        last_frame_usec = now_usec(CLOCK_MONOTONIC);
                        continue;
                }

                uint64_t timeout = p->conf->camera_timeout_usec;
                uint64_t waited = now_usec(CLOCK_MONOTONIC) - last_frame_usec;
                uint64_t wait = MIN(waited < timeout ? timeout - waited : 0, IDLE_WAKE_USEC);
                Frame frame;
                uint64_t dropped = 0;
                int r = src->ops->next(src, p->wake_fd, wait, &frame, &dropped);
                if (r == 1) {
                        last_frame_usec = now_usec(CLOCK_MONOTONIC);
                        frame_process(p, &frame, dropped);
                        continue;
                }
                if (dropped) {
                        pthread_mutex_lock(&p->telemetry->lock);
                        p->telemetry->frames_captured += dropped;
                        p->telemetry->frames_dropped += dropped;
                        pthread_mutex_unlock(&p->telemetry->lock);
                }
                if (r == -ENODATA) {
                        ended = true;
                        outbox_push_text(p, OUTBOX_REPLAY_ENDED, NULL);
                        continue;
                }
                if (r == 0) {
                        /* Woken for a job, or a slice of the timeout passed. */
                        eventfd_drain(p->wake_fd);
                        if (now_usec(CLOCK_MONOTONIC) - last_frame_usec < timeout)
                                continue;
                        snprintf(reason, sizeof reason, "no frame for %llu ms",
                                 (unsigned long long) (timeout / 1000));
                } else
                        snprintf(reason, sizeof reason, "%s", *cvopt_error_detail() ? cvopt_error_detail() : cvopt_strerror(r));
                src->ops->stop(src);
                started = false;
                lost = true;
                pthread_mutex_lock(&p->telemetry->lock);
                p->telemetry->camera_lost_events++;
                pthread_mutex_unlock(&p->telemetry->lock);
                outbox_push_text(p, OUTBOX_CAMERA_LOST, reason);
                if (wait_wake_fd(p->wake_fd, backoff_usec) > 0)
                        eventfd_drain(p->wake_fd);
        }
        if (started)
                src->ops->stop(src);
        return NULL;
}

int pipeline_new(const Conf *conf, Telemetry *telemetry, Source *source, Inference *inference,
                 Pipeline **ret) {
        Pipeline *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->conf = conf;
        p->telemetry = telemetry;
        p->jobs_tail = &p->jobs;
        p->outbox_tail = &p->outbox;
        p->wake_fd = p->outbox_fd = -EBADF;
        pthread_mutex_init(&p->lock, NULL);
        p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        p->outbox_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (p->wake_fd < 0 || p->outbox_fd < 0) {
                int r = -errno;
                pipeline_free(p);
                return r;
        }
        p->source = source;
        p->inference = inference;
        atomic_store(&p->heartbeat_usec, now_usec(CLOCK_MONOTONIC));
        *ret = p;
        return 0;
}

int pipeline_start(Pipeline *p) {
        int r = pthread_create(&p->thread, NULL, worker_main, p);
        if (r != 0)
                return -r;
        p->thread_started = true;
        return 0;
}

void pipeline_stop(Pipeline *p) {
        if (!p->thread_started)
                return;
        atomic_store(&p->stop, true);
        eventfd_signal(p->wake_fd);
        pthread_join(p->thread, NULL);
        p->thread_started = false;
}

Pipeline *pipeline_free(Pipeline *p) {
        if (!p)
                return NULL;
        pipeline_stop(p);
        while (p->jobs) {
                Job *next = p->jobs->next;
                job_free(p->jobs);
                p->jobs = next;
        }
        while (p->outbox) {
                OutboxItem *next = p->outbox->next;
                outbox_item_free(p->outbox);
                p->outbox = next;
        }
        source_free(p->source);
        inference_free(p->inference);
        safe_close(p->wake_fd);
        safe_close(p->outbox_fd);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
}

/* SPDX-License-Identifier: MIT */
#pragma once

/* The worker thread: capture -> preprocess -> inference -> postprocess.
 * Newest frame wins: frames that arrive while one is being classified
 * are dropped (counted), never queued. The worker talks to the main loop
 * only through two queues under one mutex, each with an eventfd:
 *   jobs   (main -> worker): classify an image, swap in a new model;
 *   outbox (worker -> main): results, camera events, job replies.
 * The outbox is not bounded by dropping: every result reaches the main
 * loop, which fans it out to subscribers (where slow ones drop). */

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "cvopt/image.h"
#include "inference.h"
#include "source.h"
#include "telemetry.h"

typedef enum OutboxKind {
        OUTBOX_RESULT,          /* json: the result event object */
        OUTBOX_CAMERA_OPENED,   /* text: description; first open */
        OUTBOX_CAMERA_ABSENT,   /* text: reason; the first open failed */
        OUTBOX_CAMERA_LOST,     /* text: reason */
        OUTBOX_CAMERA_BACK,     /* text: description */
        OUTBOX_REPLAY_ENDED,
        OUTBOX_REPLY,           /* reply to a job: json result or error */
        OUTBOX_MODEL_SWAPPED,   /* json: {"id","previous","path"} */
} OutboxKind;

typedef struct OutboxItem {
        OutboxKind kind;
        json_t *json;
        char *text;
        /* Replies: the client and request id to answer; error < 0 with text
         * for a failure. */
        uint64_t client_id;
        json_t *request_id;
        int error;
        /* Results: when the worker held the frame and when it handed the
         * result over, for the publish/overhead/total latencies. */
        uint64_t frame_ts_usec;
        uint64_t got_frame_usec;
        uint64_t inference_usec;
        uint64_t capture_wait_usec;
        uint64_t enqueued_usec;
        struct OutboxItem *next;
} OutboxItem;

OutboxItem *outbox_item_free(OutboxItem *item);

typedef enum JobKind {
        JOB_CLASSIFY,
        JOB_SWAP_MODEL,
} JobKind;

typedef struct Job {
        JobKind kind;
        CvoptImage *image;     /* CLASSIFY */
        Inference *inference;  /* SWAP_MODEL */
        uint64_t client_id;
        json_t *request_id;
        struct Job *next;
} Job;

Job *job_free(Job *job);

typedef struct Pipeline {
        const Conf *conf;
        Telemetry *telemetry;
        Source *source;
        Inference *inference; /* owned by the worker while it runs */

        pthread_t thread;
        bool thread_started;
        int wake_fd;   /* main -> worker */
        int outbox_fd; /* worker -> main */

        pthread_mutex_t lock;
        Job *jobs, **jobs_tail;
        OutboxItem *outbox, **outbox_tail;

        atomic_bool stop;
        atomic_bool paused;
        /* CLOCK_MONOTONIC usec of the worker's last loop iteration; the
         * watchdog is fed only while this is fresh. */
        atomic_uint_fast64_t heartbeat_usec;

        uint64_t seq; /* worker only */
} Pipeline;

/* Takes ownership of source and inference. */
int pipeline_new(const Conf *conf, Telemetry *telemetry, Source *source, Inference *inference,
                 Pipeline **ret);
int pipeline_start(Pipeline *p);
/* Asks the worker to stop and joins it. */
void pipeline_stop(Pipeline *p);
Pipeline *pipeline_free(Pipeline *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Pipeline *, pipeline_free);

/* Queues a job (ownership passes) and wakes the worker. */
void pipeline_submit(Pipeline *p, Job *job);
void pipeline_set_paused(Pipeline *p, bool paused);

/* Takes every queued outbox item (a list, oldest first) and clears the
 * eventfd. */
OutboxItem *pipeline_take_outbox(Pipeline *p);

/* SPDX-License-Identifier: MIT */
/* The read-only views of the daemon's state: status, stats and the
 * Prometheus metrics text (docs/protocol.md). */

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "daemon.h"

static const char *const camera_state_names[] = {
        [CAMERA_STATE_OPENING] = "opening",
        [CAMERA_STATE_STREAMING] = "streaming",
        [CAMERA_STATE_LOST] = "lost",
        [CAMERA_STATE_ENDED] = "ended",
};

const char *camera_state_name(CameraState s) {
        return s < ELEMENTSOF(camera_state_names) ? camera_state_names[s] : "?";
}

static const char *daemon_state(Daemon *d) {
        if (d->stopping)
                return "stopping";
        if (atomic_load(&d->pipeline->paused))
                return "paused";
        if (d->camera_state == CAMERA_STATE_LOST || (d->camera_state == CAMERA_STATE_OPENING && d->camera_reason))
                return "waiting-for-camera";
        if (!d->ready_sent)
                return "starting";
        return "running";
}

static json_t *camera_json(Daemon *d, const Telemetry *t) {
        return json_pack("{s:s,s:s,s:s?,s:s?,s:I,s:I}", "device", d->conf.camera_device, "state",
                         camera_state_name(d->camera_state), "description", d->camera_description, "reason",
                         d->camera_state == CAMERA_STATE_LOST || d->camera_state == CAMERA_STATE_OPENING ? d->camera_reason : NULL,
                         "reconnects", (json_int_t) t->camera_reconnects, "lost_events",
                         (json_int_t) t->camera_lost_events);
}

/* fps over the last status interval; before the first one has passed, the
 * rate since start, so a fresh daemon that is classifying does not say 0. */
static double current_fps(Daemon *d, const Telemetry *t) {
        uint64_t elapsed;

        if (d->fps_measured)
                return d->fps;
        elapsed = now_usec(CLOCK_MONOTONIC) - d->fps_last_usec;
        return elapsed ? (double) (t->frames_classified - d->fps_last_frames) * 1e6 / (double) elapsed : 0.0;
}

json_t *daemon_status_json(Daemon *d) {
        Telemetry t;
        telemetry_snapshot(&d->telemetry, &t);
        json_t *last = json_null();
        if (d->last_result)
                last = json_pack("{s:O,s:O,s:O,s:O}", "seq", json_object_get(d->last_result, "seq"), "label",
                                 json_object_get(d->last_result, "label"), "class",
                                 json_object_get(d->last_result, "class"), "score",
                                 json_object_get(d->last_result, "score"));
        return json_pack("{s:s,s:i,s:s,s:I,s:i,s:o,s:{s:s,s:s?},s:s,s:f,s:b,s:I,s:{s:{s:I,s:I},s:{s:I,s:I}},s:o}",
                         "version", PROJECT_VERSION, "protocol", 1, "state", daemon_state(d), "uptime_usec",
                         (json_int_t) (now_usec(CLOCK_MONOTONIC) - d->start_usec), "pid", (int) getpid(), "camera",
                         camera_json(d, &t), "model", "id", d->model_id, "path", d->model_path, "backend",
                         d->backend, "fps", current_fps(d, &t), "paused", (int) atomic_load(&d->pipeline->paused), "clients",
                         (json_int_t) d->server->n_clients, "latency_usec", "total", "p50",
                         (json_int_t) histogram_quantile(&t.stages[STAGE_TOTAL], 0.5), "p99",
                         (json_int_t) histogram_quantile(&t.stages[STAGE_TOTAL], 0.99), "inference", "p50",
                         (json_int_t) histogram_quantile(&t.stages[STAGE_INFERENCE], 0.5), "p99",
                         (json_int_t) histogram_quantile(&t.stages[STAGE_INFERENCE], 0.99), "last", last);
}

json_t *daemon_stats_json(Daemon *d) {
        Telemetry t;
        telemetry_snapshot(&d->telemetry, &t);
        json_t *latency = json_object();
        for (int s = 0; s < _STAGE_MAX; s++)
                json_object_set_new(latency, stage_name(s), histogram_to_json(&t.stages[s]));
        json_t *list = json_array();
        uint32_t subscribers = 0;
        for (Client *c = d->server->clients; c; c = c->next) {
                subscribers += c->subscribed;
                json_array_append_new(list, json_pack("{s:I,s:I,s:I,s:b,s:b,s:I,s:I,s:I}", "id", (json_int_t) c->id,
                                                      "uid", (json_int_t) c->cred.uid, "pid", (json_int_t) c->cred.pid,
                                                      "subscribed", c->subscribed, "admin", c->admin, "sent",
                                                      (json_int_t) c->sent, "dropped", (json_int_t) c->dropped,
                                                      "queued", (json_int_t) c->queue_len));
        }
        return json_pack("{s:I,s:{s:I,s:I,s:I,s:I},s:I,s:f,s:o,s:I,s:I,s:o,s:s,s:I,s:{s:I,s:I,s:I,s:I,s:o},s:{s:s,s:I,s:I},s:I}",
                         "uptime_usec", (json_int_t) (now_usec(CLOCK_MONOTONIC) - d->start_usec), "frames",
                         "captured", (json_int_t) t.frames_captured, "classified", (json_int_t) t.frames_classified,
                         "dropped", (json_int_t) t.frames_dropped, "errors", (json_int_t) t.frame_errors,
                         "results_published", (json_int_t) d->results_published, "fps", current_fps(d, &t), "latency_usec",
                         latency, "cpu_usec_per_frame",
                         (json_int_t) (t.frames_classified ? t.cpu_usec_total / t.frames_classified : 0), "rss_bytes",
                         (json_int_t) process_rss_bytes(), "camera", camera_json(d, &t), "backend", d->backend,
                         "fallbacks", (json_int_t) t.fallbacks, "clients", "connected",
                         (json_int_t) d->server->n_clients, "subscribers", (json_int_t) subscribers, "max",
                         (json_int_t) d->conf.max_clients, "refused", (json_int_t) d->server->refused, "list", list,
                         "model", "id", d->model_id, "reloads", (json_int_t) d->reloads, "reload_failures",
                         (json_int_t) d->reload_failures, "classify_requests", (json_int_t) t.classify_requests);
}

char *daemon_metrics_text(Daemon *d) {
        Telemetry t;
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        telemetry_snapshot(&d->telemetry, &t);

#define COUNTER(name, help, value)                                                                       \
        fprintf(f, "# HELP cvoptd_" name " " help "\n# TYPE cvoptd_" name " counter\ncvoptd_" name " %llu\n", \
                (unsigned long long) (value))
#define GAUGE(name, help, fmt, value) \
        fprintf(f, "# HELP cvoptd_" name " " help "\n# TYPE cvoptd_" name " gauge\ncvoptd_" name " " fmt "\n", value)

        COUNTER("frames_captured_total", "Frames delivered by the camera.", t.frames_captured);
        COUNTER("frames_classified_total", "Frames classified.", t.frames_classified);
        COUNTER("frames_dropped_total", "Frames skipped because a newer one arrived (newest frame wins).", t.frames_dropped);
        COUNTER("frame_errors_total", "Frames that could not be converted or classified.", t.frame_errors);
        COUNTER("results_published_total", "Results handed to subscribers.", d->results_published);
        COUNTER("camera_reconnects_total", "Times the camera came back after being lost.", t.camera_reconnects);
        COUNTER("camera_lost_total", "Times the camera was lost while streaming.", t.camera_lost_events);
        COUNTER("model_reloads_total", "Successful model reloads.", d->reloads);
        COUNTER("model_reload_failures_total", "Reloads refused because the new model failed.", d->reload_failures);
        COUNTER("classify_requests_total", "Images classified for clients.", t.classify_requests);
        GAUGE("fps", "Frames classified per second over the last status interval.", "%.3f", current_fps(d, &t));
        GAUGE("clients", "Connected socket clients.", "%u", d->server->n_clients);
        GAUGE("rss_bytes", "Resident set size.", "%llu", (unsigned long long) process_rss_bytes());
        GAUGE("uptime_seconds", "Seconds since start.", "%.3f",
              (double) (now_usec(CLOCK_MONOTONIC) - d->start_usec) / 1e6);
        GAUGE("cpu_seconds_per_frame", "Worker CPU time per classified frame.", "%.6f",
              t.frames_classified ? (double) t.cpu_usec_total / (double) t.frames_classified / 1e6 : 0.0);
        fprintf(f, "# HELP cvoptd_camera_up Whether the camera is streaming.\n# TYPE cvoptd_camera_up gauge\n"
                   "cvoptd_camera_up %d\n", d->camera_state == CAMERA_STATE_STREAMING);
        fprintf(f, "# HELP cvoptd_model_info The serving model.\n# TYPE cvoptd_model_info gauge\n"
                   "cvoptd_model_info{id=\"%s\",backend=\"%s\"} 1\n", d->model_id, d->backend);
        uint64_t dropped = 0;
        for (Client *c = d->server->clients; c; c = c->next)
                dropped += c->dropped;
        COUNTER("subscriber_drops_total", "Events dropped for slow subscribers (connected ones).", dropped);

        fprintf(f, "# HELP cvoptd_stage_latency_seconds Per-frame latency of each pipeline stage.\n"
                   "# TYPE cvoptd_stage_latency_seconds summary\n");
        static const double qs[] = { 0.5, 0.9, 0.99 };
        for (int s = 0; s < _STAGE_MAX; s++) {
                for (size_t i = 0; i < ELEMENTSOF(qs); i++)
                        fprintf(f, "cvoptd_stage_latency_seconds{stage=\"%s\",quantile=\"%g\"} %.6f\n", stage_name(s),
                                qs[i], (double) histogram_quantile(&t.stages[s], qs[i]) / 1e6);
                fprintf(f, "cvoptd_stage_latency_seconds_sum{stage=\"%s\"} %.6f\n", stage_name(s),
                        (double) t.stages[s].sum / 1e6);
                fprintf(f, "cvoptd_stage_latency_seconds_count{stage=\"%s\"} %llu\n", stage_name(s),
                        (unsigned long long) t.stages[s].count);
        }
#undef COUNTER
#undef GAUGE
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

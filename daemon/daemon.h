/* SPDX-License-Identifier: MIT */
#pragma once

/* The daemon's main-loop state, shared by main.c (lifecycle, outbox,
 * timers), protocol.c (commands) and notify.c (sd_notify). Only the main
 * thread touches it; the worker has its own (pipeline.h). */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "conf.h"
#include "pipeline.h"
#include "server.h"
#include "telemetry.h"

typedef enum CameraState {
        CAMERA_STATE_OPENING,
        CAMERA_STATE_STREAMING,
        CAMERA_STATE_LOST,
        CAMERA_STATE_ENDED, /* replay without loop reached its end */
} CameraState;

typedef struct Daemon {
        Conf conf;
        const char *config_path;
        sd_event *event;
        Server *server;
        Pipeline *pipeline;
        Telemetry telemetry;
        sd_event_source *timer;

        uint64_t start_usec; /* CLOCK_MONOTONIC */
        bool ready_sent;
        bool stopping;
        bool reloading;

        /* The serving model, as the worker last confirmed it. */
        char model_id[17];
        char *model_path;
        json_t *model_info; /* the "model" command's result */
        json_t *pending_model_info; /* of a model handed to the worker, not yet serving */
        char backend[32];
        uint64_t reloads, reload_failures;

        json_t *last_result;
        uint64_t results_published;

        CameraState camera_state;
        char *camera_description;
        char *camera_reason;

        /* fps over the last status interval */
        uint64_t fps_last_usec, fps_last_frames;
        double fps;
        bool fps_measured; /* a whole interval has passed */
        uint64_t frame_errors_logged;
        uint64_t log_last_usec;
        uint64_t watchdog_usec; /* 0: no watchdog */
} Daemon;

const char *camera_state_name(CameraState s);

/* Loads and verifies path (or the configured model) beside the serving
 * one, then hands it to the worker; the client (if any) gets the reply
 * once it serves. Returns < 0 (detail set) if the model is bad. */
int daemon_reload(Daemon *d, const char *path, uint64_t client_id, json_t *request_id);

/* Protocol (protocol.c). */
void protocol_handle_line(void *userdata, Client *c, const char *line, size_t len);
void protocol_handle_oversize(void *userdata, Client *c);
/* The checks every request line goes through (UTF-8, JSON, object, "v",
 * "cmd"): 0 with the request, or -EINVAL with the error code and message
 * (and the request, if it was an object, for its id). Pure: fuzzed. */
int protocol_parse_request(const char *line, size_t len, json_t **ret_request, const char **ret_code,
                           char *message, size_t message_size);
int protocol_decode_base64(const char *in, size_t len, uint8_t **ret, size_t *ret_size);
void protocol_send_result(Client *c, json_t *request_id, json_t *result);
void protocol_send_error(Client *c, json_t *request_id, const char *code, const char *format, ...) _printf_(4, 5);
json_t *model_info_json(const Inference *inf);

/* Telemetry views (protocol-views.c). */
json_t *daemon_status_json(Daemon *d);
json_t *daemon_stats_json(Daemon *d);
char *daemon_metrics_text(Daemon *d);

/* sd_notify (notify.c). */
void notify_ready(Daemon *d, const char *status);
void notify_status(Daemon *d);
void notify_reloading(Daemon *d);
void notify_stopping(Daemon *d);
void notify_watchdog(Daemon *d);

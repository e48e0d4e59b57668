/* SPDX-License-Identifier: MIT */
/* cvoptd: camera -> model -> Unix socket. The main loop (sd-event) owns
 * the socket, signals, timers and sd_notify; the worker (pipeline.c)
 * captures and classifies. */

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvopt/errors.h"
#include "daemon.h"
#include "log.h"

#include <systemd/sd-daemon.h>

static void broadcast(Daemon *d, json_t *event) {
        char *text = json_dumps(event, JSON_COMPACT);
        if (!text)
                return;
        Message *m = message_new(text, strlen(text));
        free(text);
        if (!m)
                return;
        Client *next;
        for (Client *c = d->server->clients; c; c = next) {
                next = c->next;
                if (c->subscribed)
                        client_send_event(c, m);
        }
        message_unref(m);
}

static void broadcast_camera(Daemon *d, const char *state, const char *reason) {
        Telemetry t;
        telemetry_snapshot(&d->telemetry, &t);
        json_t *e = json_pack("{s:s,s:s,s:s?,s:I,s:I}", "event", "camera", "state", state, "reason", reason,
                              "reconnects", (json_int_t) t.camera_reconnects, "ts_usec",
                              (json_int_t) now_usec(CLOCK_MONOTONIC));
        broadcast(d, e);
        json_decref(e);
}

static void set_string(char **field, const char *value) {
        free(*field);
        *field = value ? strdup(value) : NULL;
}

static void handle_result(Daemon *d, OutboxItem *item) {
        broadcast(d, item->json);
        json_decref(d->last_result);
        d->last_result = json_incref(item->json);
        d->results_published++;

        uint64_t now = now_usec(CLOCK_MONOTONIC);
        uint64_t publish = now - item->enqueued_usec;
        uint64_t since_got = now - item->got_frame_usec;
        Telemetry *t = &d->telemetry;
        pthread_mutex_lock(&t->lock);
        histogram_add(&t->stages[STAGE_PUBLISH], publish);
        histogram_add(&t->stages[STAGE_OVERHEAD], since_got > item->inference_usec ? since_got - item->inference_usec : 0);
        histogram_add(&t->stages[STAGE_TOTAL], now > item->frame_ts_usec ? now - item->frame_ts_usec : 0);
        pthread_mutex_unlock(&t->lock);

        if (!d->ready_sent) {
                log_info("first frame classified %llu ms after start; ready",
                         (unsigned long long) ((now - d->start_usec) / 1000));
                notify_ready(d, NULL);
        }
}

static void handle_reply(Daemon *d, OutboxItem *item) {
        Client *c = server_find_client(d->server, item->client_id);
        if (!c)
                return; /* gone meanwhile, or SIGHUP */
        if (item->error < 0)
                protocol_send_error(c, item->request_id, "failed", "%s", item->text ? item->text : cvopt_strerror(item->error));
        else
                protocol_send_result(c, item->request_id, json_incref(item->json));
}

static void handle_model_swapped(Daemon *d, OutboxItem *item) {
        const char *id = json_string_value(json_object_get(item->json, "id"));
        const char *path = json_string_value(json_object_get(item->json, "path"));
        log_info("now serving model %s from %s (was %s)", id, path, d->model_id);
        snprintf(d->model_id, sizeof d->model_id, "%s", id);
        set_string(&d->model_path, path);
        json_decref(d->model_info);
        d->model_info = TAKE_PTR(d->pending_model_info);
        const char *backend = json_string_value(json_object_get(d->model_info, "backend"));
        snprintf(d->backend, sizeof d->backend, "%s", strempty(backend));
        d->reloads++;
        d->reloading = false;
        json_t *e = json_pack("{s:s,s:O,s:O}", "event", "model", "id", json_object_get(item->json, "id"), "previous",
                              json_object_get(item->json, "previous"));
        broadcast(d, e);
        json_decref(e);
        notify_ready(d, NULL);
}

static void outbox_handle(Daemon *d, OutboxItem *item) {
        switch (item->kind) {
        case OUTBOX_RESULT:
                handle_result(d, item);
                break;
        case OUTBOX_CAMERA_OPENED:
                d->camera_state = CAMERA_STATE_STREAMING;
                set_string(&d->camera_description, item->text);
                set_string(&d->camera_reason, NULL);
                log_info("camera: %s", strempty(item->text));
                break;
        case OUTBOX_CAMERA_ABSENT:
                d->camera_state = CAMERA_STATE_OPENING;
                set_string(&d->camera_reason, item->text);
                log_warning("camera %s not available, retrying: %s", d->conf.camera_device, strempty(item->text));
                if (!d->ready_sent)
                        notify_ready(d, NULL); /* STATUS=waiting for camera ... */
                break;
        case OUTBOX_CAMERA_LOST:
                d->camera_state = CAMERA_STATE_LOST;
                set_string(&d->camera_reason, item->text);
                log_warning("camera lost: %s; retrying", strempty(item->text));
                broadcast_camera(d, "lost", item->text);
                notify_status(d);
                break;
        case OUTBOX_CAMERA_BACK:
                d->camera_state = CAMERA_STATE_STREAMING;
                set_string(&d->camera_description, item->text);
                set_string(&d->camera_reason, NULL);
                log_info("camera back: %s", strempty(item->text));
                broadcast_camera(d, "back", NULL);
                notify_status(d);
                break;
        case OUTBOX_REPLAY_ENDED:
                d->camera_state = CAMERA_STATE_ENDED;
                log_info("replay finished after %llu results", (unsigned long long) d->results_published);
                if (!d->ready_sent)
                        notify_ready(d, NULL);
                notify_status(d);
                break;
        case OUTBOX_REPLY:
                handle_reply(d, item);
                break;
        case OUTBOX_MODEL_SWAPPED:
                handle_model_swapped(d, item);
                break;
        }
}

static int on_outbox(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        Daemon *d = userdata;
        (void) es;
        (void) fd;
        (void) revents;
        OutboxItem *list = pipeline_take_outbox(d->pipeline);
        while (list) {
                OutboxItem *next = list->next;
                outbox_handle(d, list);
                outbox_item_free(list);
                list = next;
        }
        return 0;
}

static int on_signal(sd_event_source *es, const struct signalfd_siginfo *si, void *userdata) {
        Daemon *d = userdata;
        (void) es;
        if (si->ssi_signo == SIGHUP) {
                if (d->reloading)
                        log_notice("SIGHUP: a reload is already in progress");
                else
                        (void) daemon_reload(d, NULL, 0, NULL);
                return 0;
        }
        log_info("%s: stopping", strsignal((int) si->ssi_signo));
        d->stopping = true;
        notify_stopping(d);
        return sd_event_exit(d->event, 0);
}

static int on_timer(sd_event_source *es, uint64_t usec, void *userdata) {
        Daemon *d = userdata;
        Telemetry t;
        uint64_t interval = d->conf.status_interval_usec;

        if (d->watchdog_usec)
                interval = MIN(interval, d->watchdog_usec / 3);
        sd_event_source_set_time(es, usec + interval);

        telemetry_snapshot(&d->telemetry, &t);
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        if (now - d->fps_last_usec >= d->conf.status_interval_usec) {
                d->fps = (double) (t.frames_classified - d->fps_last_frames) * 1e6 / (double) (now - d->fps_last_usec);
                d->fps_last_usec = now;
                d->fps_last_frames = t.frames_classified;
                d->fps_measured = true;
                if (d->ready_sent)
                        notify_status(d);
                /* Bad frames are counted per frame but logged at most once
                 * per interval. */
                if (t.frame_errors > d->frame_errors_logged) {
                        log_warning("%llu frames could not be classified in the last %.1f s (bad or short frames)",
                                    (unsigned long long) (t.frame_errors - d->frame_errors_logged),
                                    (double) d->conf.status_interval_usec / 1e6);
                        d->frame_errors_logged = t.frame_errors;
                }
        }
        if (d->conf.log_interval_usec && now - d->log_last_usec >= d->conf.log_interval_usec) {
                d->log_last_usec = now;
                log_info("%.1f fps, %llu classified, %llu dropped, %llu errors, inference p50 %llu us p99 %llu us, "
                         "overhead p99 %llu us, %u clients, camera %s",
                         d->fps, (unsigned long long) t.frames_classified, (unsigned long long) t.frames_dropped,
                         (unsigned long long) t.frame_errors,
                         (unsigned long long) histogram_quantile(&t.stages[STAGE_INFERENCE], 0.5),
                         (unsigned long long) histogram_quantile(&t.stages[STAGE_INFERENCE], 0.99),
                         (unsigned long long) histogram_quantile(&t.stages[STAGE_OVERHEAD], 0.99),
                         d->server->n_clients, camera_state_name(d->camera_state));
        }
        notify_watchdog(d);
        return 0;
}

static void help(void) {
        printf("Usage: cvoptd [OPTIONS]\n\n"
               "Classifies camera frames with a .cvm model and publishes the results on a Unix socket.\n\n"
               "  -c, --config FILE   configuration file (default " CONF_DEFAULT_PATH ";\n"
               "                      drop-ins are read from conf.d/ beside it)\n"
               "      --check-config  parse the configuration, print the effective values, exit\n"
               "  -v, --verbose       log debug messages\n"
               "  -h, --help          show this help\n"
               "      --version       show the version\n");
}

static void daemon_done(Daemon *d) {
        pipeline_free(d->pipeline);
        server_free(d->server);
        sd_event_source_disable_unref(d->timer);
        sd_event_unref(d->event);
        json_decref(d->model_info);
        json_decref(d->pending_model_info);
        json_decref(d->last_result);
        free(d->model_path);
        free(d->camera_description);
        free(d->camera_reason);
        telemetry_done(&d->telemetry);
        conf_done(&d->conf);
}

static int daemon_run(Daemon *d) {
        Inference *inf = NULL;
        Source *src = NULL;
        int r;

        r = inference_load(d->conf.model_path, &d->conf, &inf);
        if (r < 0)
                return log_error("cannot load model: %s", cvopt_error_detail()), r;
        snprintf(d->model_id, sizeof d->model_id, "%s", inf->model->id);
        snprintf(d->backend, sizeof d->backend, "%s", inf->backend);
        d->model_path = strdup(inf->path);
        d->model_info = model_info_json(inf);
        log_info("model %s (%s): %u classes, input %ux%u %s, backend %s", d->model_id, d->model_path, inf->n_classes,
                 inf->model->input.width, inf->model->input.height, cvopt_color_name(inf->model->input.color), d->backend);

        if (inf->backend_note[0])
                log_warning("backend: %s", inf->backend_note);
        r = source_new(&d->conf, &src);
        if (r < 0) {
                inference_free(inf);
                return log_error("camera: %s", cvopt_error_detail()), r;
        }
        r = pipeline_new(&d->conf, &d->telemetry, src, inf, &d->pipeline);
        if (r < 0) {
                source_free(src);
                inference_free(inf);
                return log_error("pipeline: %s", strerror(-r)), r;
        }

        r = sd_event_default(&d->event);
        if (r < 0)
                return log_error("sd-event: %s", strerror(-r)), r;
        if (sd_event_add_signal(d->event, NULL, SIGTERM, on_signal, d) < 0 ||
            sd_event_add_signal(d->event, NULL, SIGINT, on_signal, d) < 0 ||
            sd_event_add_signal(d->event, NULL, SIGHUP, on_signal, d) < 0)
                return log_error("cannot watch signals"), -EIO;
        r = server_new(&d->conf, d->event, protocol_handle_line, protocol_handle_oversize, d, &d->server);
        if (r < 0)
                return log_error("socket %s: %s", d->conf.server_socket, strerror(-r)), r;
        r = sd_event_add_io(d->event, NULL, d->pipeline->outbox_fd, EPOLLIN, on_outbox, d);
        if (r < 0)
                return r;
        if (sd_watchdog_enabled(0, &d->watchdog_usec) <= 0)
                d->watchdog_usec = 0;
        d->fps_last_usec = d->log_last_usec = now_usec(CLOCK_MONOTONIC);
        r = sd_event_add_time_relative(d->event, &d->timer, CLOCK_MONOTONIC, 0, 0, on_timer, d);
        if (r < 0)
                return r;
        sd_event_source_set_enabled(d->timer, SD_EVENT_ON);

        r = pipeline_start(d->pipeline);
        if (r < 0)
                return log_error("cannot start the worker: %s", strerror(-r)), r;
        log_info("listening on %s", d->conf.server_socket);
        r = sd_event_loop(d->event);
        /* Stop the worker before the server, so nothing is published into a
         * half-torn-down client list. */
        pipeline_stop(d->pipeline);
        return r;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "check-config", no_argument, NULL, 'C' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        const char *config_path = CONF_DEFAULT_PATH;
        bool check = false, explicit_config = false;
        Daemon d = { 0 };
        int opt, r;

        log_setup();
        while ((opt = getopt_long(argc, argv, "c:vh", options, NULL)) >= 0) {
                switch (opt) {
                case 'c': config_path = optarg; explicit_config = true; break;
                case 'C': check = true; break;
                case 'v': log_set_max_level(LOG_DEBUG); break;
                case 'h': help(); return 0;
                case 'V': printf("cvoptd %s\n", PROJECT_VERSION); return 0;
                default: return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "cvoptd: unexpected argument \"%s\"\n", argv[optind]);
                return 2;
        }

        d.start_usec = now_usec(CLOCK_MONOTONIC);
        telemetry_init(&d.telemetry);
        if (conf_init(&d.conf) < 0)
                return 1;
        r = conf_load(&d.conf, config_path, explicit_config);
        if (r < 0) {
                log_error("%s", cvopt_error_detail());
                daemon_done(&d);
                return 1;
        }
        if (check) {
                conf_dump(&d.conf, stdout);
                daemon_done(&d);
                return 0;
        }
        d.config_path = config_path;

        /* Signals arrive through sd-event's signalfd: block them in every
         * thread (the worker inherits the mask). */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = daemon_run(&d);
        daemon_done(&d);
        return r < 0 ? 1 : 0;
}

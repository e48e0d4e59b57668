/* SPDX-License-Identifier: MIT */
/* The protocol of docs/protocol.md: one JSON request per line, one
 * response per request, events for subscribers. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvopt/errors.h"
#include "cvopt/image.h"
#include "daemon.h"
#include "log.h"

#define PROTOCOL_VERSION 1

static void send_json(Client *c, json_t *msg) {
        char *text = json_dumps(msg, JSON_COMPACT);
        if (text) {
                Message *m = message_new(text, strlen(text));
                client_send_response(c, m);
                message_unref(m);
                free(text);
        }
        json_decref(msg);
}

void protocol_send_result(Client *c, json_t *request_id, json_t *result) {
        json_t *msg = json_pack("{s:i,s:b,s:o}", "v", PROTOCOL_VERSION, "ok", 1, "result", result ? result : json_null());
        if (request_id)
                json_object_set(msg, "id", request_id);
        send_json(c, msg);
}

void protocol_send_error(Client *c, json_t *request_id, const char *code, const char *format, ...) {
        char buf[1024];
        va_list ap;
        va_start(ap, format);
        vsnprintf(buf, sizeof buf, format, ap);
        va_end(ap);
        json_t *msg = json_pack("{s:i,s:b,s:{s:s,s:s}}", "v", PROTOCOL_VERSION, "ok", 0, "error", "code", code,
                                "message", buf);
        json_object_set(msg, "id", request_id ? request_id : json_null());
        send_json(c, msg);
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
 * U+10FFFF. jansson checks too, but its message would not say which byte. */
static bool utf8_valid(const unsigned char *s, size_t len, size_t *ret_bad) {
        size_t i = 0;
        while (i < len) {
                unsigned char b = s[i];
                size_t n;
                uint32_t cp, min;
                if (b < 0x80) {
                        i++;
                        continue;
                } else if ((b & 0xe0) == 0xc0)
                        n = 1, cp = b & 0x1f, min = 0x80;
                else if ((b & 0xf0) == 0xe0)
                        n = 2, cp = b & 0x0f, min = 0x800;
                else if ((b & 0xf8) == 0xf0)
                        n = 3, cp = b & 0x07, min = 0x10000;
                else
                        goto bad;
                for (size_t k = 1; k <= n; k++) {
                        if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
                                goto bad;
                        cp = (cp << 6) | (s[i + k] & 0x3f);
                }
                if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        goto bad;
                i += n + 1;
        }
        return true;
bad:
        *ret_bad = i;
        return false;
}

static int base64_value(char ch) {
        if (ch >= 'A' && ch <= 'Z')
                return ch - 'A';
        if (ch >= 'a' && ch <= 'z')
                return ch - 'a' + 26;
        if (ch >= '0' && ch <= '9')
                return ch - '0' + 52;
        if (ch == '+' || ch == '-')
                return 62;
        if (ch == '/' || ch == '_')
                return 63;
        return -1;
}

/* Standard or URL-safe base64, padding optional. */
static int base64_decode(const char *in, size_t len, uint8_t **ret, size_t *ret_size) {
        while (len > 0 && in[len - 1] == '=')
                len--;
        if (len % 4 == 1)
                return -EINVAL;
        uint8_t *out = malloc(len / 4 * 3 + 3);
        if (!out)
                return -ENOMEM;
        size_t n = 0;
        uint32_t acc = 0;
        unsigned bits = 0;
        for (size_t i = 0; i < len; i++) {
                int v = base64_value(in[i]);
                if (v < 0) {
                        free(out);
                        return -EINVAL;
                }
                acc = (acc << 6) | (uint32_t) v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[n++] = (uint8_t) (acc >> bits);
                }
        }
        *ret = out;
        *ret_size = n;
        return 0;
}

static void cmd_classify(Daemon *d, Client *c, json_t *id, json_t *req) {
        json_t *image = json_object_get(req, "image");
        _cleanup_free_ uint8_t *bytes = NULL;
        size_t size;
        CvoptImage *img = NULL;

        if (!json_is_string(image))
                return protocol_send_error(c, id, "bad-request", "classify needs \"image\": base64 of an image file");
        if (base64_decode(json_string_value(image), json_string_length(image), &bytes, &size) < 0)
                return protocol_send_error(c, id, "bad-request", "\"image\" is not valid base64");
        int r = cvopt_image_decode(bytes, size, &img);
        if (r < 0)
                return protocol_send_error(c, id, "bad-request", "cannot decode image: %s", cvopt_error_detail());
        Job *job = calloc(1, sizeof *job);
        if (!job) {
                cvopt_image_free(img);
                return protocol_send_error(c, id, "failed", "out of memory");
        }
        job->kind = JOB_CLASSIFY;
        job->image = img;
        job->client_id = c->id;
        job->request_id = json_incref(id);
        pipeline_submit(d->pipeline, job);
}

static void cmd_reload(Daemon *d, Client *c, json_t *id, json_t *req) {
        json_t *path = json_object_get(req, "path");
        if (path && !json_is_string(path))
                return protocol_send_error(c, id, "bad-request", "\"path\" must be a string");
        if (d->reloading)
                return protocol_send_error(c, id, "unavailable", "a reload is already in progress");
        int r = daemon_reload(d, path ? json_string_value(path) : NULL, c->id, id);
        if (r < 0)
                return protocol_send_error(c, id, "failed", "%s", cvopt_error_detail());
        /* The reply comes from the worker once the new model serves. */
}

typedef struct Command {
        const char *name;
        bool admin;
        void (*run)(Daemon *d, Client *c, json_t *id, json_t *req);
} Command;

static void cmd_status(Daemon *d, Client *c, json_t *id, json_t *req) {
        (void) req;
        protocol_send_result(c, id, daemon_status_json(d));
}

static void cmd_stats(Daemon *d, Client *c, json_t *id, json_t *req) {
        (void) req;
        protocol_send_result(c, id, daemon_stats_json(d));
}

static void cmd_metrics(Daemon *d, Client *c, json_t *id, json_t *req) {
        (void) req;
        _cleanup_free_ char *text = daemon_metrics_text(d);
        if (!text)
                return protocol_send_error(c, id, "failed", "out of memory");
        protocol_send_result(c, id, json_pack("{s:s}", "text", text));
}

static void cmd_model(Daemon *d, Client *c, json_t *id, json_t *req) {
        (void) req;
        protocol_send_result(c, id, json_deep_copy(d->model_info));
}

static void cmd_last(Daemon *d, Client *c, json_t *id, json_t *req) {
        (void) req;
        json_t *last = NULL;
        if (d->last_result) {
                last = json_copy(d->last_result);
                json_object_del(last, "event");
        }
        protocol_send_result(c, id, last);
}

static void cmd_subscribe(Daemon *d, Client *c, json_t *id, json_t *req) {
        (void) d;
        (void) req;
        c->subscribed = true;
        protocol_send_result(c, id, json_pack("{s:b}", "subscribed", 1));
}

static void cmd_unsubscribe(Daemon *d, Client *c, json_t *id, json_t *req) {
        (void) d;
        (void) req;
        c->subscribed = false;
        protocol_send_result(c, id, json_pack("{s:b}", "subscribed", 0));
}

static void cmd_pause(Daemon *d, Client *c, json_t *id, json_t *req) {
        (void) req;
        pipeline_set_paused(d->pipeline, true);
        log_info("paused by uid %u", (unsigned) c->cred.uid);
        notify_status(d);
        protocol_send_result(c, id, json_pack("{s:b}", "paused", 1));
}

static void cmd_resume(Daemon *d, Client *c, json_t *id, json_t *req) {
        (void) req;
        pipeline_set_paused(d->pipeline, false);
        log_info("resumed by uid %u", (unsigned) c->cred.uid);
        notify_status(d);
        protocol_send_result(c, id, json_pack("{s:b}", "paused", 0));
}

static const Command commands[] = {
        { "status", false, cmd_status },       { "stats", false, cmd_stats },
        { "metrics", false, cmd_metrics },     { "model", false, cmd_model },
        { "last", false, cmd_last },           { "subscribe", false, cmd_subscribe },
        { "unsubscribe", false, cmd_unsubscribe }, { "classify", false, cmd_classify },
        { "reload", true, cmd_reload },        { "pause", true, cmd_pause },
        { "resume", true, cmd_resume },
};

int protocol_parse_request(const char *line, size_t len, json_t **ret_request, const char **ret_code,
                           char *message, size_t message_size) {
        json_error_t err;
        size_t bad;

        if (!utf8_valid((const unsigned char *) line, len, &bad)) {
                *ret_code = "bad-encoding";
                snprintf(message, message_size, "request is not valid UTF-8 (byte %zu)", bad);
                return -EINVAL;
        }
        json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
        if (!req) {
                *ret_code = "parse-error";
                snprintf(message, message_size, "invalid JSON at column %d: %s", err.column, err.text);
                return -EINVAL;
        }
        json_t *v = json_object_get(req, "v");
        if (!json_is_object(req)) {
                *ret_code = "bad-request";
                snprintf(message, message_size, "request must be a JSON object");
        } else if (v && !(json_is_integer(v) && json_integer_value(v) == PROTOCOL_VERSION)) {
                *ret_code = "bad-version";
                snprintf(message, message_size, "this daemon speaks protocol version %d", PROTOCOL_VERSION);
        } else if (!json_is_string(json_object_get(req, "cmd"))) {
                *ret_code = "bad-request";
                snprintf(message, message_size, "request needs \"cmd\", a string");
        } else {
                *ret_request = req;
                return 0;
        }
        /* The id is echoed even in an error, when the request had one. */
        *ret_request = json_is_object(req) ? req : NULL;
        if (!*ret_request)
                json_decref(req);
        return -EINVAL;
}

void protocol_handle_line(void *userdata, Client *c, const char *line, size_t len) {
        Daemon *d = userdata;
        json_t *req = NULL;
        const char *code;
        char message[512];

        if (protocol_parse_request(line, len, &req, &code, message, sizeof message) < 0) {
                protocol_send_error(c, req ? json_object_get(req, "id") : NULL, code, "%s", message);
                json_decref(req);
                return;
        }
        json_t *id = json_object_get(req, "id");
        const char *cmd = json_string_value(json_object_get(req, "cmd"));
        const Command *found = NULL;
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(commands[i].name, cmd))
                        found = &commands[i];
        if (!found) {
                /* Quote at most 64 bytes of the unknown name back. */
                protocol_send_error(c, id, "unknown-command", "unknown command \"%.64s\"", cmd);
        } else if (found->admin && !c->admin) {
                log_notice("refused %s from uid %u pid %d: not an admin", found->name, (unsigned) c->cred.uid,
                           (int) c->cred.pid);
                protocol_send_error(c, id, "permission-denied",
                                    "%s is an admin command; uid %u is not in [server] admin_uids/admin_groups",
                                    found->name, (unsigned) c->cred.uid);
        } else
                found->run(d, c, id, req);
        json_decref(req);
}

int protocol_decode_base64(const char *in, size_t len, uint8_t **ret, size_t *ret_size) {
        return base64_decode(in, len, ret, ret_size);
}

void protocol_handle_oversize(void *userdata, Client *c) {
        Daemon *d = userdata;
        protocol_send_error(c, NULL, "too-large", "request longer than %u bytes; closing the connection",
                            d->conf.max_request_bytes);
}

json_t *model_info_json(const Inference *inf) {
        const CvoptModel *m = inf->model;
        json_t *labels = json_array();
        for (uint32_t i = 0; i < m->n_labels; i++)
                json_array_append_new(labels, json_string(m->labels[i] ? m->labels[i] : ""));
        json_t *prov = m->provenance_json ? json_loads(m->provenance_json, 0, NULL) : NULL;
        const CvoptInputSpec *s = &m->input;
        return json_pack("{s:s,s:s,s:I,s:o,s:{s:I,s:I,s:s,s:s,s:[f,f,f],s:[f,f,f]},s:o,s:s}", "id", m->id, "path",
                         inf->path, "classes", (json_int_t) inf->n_classes, "labels", labels, "input", "width",
                         (json_int_t) s->width, "height", (json_int_t) s->height, "color",
                         strempty(cvopt_color_name(s->color)), "resize", strempty(cvopt_resize_name(s->resize)),
                         "mean", (double) s->mean[0], (double) s->mean[1], (double) s->mean[2], "std",
                         (double) s->std[0], (double) s->std[1], (double) s->std[2], "provenance",
                         prov ? prov : json_null(), "backend", inf->backend);
}

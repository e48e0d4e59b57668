/* SPDX-License-Identifier: MIT */
/* Human-readable rendering of the daemon's status, stats, model info and
 * results. Every member is read defensively: a daemon of a later protocol
 * revision may add or omit members, and a missing one prints as "-"
 * rather than crashing the tool. */

#include <inttypes.h>
#include <string.h>

#include "cvoptctl.h"

static const char *str(json_t *o, const char *key) {
        const char *s = json_string_value(json_object_get(o, key));
        return s ? s : "-";
}

static json_int_t integer(json_t *o, const char *key) {
        return json_integer_value(json_object_get(o, key));
}

static double number(json_t *o, const char *key) {
        return json_number_value(json_object_get(o, key));
}

void format_duration_usec(char *buf, size_t size, uint64_t usec) {
        uint64_t s = usec / 1000000u;
        if (s >= 86400u)
                snprintf(buf, size, "%" PRIu64 "d %02" PRIu64 "h %02" PRIu64 "m", s / 86400u, s / 3600u % 24u,
                         s / 60u % 60u);
        else if (s >= 3600u)
                snprintf(buf, size, "%" PRIu64 "h %02" PRIu64 "m %02" PRIu64 "s", s / 3600u, s / 60u % 60u, s % 60u);
        else if (s >= 60u)
                snprintf(buf, size, "%" PRIu64 "m %02" PRIu64 "s", s / 60u, s % 60u);
        else
                snprintf(buf, size, "%.1fs", (double) usec / 1e6);
}

void format_latency_usec(char *buf, size_t size, json_int_t usec) {
        if (usec < 1000)
                snprintf(buf, size, "%lld us", (long long) usec);
        else if (usec < 1000000)
                snprintf(buf, size, "%.2f ms", (double) usec / 1e3);
        else
                snprintf(buf, size, "%.2f s", (double) usec / 1e6);
}

static void format_bytes(char *buf, size_t size, json_int_t bytes) {
        if (bytes >= 1 << 20)
                snprintf(buf, size, "%.1f MiB", (double) bytes / (1 << 20));
        else if (bytes >= 1 << 10)
                snprintf(buf, size, "%.1f KiB", (double) bytes / (1 << 10));
        else
                snprintf(buf, size, "%lld B", (long long) bytes);
}

static void print_camera(FILE *f, json_t *camera) {
        const char *desc = json_string_value(json_object_get(camera, "description"));
        const char *reason = json_string_value(json_object_get(camera, "reason"));
        fprintf(f, "camera:   %s, %s, %lld reconnects\n", str(camera, "device"), str(camera, "state"),
                (long long) integer(camera, "reconnects"));
        /* What the camera delivers, or why it does not, on its own line:
         * together they would not fit 80 columns. */
        if (reason)
                fprintf(f, "          %s\n", reason);
        else if (desc)
                fprintf(f, "          %s\n", desc);
}

void print_status(FILE *f, json_t *s) {
        char up[64], p50[32], p99[32], ip50[32], ip99[32];
        json_t *model = json_object_get(s, "model");
        json_t *lat = json_object_get(s, "latency_usec");
        json_t *total = json_object_get(lat, "total"), *inference = json_object_get(lat, "inference");
        json_t *last = json_object_get(s, "last");

        format_duration_usec(up, sizeof up, (uint64_t) integer(s, "uptime_usec"));
        fprintf(f, "cvoptd %s (pid %lld): %s, up %s\n", str(s, "version"), (long long) integer(s, "pid"),
                str(s, "state"), up);
        print_camera(f, json_object_get(s, "camera"));
        fprintf(f, "model:    %s (%s)\n", str(model, "id"), str(model, "path"));
        fprintf(f, "backend:  %s\n", str(s, "backend"));
        fprintf(f, "fps:      %.1f%s\n", number(s, "fps"), json_is_true(json_object_get(s, "paused")) ? " (paused)" : "");
        format_latency_usec(p50, sizeof p50, integer(total, "p50"));
        format_latency_usec(p99, sizeof p99, integer(total, "p99"));
        fprintf(f, "latency:  p50 %s, p99 %s", p50, p99);
        if (inference) {
                format_latency_usec(ip50, sizeof ip50, integer(inference, "p50"));
                format_latency_usec(ip99, sizeof ip99, integer(inference, "p99"));
                fprintf(f, " (inference p50 %s, p99 %s)", ip50, ip99);
        }
        fprintf(f, "\nclients:  %lld\n", (long long) integer(s, "clients"));
        if (json_is_object(last)) {
                fprintf(f, "last:     ");
                print_result_line(f, last);
        } else
                fprintf(f, "last:     none yet\n");
}

void print_stats(FILE *f, json_t *s) {
        char buf[64], b50[32], b90[32], b99[32];
        json_t *frames = json_object_get(s, "frames");
        json_t *camera = json_object_get(s, "camera");
        json_t *clients = json_object_get(s, "clients");
        json_t *model = json_object_get(s, "model");
        json_t *lat = json_object_get(s, "latency_usec");

        format_duration_usec(buf, sizeof buf, (uint64_t) integer(s, "uptime_usec"));
        fprintf(f, "uptime:      %s\n", buf);
        fprintf(f, "frames:      %lld captured, %lld classified, %lld dropped, %lld errors\n",
                (long long) integer(frames, "captured"), (long long) integer(frames, "classified"),
                (long long) integer(frames, "dropped"), (long long) integer(frames, "errors"));
        fprintf(f, "results:     %lld published, %lld classify requests\n", (long long) integer(s, "results_published"),
                (long long) integer(s, "classify_requests"));
        fprintf(f, "fps:         %.1f\n", number(s, "fps"));
        format_latency_usec(buf, sizeof buf, integer(s, "cpu_usec_per_frame"));
        fprintf(f, "cpu/frame:   %s\n", buf);
        format_bytes(buf, sizeof buf, integer(s, "rss_bytes"));
        fprintf(f, "rss:         %s\n", buf);
        fprintf(f, "backend:     %s, %lld fallbacks\n", str(s, "backend"), (long long) integer(s, "fallbacks"));
        fprintf(f, "camera:      %s, %lld reconnects, %lld lost\n", str(camera, "state"),
                (long long) integer(camera, "reconnects"), (long long) integer(camera, "lost_events"));
        fprintf(f, "model:       %s, %lld reloads, %lld failed\n", str(model, "id"), (long long) integer(model, "reloads"),
                (long long) integer(model, "reload_failures"));
        fprintf(f, "\n%-14s %10s %10s %10s %10s\n", "latency", "p50", "p90", "p99", "count");
        const char *stage;
        json_t *h;
        json_object_foreach(lat, stage, h) {
                format_latency_usec(b50, sizeof b50, integer(h, "p50"));
                format_latency_usec(b90, sizeof b90, integer(h, "p90"));
                format_latency_usec(b99, sizeof b99, integer(h, "p99"));
                fprintf(f, "%-14s %10s %10s %10s %10lld\n", stage, b50, b90, b99, (long long) integer(h, "count"));
        }
        fprintf(f, "\nclients:     %lld connected, %lld subscribed, max %lld, %lld refused\n",
                (long long) integer(clients, "connected"), (long long) integer(clients, "subscribers"),
                (long long) integer(clients, "max"), (long long) integer(clients, "refused"));
        json_t *list = json_object_get(clients, "list");
        if (json_array_size(list) > 0) {
                fprintf(f, "%8s %8s %8s %5s %5s %10s %10s %7s\n", "id", "uid", "pid", "sub", "admin", "sent", "dropped",
                        "queued");
                size_t i;
                json_t *c;
                json_array_foreach(list, i, c)
                        fprintf(f, "%8lld %8lld %8lld %5s %5s %10lld %10lld %7lld\n", (long long) integer(c, "id"),
                                (long long) integer(c, "uid"), (long long) integer(c, "pid"),
                                json_is_true(json_object_get(c, "subscribed")) ? "yes" : "no",
                                json_is_true(json_object_get(c, "admin")) ? "yes" : "no", (long long) integer(c, "sent"),
                                (long long) integer(c, "dropped"), (long long) integer(c, "queued"));
        }
}

/* Provenance is whatever the optimizer stored; show its scalars, and the
 * scalars of objects one level down ("after.top1: 0.89"), one per line,
 * which covers the optimizer's summary without dumping whole reports. */
static void print_provenance(FILE *f, json_t *prov, const char *prefix, int depth) {
        const char *key;
        json_t *v;
        json_object_foreach(prov, key, v) {
                if (json_is_object(v)) {
                        if (depth == 0) {
                                char p[128];
                                snprintf(p, sizeof p, "%s%s.", prefix, key);
                                print_provenance(f, v, p, depth + 1);
                        }
                        continue;
                }
                if (json_is_array(v)) {
                        fprintf(f, "  %s%s: [%zu items]\n", prefix, key, json_array_size(v));
                        continue;
                }
                /* Six digits: what a person reads of an accuracy or a ratio. */
                char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(6));
                fprintf(f, "  %s%s: %s\n", prefix, key, text ? text : "?");
                free(text);
        }
}

void print_model(FILE *f, json_t *m) {
        json_t *input = json_object_get(m, "input");
        json_t *labels = json_object_get(m, "labels");
        json_t *mean = json_object_get(input, "mean"), *std = json_object_get(input, "std");
        json_t *prov = json_object_get(m, "provenance");

        fprintf(f, "model:    %s\n", str(m, "id"));
        fprintf(f, "path:     %s\n", str(m, "path"));
        if (json_object_get(m, "backend"))
                fprintf(f, "backend:  %s\n", str(m, "backend"));
        fprintf(f, "input:    %lldx%lld %s, resize %s, mean [%g %g %g], std [%g %g %g]\n",
                (long long) integer(input, "width"), (long long) integer(input, "height"), str(input, "color"),
                str(input, "resize"), json_number_value(json_array_get(mean, 0)),
                json_number_value(json_array_get(mean, 1)), json_number_value(json_array_get(mean, 2)),
                json_number_value(json_array_get(std, 0)), json_number_value(json_array_get(std, 1)),
                json_number_value(json_array_get(std, 2)));
        fprintf(f, "labels:   %zu\n", json_array_size(labels));
        size_t i;
        json_t *l;
        json_array_foreach(labels, i, l)
                fprintf(f, "  %3zu  %s\n", i, json_string_value(l) ? json_string_value(l) : "");
        if (json_is_object(prov) && json_object_size(prov) > 0) {
                fprintf(f, "provenance:\n");
                print_provenance(f, prov, "", 0);
        } else
                fprintf(f, "provenance: none recorded\n");
}

void print_result_line(FILE *f, json_t *r) {
        char lat[32];
        json_t *label = json_object_get(r, "label");
        fprintf(f, "#%lld %s %.3f", (long long) integer(r, "seq"), json_is_string(label) ? json_string_value(label) : "(none)",
                number(r, "score"));
        if (json_object_get(r, "class"))
                fprintf(f, " class=%lld", (long long) integer(r, "class"));
        json_t *truth = json_object_get(r, "truth");
        if (json_is_integer(truth))
                fprintf(f, " truth=%lld", (long long) json_integer_value(truth));
        json_t *total = json_object_get(json_object_get(r, "latency_usec"), "total");
        json_t *inference = json_object_get(json_object_get(r, "latency_usec"), "inference");
        if (json_is_integer(total) || json_is_integer(inference)) {
                format_latency_usec(lat, sizeof lat, json_integer_value(total ? total : inference));
                fprintf(f, " %s=%s", total ? "latency" : "inference", lat);
        }
        json_t *top = json_object_get(r, "top");
        if (json_array_size(top) > 1) {
                fprintf(f, " top:");
                size_t i;
                json_t *t;
                json_array_foreach(top, i, t) {
                        const char *tl = json_string_value(json_object_get(t, "label"));
                        fprintf(f, "%s %s %.3f", i ? "," : "", tl ? tl : "?", number(t, "score"));
                }
        }
        fputc('\n', f);
}

void print_event_line(FILE *f, json_t *e) {
        const char *kind = str(e, "event");
        if (strcmp(kind, "camera") == 0) {
                const char *reason = json_string_value(json_object_get(e, "reason"));
                fprintf(f, "# camera %s%s%s\n", str(e, "state"), reason ? ": " : "", reason ? reason : "");
        } else if (strcmp(kind, "model") == 0)
                fprintf(f, "# model %s now serving (was %s)\n", str(e, "id"), str(e, "previous"));
        else if (strcmp(kind, "dropped") == 0)
                fprintf(f, "# %lld results lost (reading too slowly), %lld in all\n", (long long) integer(e, "count"),
                        (long long) integer(e, "total"));
        else {
                char *text = json_dumps(e, JSON_COMPACT);
                fprintf(f, "# %s\n", text ? text : kind);
                free(text);
        }
}

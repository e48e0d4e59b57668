/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "cvopt/errors.h"
#include "macro.h"

static const char *const camera_format_names[_CAMERA_FORMAT_MAX] = {
        [CAMERA_FORMAT_AUTO] = "auto",   [CAMERA_FORMAT_YUYV] = "yuyv",   [CAMERA_FORMAT_MJPEG] = "mjpeg",
        [CAMERA_FORMAT_NV12] = "nv12",   [CAMERA_FORMAT_GREY] = "grey",   [CAMERA_FORMAT_RGB24] = "rgb24",
};

const char *camera_format_name(CameraFormat f) {
        return f < _CAMERA_FORMAT_MAX ? camera_format_names[f] : "?";
}

int camera_format_from_name(const char *name) {
        for (int i = 0; i < _CAMERA_FORMAT_MAX; i++)
                if (strcasecmp(name, camera_format_names[i]) == 0)
                        return i;
        return -EINVAL;
}

int conf_init(Conf *c) {
        *c = (Conf) {
                .camera_width = 640,
                .camera_height = 480,
                .camera_fps = 30,
                .camera_format = CAMERA_FORMAT_AUTO,
                /* Four buffers: one being filled, one being read by the
                 * worker, two in the queue so a slow frame never starves
                 * the driver. uStreamer and most V4L2 apps use 4-5. */
                .camera_buffers = 4,
                /* A camera that gives no frame for 2 s at >= 1 fps is stuck. */
                .camera_timeout_usec = 2000000,
                /* Retries back off 100 ms, 200 ms, ... up to this, so a
                 * replugged camera is found again within ~1 s. */
                .camera_retry_max_usec = 1000000,
                .threads = 0,
                .top_k = 5,
                .min_score = 0.0,
                .server_mode = 0660,
                .max_clients = 64,
                /* 1 MiB holds a base64 JPEG/PNG for classify (a 640x480
                 * photo is ~100 KiB) while keeping a hostile client's
                 * buffer small. */
                .max_request_bytes = 1 << 20,
                /* 256 results is ~8 s at 30 fps of slack for a subscriber
                 * that reads in bursts, at ~100 KiB worst case memory. */
                .send_queue_messages = 256,
                .status_interval_usec = 1000000,
                .log_interval_usec = 0,
        };
        c->camera_device = strdup("/dev/video0");
        c->model_path = strdup("/var/lib/cvoptd/model.cvm");
        c->inference_backend = strdup("auto");
        c->opencl_device = strdup("");
        c->server_socket = strdup("/run/cvoptd/cvoptd.sock");
        if (!c->camera_device || !c->model_path || !c->inference_backend || !c->opencl_device ||
            !c->server_socket) {
                conf_done(c);
                return -ENOMEM;
        }
        return 0;
}

void conf_done(Conf *c) {
        free(c->camera_device);
        free(c->model_path);
        free(c->inference_backend);
        free(c->opencl_device);
        free(c->server_socket);
        c->camera_device = c->model_path = c->inference_backend = c->opencl_device = c->server_socket = NULL;
}

/* ---- value parsers ---- */

static int parse_u64(const char *v, uint64_t min, uint64_t max, int base, uint64_t *ret) {
        char *end;
        if (!*v || *v == '-' || *v == '+')
                return -EINVAL;
        errno = 0;
        unsigned long long x = strtoull(v, &end, base);
        if (errno || *end || end == v)
                return -EINVAL;
        if (x < min || x > max)
                return -ERANGE;
        *ret = x;
        return 0;
}

static int parse_string(const char *v, char **field) {
        char *s = strdup(v);
        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

static int parse_uid(const char *v, uid_t *ret) {
        uint64_t x;
        if (parse_u64(v, 0, UINT32_MAX - 1, 10, &x) == 0) {
                *ret = (uid_t) x;
                return 0;
        }
        struct passwd *pw = getpwnam(v);
        if (!pw)
                return -ESRCH;
        *ret = pw->pw_uid;
        return 0;
}

static int parse_gid(const char *v, gid_t *ret) {
        uint64_t x;
        if (parse_u64(v, 0, UINT32_MAX - 1, 10, &x) == 0) {
                *ret = (gid_t) x;
                return 0;
        }
        struct group *gr = getgrnam(v);
        if (!gr)
                return -ESRCH;
        *ret = gr->gr_gid;
        return 0;
}

/* Lists are separated by spaces or commas; an empty value clears the list
 * (so a drop-in can remove what the main file granted). */
static int parse_id_list(const char *v, bool groups, uint32_t *ids, uint32_t *n) {
        _cleanup_free_ char *copy = strdup(v);
        uint32_t count = 0;
        uint32_t parsed[CONF_MAX_ADMIN_IDS];
        char *save = NULL;
        if (!copy)
                return -ENOMEM;
        for (char *tok = strtok_r(copy, " ,\t", &save); tok; tok = strtok_r(NULL, " ,\t", &save)) {
                int r;
                if (count >= CONF_MAX_ADMIN_IDS)
                        return -E2BIG;
                if (groups) {
                        gid_t g;
                        r = parse_gid(tok, &g);
                        parsed[count] = g;
                } else {
                        uid_t u;
                        r = parse_uid(tok, &u);
                        parsed[count] = u;
                }
                if (r < 0)
                        return r;
                count++;
        }
        memcpy(ids, parsed, count * sizeof(uint32_t));
        *n = count;
        return 0;
}

static int parse_msec(const char *v, uint64_t min_msec, uint64_t max_msec, uint64_t *ret_usec) {
        uint64_t x;
        int r = parse_u64(v, min_msec, max_msec, 10, &x);
        if (r < 0)
                return r;
        *ret_usec = x * 1000;
        return 0;
}

/* ---- key table ---- */

typedef struct ParseState {
        Conf *conf;
        const char *path;
        unsigned line;
        bool line_too_long;
        FILE *file;
        int error;
} ParseState;

static int key_set(Conf *c, const char *section, const char *key, const char *v, const char **ret_hint) {
        uint64_t x;
        int r;

#define KEY(s, k) (streq(section, s) && streq(key, k))
#define RANGE(lo, hi, field, hint)                                 \
        do {                                                       \
                *ret_hint = hint;                                  \
                r = parse_u64(v, lo, hi, 10, &x);                  \
                if (r < 0)                                         \
                        return r;                                  \
                field = x;                                         \
                return 0;                                          \
        } while (0)

        if (KEY("camera", "device")) {
                *ret_hint = "a device node such as /dev/video0, or replay:DATASET[,fps=N][,loop]";
                if (!*v)
                        return -EINVAL;
                return parse_string(v, &c->camera_device);
        }
        if (KEY("camera", "width"))
                RANGE(1, 16384, c->camera_width, "an integer 1..16384");
        if (KEY("camera", "height"))
                RANGE(1, 16384, c->camera_height, "an integer 1..16384");
        if (KEY("camera", "fps"))
                RANGE(1, 1000, c->camera_fps, "an integer 1..1000");
        if (KEY("camera", "buffers"))
                RANGE(2, 32, c->camera_buffers, "an integer 2..32");
        if (KEY("camera", "format")) {
                *ret_hint = "one of auto, yuyv, mjpeg, nv12, grey, rgb24";
                r = camera_format_from_name(v);
                if (r < 0)
                        return r;
                c->camera_format = r;
                return 0;
        }
        if (KEY("camera", "timeout_msec")) {
                *ret_hint = "milliseconds, 100..600000";
                return parse_msec(v, 100, 600000, &c->camera_timeout_usec);
        }
        if (KEY("camera", "retry_max_msec")) {
                *ret_hint = "milliseconds, 100..600000";
                return parse_msec(v, 100, 600000, &c->camera_retry_max_usec);
        }
        if (KEY("model", "path")) {
                *ret_hint = "a path to a .cvm file";
                if (!*v)
                        return -EINVAL;
                return parse_string(v, &c->model_path);
        }
        if (KEY("inference", "backend")) {
                *ret_hint = "one of auto, opencl, cpu";
                if (!streq(v, "auto") && !streq(v, "opencl") && !streq(v, "cpu"))
                        return -EINVAL;
                return parse_string(v, &c->inference_backend);
        }
        if (KEY("inference", "opencl_device")) {
                *ret_hint = "a device name substring, or empty for the first GPU";
                return parse_string(v, &c->opencl_device);
        }
        if (KEY("inference", "threads"))
                RANGE(0, 256, c->threads, "an integer 0..256 (0 or 1: one thread per inference)");
        if (KEY("inference", "top_k"))
                RANGE(1, 100, c->top_k, "an integer 1..100");
        if (KEY("inference", "min_score")) {
                char *end;
                *ret_hint = "a number 0..1";
                errno = 0;
                double d = strtod(v, &end);
                if (errno || *end || end == v || !isfinite(d))
                        return -EINVAL;
                if (d < 0 || d > 1)
                        return -ERANGE;
                c->min_score = d;
                return 0;
        }
        if (KEY("server", "socket")) {
                *ret_hint = "an absolute path shorter than 108 bytes";
                if (v[0] != '/' || strlen(v) >= 108)
                        return -EINVAL;
                return parse_string(v, &c->server_socket);
        }
        if (KEY("server", "mode")) {
                *ret_hint = "an octal file mode such as 0660";
                r = parse_u64(v, 0, 0777, 8, &x);
                if (r < 0)
                        return r;
                c->server_mode = (mode_t) x;
                return 0;
        }
        if (KEY("server", "group")) {
                *ret_hint = "a group name or gid, or empty";
                if (!*v) {
                        c->server_group_set = false;
                        return 0;
                }
                r = parse_gid(v, &c->server_group);
                if (r < 0)
                        return r;
                c->server_group_set = true;
                return 0;
        }
        if (KEY("server", "max_clients"))
                RANGE(1, 10000, c->max_clients, "an integer 1..10000");
        if (KEY("server", "max_request_bytes"))
                RANGE(1024, 64u << 20, c->max_request_bytes, "an integer 1024..67108864");
        if (KEY("server", "send_queue_messages"))
                RANGE(1, 65536, c->send_queue_messages, "an integer 1..65536");
        if (KEY("server", "admin_uids")) {
                *ret_hint = "user names or uids, separated by spaces or commas (at most 64)";
                return parse_id_list(v, false, (uint32_t *) c->admin_uids, &c->n_admin_uids);
        }
        if (KEY("server", "admin_groups")) {
                *ret_hint = "group names or gids, separated by spaces or commas (at most 64)";
                return parse_id_list(v, true, (uint32_t *) c->admin_groups, &c->n_admin_groups);
        }
        if (KEY("telemetry", "status_interval_msec")) {
                *ret_hint = "milliseconds, 100..3600000";
                return parse_msec(v, 100, 3600000, &c->status_interval_usec);
        }
        if (KEY("telemetry", "log_interval_sec")) {
                *ret_hint = "seconds, 0 (never) ..86400";
                r = parse_u64(v, 0, 86400, 10, &x);
                if (r < 0)
                        return r;
                c->log_interval_usec = x * 1000000;
                return 0;
        }
#undef KEY
#undef RANGE
        *ret_hint = NULL;
        return -ENOKEY;
}

_Static_assert(sizeof(uid_t) == sizeof(uint32_t) && sizeof(gid_t) == sizeof(uint32_t), "ids are 32-bit");

static int ini_handler_cb(void *userdata, const char *section, const char *name, const char *value) {
        ParseState *st = userdata;
        const char *hint = NULL;
        int r;

        if (!*section)
                r = cvopt_error_set(-EINVAL, "%s:%u: key \"%s\" outside of a [section]", st->path,
                                    st->line, name);
        else if ((r = key_set(st->conf, section, name, value, &hint)) == -ENOKEY)
                r = cvopt_error_set(-EINVAL, "%s:%u: unknown key \"%s\" in [%s]", st->path, st->line,
                                    name, section);
        else if (r == -ENOMEM)
                r = cvopt_error_set(-ENOMEM, "%s:%u: out of memory", st->path, st->line);
        else if (r == -ESRCH)
                r = cvopt_error_set(-EINVAL, "%s:%u: [%s] %s: no such user or group \"%s\"", st->path,
                                    st->line, section, name, value);
        else if (r < 0)
                r = cvopt_error_set(-EINVAL, "%s:%u: [%s] %s: bad value \"%s\"%s%s", st->path, st->line,
                                    section, name, value, hint ? ", expected " : "", strempty(hint));
        if (r < 0) {
                if (st->error == 0)
                        st->error = r;
                return 0; /* stop: inih continues, but we keep only the first error */
        }
        return 1;
}

/* Our own reader so the handler knows the line it is called for, which the
 * system's inih (built without INI_HANDLER_LINENO) does not pass. */
static char *ini_reader_cb(char *str, int num, void *stream) {
        ParseState *st = stream;
        if (st->error || st->line_too_long)
                return NULL;
        if (!fgets(str, num, st->file))
                return NULL;
        st->line++;
        size_t n = strlen(str);
        if (n == (size_t) num - 1 && str[n - 1] != '\n' && !feof(st->file)) {
                st->line_too_long = true;
                return NULL;
        }
        return str;
}

int conf_parse_file(Conf *c, const char *path) {
        ParseState st = { .conf = c, .path = path };
        st.file = fopen(path, "re");
        if (!st.file)
                return cvopt_error_set(-errno, "%s: %s", path, strerror(errno));
        /* inih's line buffer is INI_MAX_LINE bytes (200 in Debian's build);
         * longer lines are rejected below rather than split silently. */
        int r = ini_parse_stream(ini_reader_cb, &st, ini_handler_cb, &st);
        fclose(st.file);
        if (st.error)
                return st.error;
        if (st.line_too_long)
                return cvopt_error_set(-EINVAL, "%s:%u: line too long (at most %d bytes)", path, st.line,
                                       INI_MAX_LINE - 2);
        if (r > 0)
                return cvopt_error_set(-EINVAL, "%s:%d: syntax error (expected [section], key = value, or a ; comment)",
                                       path, r);
        if (r < 0)
                return cvopt_error_set(-EIO, "%s: cannot read", path);
        return 0;
}

static int dropin_filter(const struct dirent *de) {
        size_t n = strlen(de->d_name);
        return de->d_name[0] != '.' && n > 5 && streq(de->d_name + n - 5, ".conf");
}

int conf_load(Conf *c, const char *path, bool must_exist) {
        int r;

        if (access(path, F_OK) < 0) {
                if (must_exist || errno != ENOENT)
                        return cvopt_error_set(-errno, "%s: %s", path, strerror(errno));
        } else {
                r = conf_parse_file(c, path);
                if (r < 0)
                        return r;
        }

        /* Drop-ins: conf.d/ in the main file's directory. */
        _cleanup_free_ char *dir = NULL;
        const char *slash = strrchr(path, '/');
        if (slash)
                r = asprintf(&dir, "%.*s/conf.d", (int) (slash - path), path);
        else
                r = asprintf(&dir, "conf.d");
        if (r < 0)
                return -ENOMEM;

        struct dirent **list = NULL;
        int n = scandir(dir, &list, dropin_filter, alphasort);
        if (n < 0)
                return errno == ENOENT || errno == ENOTDIR ? 0 : cvopt_error_set(-errno, "%s: %s", dir, strerror(errno));
        r = 0;
        for (int i = 0; i < n; i++) {
                if (r == 0) {
                        _cleanup_free_ char *p = NULL;
                        if (asprintf(&p, "%s/%s", dir, list[i]->d_name) < 0)
                                r = -ENOMEM;
                        else
                                r = conf_parse_file(c, p);
                }
                free(list[i]);
        }
        free(list);
        return r;
}

static void dump_ids(FILE *f, const char *key, const uint32_t *ids, uint32_t n) {
        fprintf(f, "%s =", key);
        for (uint32_t i = 0; i < n; i++)
                fprintf(f, " %u", ids[i]);
        fputc('\n', f);
}

void conf_dump(const Conf *c, FILE *f) {
        fprintf(f, "[camera]\ndevice = %s\nwidth = %u\nheight = %u\nfps = %u\nformat = %s\nbuffers = %u\n"
                   "timeout_msec = %llu\nretry_max_msec = %llu\n\n",
                c->camera_device, c->camera_width, c->camera_height, c->camera_fps,
                camera_format_name(c->camera_format), c->camera_buffers,
                (unsigned long long) (c->camera_timeout_usec / 1000),
                (unsigned long long) (c->camera_retry_max_usec / 1000));
        fprintf(f, "[model]\npath = %s\n\n", c->model_path);
        fprintf(f, "[inference]\nbackend = %s\nopencl_device = %s\nthreads = %u\ntop_k = %u\nmin_score = %g\n\n",
                c->inference_backend, c->opencl_device, c->threads, c->top_k, c->min_score);
        fprintf(f, "[server]\nsocket = %s\nmode = %04o\n", c->server_socket, (unsigned) c->server_mode);
        if (c->server_group_set)
                fprintf(f, "group = %u\n", (unsigned) c->server_group);
        else
                fprintf(f, "group =\n");
        fprintf(f, "max_clients = %u\nmax_request_bytes = %u\nsend_queue_messages = %u\n", c->max_clients,
                c->max_request_bytes, c->send_queue_messages);
        dump_ids(f, "admin_uids", (const uint32_t *) c->admin_uids, c->n_admin_uids);
        dump_ids(f, "admin_groups", (const uint32_t *) c->admin_groups, c->n_admin_groups);
        fprintf(f, "\n[telemetry]\nstatus_interval_msec = %llu\nlog_interval_sec = %llu\n",
                (unsigned long long) (c->status_interval_usec / 1000),
                (unsigned long long) (c->log_interval_usec / 1000000));
}

/* SPDX-License-Identifier: MIT */
/* libcvopt-client: connection, framing (one JSON object per line) and
 * request/response matching for cvoptd's protocol v1. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "client-internal.h"
#include "macro.h"

/* First receive buffer; it doubles as lines need, up to max_line_bytes.
 * Most responses and events fit in 4 KiB. */
#define CLIENT_BUF_INITIAL 4096u

/* A full listen backlog makes a non-blocking AF_UNIX connect fail with
 * EAGAIN (it never reports EINPROGRESS); retrying every 10 ms until the
 * deadline is gentle on a busy daemon and quick enough for a CLI. */
#define CLIENT_CONNECT_RETRY_USEC 10000u

uint64_t client_now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static uint64_t deadline_after(uint64_t timeout_usec) {
        return timeout_usec ? client_now_usec() + timeout_usec : 0;
}

/* Waits for events on fd until the deadline (0: forever); restarts after
 * EINTR with the time that is left. Returns 0 when ready. */
static int wait_fd(int fd, short events, uint64_t deadline_usec) {
        for (;;) {
                int timeout_msec = -1;
                if (deadline_usec) {
                        uint64_t now = client_now_usec();
                        if (now >= deadline_usec)
                                return -ETIMEDOUT;
                        /* Round up, so a wait never ends just before the deadline. */
                        timeout_msec = (int) MIN((deadline_usec - now + 999u) / 1000u, (uint64_t) INT32_MAX);
                }
                struct pollfd p = { .fd = fd, .events = events };
                int n = poll(&p, 1, timeout_msec);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n > 0)
                        return 0;
        }
}

int cvopt_client_connect(const char *socket_path, uint64_t timeout_usec, CvoptClient **ret_client) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;

        client_error_clear();
        if (!ret_client)
                return client_error_set(-EINVAL, "no place for the client");
        if (!socket_path)
                socket_path = CVOPT_CLIENT_SOCKET_DEFAULT;
        size_t n = strlen(socket_path);
        if (n == 0 || n >= sizeof sa.sun_path)
                return client_error_set(-EINVAL, "%s: socket path must be 1..%zu bytes", socket_path,
                                        sizeof sa.sun_path - 1);
        memcpy(sa.sun_path, socket_path, n);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return client_error_set(-errno, "socket: %s", strerror(errno));

        uint64_t deadline = deadline_after(timeout_usec);
        for (;;) {
                if (connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0)
                        break;
                int e = errno;
                if (e == EINTR)
                        continue;
                if (e == EINPROGRESS) {
                        int r = wait_fd(fd, POLLOUT, deadline);
                        if (r < 0)
                                return client_error_set(r, "%s: connect: %s", socket_path, strerror(-r));
                        socklen_t len = sizeof e;
                        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
                                e = errno;
                        if (e == 0)
                                break;
                        return client_error_set(-e, "%s: connect: %s", socket_path, strerror(e));
                }
                if (e == EAGAIN && (!deadline || client_now_usec() + CLIENT_CONNECT_RETRY_USEC < deadline)) {
                        nanosleep(&(struct timespec) { .tv_nsec = CLIENT_CONNECT_RETRY_USEC * 1000 }, NULL);
                        continue;
                }
                return client_error_set(-e, "%s: %s", socket_path, strerror(e));
        }

        CvoptClient *c = calloc(1, sizeof *c);
        if (!c)
                return client_error_set(-ENOMEM, "out of memory");
        c->fd = TAKE_FD(fd);
        c->timeout_usec = timeout_usec;
        c->max_line_bytes = CVOPT_CLIENT_LINE_MAX_DEFAULT;
        c->next_id = 1;
        *ret_client = c;
        return 0;
}

static void queue_clear(CvoptClient *c) {
        while (c->queue_head) {
                EventLine *e = c->queue_head;
                c->queue_head = e->next;
                free(e->line);
                free(e);
        }
        c->queue_tail = NULL;
        c->queue_len = 0;
}

CvoptClient *cvopt_client_close(CvoptClient *c) {
        if (!c)
                return NULL;
        safe_close(c->fd);
        queue_clear(c);
        free(c->buf);
        free(c);
        return NULL;
}

int cvopt_client_fd(const CvoptClient *c) {
        return c ? c->fd : -EBADF;
}

void cvopt_client_set_timeout(CvoptClient *c, uint64_t timeout_usec) {
        if (c)
                c->timeout_usec = timeout_usec;
}

int cvopt_client_set_max_line(CvoptClient *c, size_t max_line_bytes) {
        /* Below 64 bytes not even an error response fits. */
        if (!c || max_line_bytes < 64)
                return client_error_set(-EINVAL, "line limit must be at least 64 bytes");
        c->max_line_bytes = max_line_bytes;
        return 0;
}

uint64_t cvopt_client_events_dropped(const CvoptClient *c) {
        return c ? c->events_dropped : 0;
}

void cvopt_client_set_event_handler(CvoptClient *c, CvoptClientEventFn fn, void *userdata) {
        c->event_fn = fn;
        c->event_userdata = userdata;
}

static int write_all(CvoptClient *c, const char *data, size_t size) {
        uint64_t deadline = deadline_after(c->timeout_usec);
        while (size > 0) {
                /* MSG_NOSIGNAL: a daemon that went away is -EPIPE here, not
                 * a SIGPIPE that kills the application. */
                ssize_t n = send(c->fd, data, size, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                int r = wait_fd(c->fd, POLLOUT, deadline);
                                if (r < 0)
                                        return client_error_set(r, "sending to the daemon: %s", strerror(-r));
                                continue;
                        }
                        /* Not marked broken: the daemon may have answered
                         * before closing, and request_json() reads that. */
                        if (errno == EPIPE || errno == ECONNRESET)
                                return client_error_set(-ECONNRESET, "the daemon closed the connection");
                        return client_error_set(-errno, "sending to the daemon: %s", strerror(errno));
                }
                data += n;
                size -= (size_t) n;
        }
        return 0;
}

int client_send_json(CvoptClient *c, const char *cmd, json_t *args, uint64_t *ret_id) {
        client_error_clear();
        if (!c || !cmd)
                return client_error_set(-EINVAL, "no client or command");
        if (c->broken)
                return client_error_set(c->broken, "the connection is no longer usable");
        json_t *req = args ? json_deep_copy(args) : json_object();
        if (!req)
                return client_error_set(-ENOMEM, "out of memory");
        uint64_t id = c->next_id;
        if (json_object_set_new(req, "cmd", json_string(cmd)) < 0 ||
            json_object_set_new(req, "id", json_integer((json_int_t) id)) < 0 ||
            json_object_set_new(req, "v", json_integer(1)) < 0) {
                json_decref(req);
                return client_error_set(-EINVAL, "%s: command is not valid UTF-8", cmd);
        }
        char *text = json_dumps(req, JSON_COMPACT);
        json_decref(req);
        if (!text)
                return client_error_set(-ENOMEM, "out of memory");
        /* Overwrite the terminating NUL with the line's newline. */
        size_t n = strlen(text);
        text[n] = '\n';
        int r = write_all(c, text, n + 1);
        free(text);
        if (r < 0)
                return r;
        c->next_id++;
        if (ret_id)
                *ret_id = id;
        return 0;
}

int cvopt_client_send(CvoptClient *c, const char *cmd, const char *args_json, uint64_t *ret_id) {
        json_t *args = NULL;
        if (args_json) {
                json_error_t e;
                args = json_loads(args_json, 0, &e);
                if (!args || !json_is_object(args)) {
                        json_decref(args);
                        return client_error_set(-EINVAL, "arguments must be a JSON object: %s",
                                                args ? "not an object" : e.text);
                }
        }
        int r = client_send_json(c, cmd, args, ret_id);
        json_decref(args);
        return r;
}

/* Next complete line, NUL-terminated in place (valid until the next
 * read); reads from the socket until one is there or the deadline. */
static int read_line(CvoptClient *c, uint64_t deadline_usec, char **ret_line, size_t *ret_size) {
        if (c->broken)
                return client_error_set(c->broken, "the connection is no longer usable");
        for (;;) {
                /* No buffer yet before the first read: nothing to search. */
                size_t unscanned = c->len - c->start - c->scanned;
                char *nl = unscanned > 0 ? memchr(c->buf + c->start + c->scanned, '\n', unscanned) : NULL;
                if (nl && (size_t) (nl - (c->buf + c->start)) >= c->max_line_bytes)
                        return c->broken = client_error_set(-EMSGSIZE, "the daemon sent a line longer than %zu bytes",
                                                            c->max_line_bytes);
                if (nl) {
                        *nl = 0;
                        *ret_line = c->buf + c->start;
                        *ret_size = (size_t) (nl - (c->buf + c->start));
                        c->start += *ret_size + 1;
                        c->scanned = 0;
                        return 0;
                }
                c->scanned = c->len - c->start;
                if (c->scanned >= c->max_line_bytes)
                        return c->broken = client_error_set(-EMSGSIZE, "the daemon sent a line longer than %zu bytes",
                                                            c->max_line_bytes);

                /* Make room: first move the unread rest to the front, then grow. */
                if (c->start > 0) {
                        memmove(c->buf, c->buf + c->start, c->len - c->start);
                        c->len -= c->start;
                        c->start = 0;
                }
                /* Grow while short of room, but never beyond one byte more
                 * than the longest line allowed: an oversized line is then
                 * detected above instead of filling memory. Unread bytes
                 * never exceed max_line_bytes here, so a buffer at the cap
                 * always has room. */
                if (c->size - c->len < CLIENT_BUF_INITIAL / 2 && c->size < c->max_line_bytes + 1) {
                        size_t want = c->size ? c->size * 2 : CLIENT_BUF_INITIAL;
                        want = MIN(want, c->max_line_bytes + 1);
                        char *b = realloc(c->buf, want);
                        if (!b)
                                return client_error_set(-ENOMEM, "out of memory");
                        c->buf = b;
                        c->size = want;
                }

                ssize_t n = recv(c->fd, c->buf + c->len, c->size - c->len, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                int r = wait_fd(c->fd, POLLIN, deadline_usec);
                                if (r == -ETIMEDOUT)
                                        return client_error_set(r, "no answer from the daemon in %.1f s",
                                                                (double) c->timeout_usec / 1e6);
                                if (r < 0)
                                        return client_error_set(r, "waiting for the daemon: %s", strerror(-r));
                                continue;
                        }
                        if (errno == ECONNRESET)
                                return c->broken = client_error_set(-ECONNRESET, "the daemon closed the connection");
                        return c->broken = client_error_set(-errno, "reading from the daemon: %s", strerror(errno));
                }
                if (n == 0)
                        return c->broken = client_error_set(
                                       -ECONNRESET, c->len > c->start ? "the daemon closed the connection in the middle of a line"
                                                                      : "the daemon closed the connection");
                c->len += (size_t) n;
        }
}

/* Reads one line and parses it: a response (*ret_response) or an event,
 * which goes to the handler or the queue (*ret_response stays NULL). */
static int read_message(CvoptClient *c, uint64_t deadline_usec, json_t **ret_response, int *ret_handler) {
        char *line = NULL;
        size_t size = 0;
        int r = read_line(c, deadline_usec, &line, &size);
        if (r < 0)
                return r;
        json_error_t e;
        json_t *msg = json_loadb(line, size, 0, &e);
        if (!msg || !json_is_object(msg)) {
                json_decref(msg);
                return c->broken = client_error_set(-EPROTO, "the daemon sent a line that is not a JSON object (%s)",
                                                    msg ? "not an object" : e.text);
        }
        *ret_handler = 0;
        if (!json_object_get(msg, "event")) {
                *ret_response = msg;
                return 0;
        }
        json_decref(msg);
        if (c->event_fn) {
                *ret_handler = c->event_fn(line, c->event_userdata);
                return 0;
        }
        if (c->queue_len >= CVOPT_CLIENT_EVENT_QUEUE_MAX) {
                c->events_dropped++;
                return 0;
        }
        EventLine *ev = malloc(sizeof *ev);
        char *copy = ev ? strndup(line, size) : NULL;
        if (!copy) {
                free(ev);
                return client_error_set(-ENOMEM, "out of memory");
        }
        *ev = (EventLine) { .line = copy };
        if (c->queue_tail)
                c->queue_tail->next = ev;
        else
                c->queue_head = ev;
        c->queue_tail = ev;
        c->queue_len++;
        return 0;
}

int client_wait_response(CvoptClient *c, uint64_t id, json_t **ret_response) {
        uint64_t deadline = deadline_after(c->timeout_usec);
        for (;;) {
                json_t *msg = NULL;
                int handler;
                int r = read_message(c, deadline, &msg, &handler);
                if (r < 0)
                        return r;
                if (!msg)
                        continue; /* an event; a handler's wish to stop waits for read_events */
                json_t *mid = json_object_get(msg, "id");
                json_t *v = json_object_get(msg, "v");
                if (v && json_integer_value(v) != 1) {
                        json_decref(msg);
                        return c->broken = client_error_set(-EPROTO, "the daemon speaks protocol version %lld, not 1",
                                                            (long long) json_integer_value(v));
                }
                /* An id-less or null-id response is the daemon speaking
                 * before it could read a request (e.g. "too many clients"
                 * on connect): it answers whatever we wait for. Other ids
                 * answer pipelined requests nobody waits for. */
                if (!mid || json_is_null(mid) || (json_is_integer(mid) && (uint64_t) json_integer_value(mid) == id)) {
                        *ret_response = msg;
                        return 0;
                }
                json_decref(msg);
        }
}

int client_response_result(json_t *response, json_t **ret_result) {
        json_t *ok = json_object_get(response, "ok");
        if (json_is_true(ok)) {
                json_t *result = json_object_get(response, "result");
                *ret_result = json_incref(result ? result : json_null());
                return 0;
        }
        json_t *err = json_object_get(response, "error");
        const char *code = json_string_value(json_object_get(err, "code"));
        const char *message = json_string_value(json_object_get(err, "message"));
        if (!json_is_false(ok) || !code)
                return client_error_set(-EPROTO, "the daemon sent a response with neither a result nor an error");
        int r = client_error_set(-CVOPT_CLIENT_E_DAEMON, "%s", message ? message : code);
        client_error_set_code(code);
        return r;
}

int cvopt_client_read_response(CvoptClient *c, uint64_t id, char **ret_line) {
        json_t *resp = NULL;
        client_error_clear();
        int r = client_wait_response(c, id, &resp);
        if (r < 0)
                return r;
        char *text = json_dumps(resp, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(resp);
        if (!text)
                return client_error_set(-ENOMEM, "out of memory");
        *ret_line = text;
        return 0;
}

static int request_json(CvoptClient *c, const char *cmd, json_t *args, json_t **ret_result) {
        uint64_t id;
        json_t *resp = NULL, *result = NULL;
        int r = client_send_json(c, cmd, args, &id);
        if (r == -ECONNRESET && !c->broken) {
                /* The daemon closed while we were still writing. It does
                 * that after answering a request over its size limit with
                 * a too-large error: read what it sent before the close,
                 * so the caller learns why. The peer is gone, so this
                 * ends at end-of-file, not at a timeout. */
                r = client_wait_response(c, c->next_id, &resp);
                if (r < 0) {
                        c->broken = -ECONNRESET;
                        return client_error_set(-ECONNRESET, "the daemon closed the connection");
                }
                c->broken = -ECONNRESET;
        } else if (r < 0)
                return r;
        else {
                r = client_wait_response(c, id, &resp);
                if (r < 0)
                        return r;
        }
        r = client_response_result(resp, &result);
        json_decref(resp);
        if (r < 0)
                return r;
        if (ret_result)
                *ret_result = result;
        else
                json_decref(result);
        return 0;
}

static int result_to_text(json_t *result, char **ret_result_json) {
        if (ret_result_json) {
                char *text = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY);
                if (!text) {
                        json_decref(result);
                        return client_error_set(-ENOMEM, "out of memory");
                }
                *ret_result_json = text;
        }
        json_decref(result);
        return 0;
}

int cvopt_client_request(CvoptClient *c, const char *cmd, const char *args_json, char **ret_result_json) {
        json_t *args = NULL, *result = NULL;
        if (args_json) {
                json_error_t e;
                args = json_loads(args_json, 0, &e);
                if (!args || !json_is_object(args)) {
                        json_decref(args);
                        return client_error_set(-EINVAL, "arguments must be a JSON object: %s",
                                                args ? "not an object" : e.text);
                }
        }
        int r = request_json(c, cmd, args, &result);
        json_decref(args);
        if (r < 0)
                return r;
        return result_to_text(result, ret_result_json);
}

int cvopt_client_subscribe(CvoptClient *c) {
        return request_json(c, "subscribe", NULL, NULL);
}

/* Images are sent whole in one request line; the daemon's own ceiling
 * for a line is 64 MiB (max_request_bytes), which base64 reaches at
 * 48 MiB of file. */
#define CLASSIFY_FILE_MAX_BYTES (48u * 1024u * 1024u)

int cvopt_client_classify_file(CvoptClient *c, const char *path, char **ret_result_json) {
        client_error_clear();
        FILE *f = fopen(path, "re");
        if (!f)
                return client_error_set(-errno, "%s: %s", path, strerror(errno));
        size_t size = 0, cap = 0;
        char *data = NULL;
        int r = 0;
        for (;;) {
                if (size == cap) {
                        if (cap >= CLASSIFY_FILE_MAX_BYTES) {
                                r = client_error_set(-EFBIG, "%s: larger than %u MiB", path, CLASSIFY_FILE_MAX_BYTES >> 20);
                                break;
                        }
                        cap = cap ? cap * 2 : 65536;
                        char *d = realloc(data, cap);
                        if (!d) {
                                r = client_error_set(-ENOMEM, "out of memory");
                                break;
                        }
                        data = d;
                }
                size_t n = fread(data + size, 1, cap - size, f);
                size += n;
                if (n == 0) {
                        if (ferror(f))
                                r = client_error_set(-EIO, "%s: read error", path);
                        break;
                }
        }
        fclose(f);
        if (r == 0 && size == 0)
                r = client_error_set(-EINVAL, "%s: empty file", path);
        if (r < 0) {
                free(data);
                return r;
        }
        char *b64 = client_base64_encode(data, size);
        free(data);
        if (!b64)
                return client_error_set(-ENOMEM, "out of memory");
        json_t *args = json_pack("{s:s}", "image", b64);
        free(b64);
        if (!args)
                return client_error_set(-ENOMEM, "out of memory");
        json_t *result = NULL;
        r = request_json(c, "classify", args, &result);
        json_decref(args);
        if (r < 0)
                return r;
        return result_to_text(result, ret_result_json);
}

int cvopt_client_next_event(CvoptClient *c, uint64_t timeout_usec, char **ret_line) {
        client_error_clear();
        if (c->queue_head) {
                EventLine *e = c->queue_head;
                c->queue_head = e->next;
                if (!c->queue_head)
                        c->queue_tail = NULL;
                c->queue_len--;
                *ret_line = e->line;
                free(e);
                return 0;
        }
        /* Bypass the handler: this call is how the caller asked to get it. */
        CvoptClientEventFn fn = c->event_fn;
        c->event_fn = NULL;
        uint64_t deadline = deadline_after(timeout_usec);
        int r;
        for (;;) {
                json_t *resp = NULL;
                int handler;
                r = read_message(c, deadline, &resp, &handler);
                if (r < 0)
                        break;
                if (resp) {
                        json_decref(resp);
                        continue;
                }
                if (c->queue_head) {
                        c->event_fn = fn;
                        return cvopt_client_next_event(c, 0, ret_line);
                }
        }
        c->event_fn = fn;
        return r;
}

int cvopt_client_read_events(CvoptClient *c, CvoptClientEventFn fn, void *userdata, uint64_t max_events) {
        uint64_t delivered = 0;
        client_error_clear();
        /* Events queued while waiting for earlier responses come first. */
        while (c->queue_head) {
                char *line = NULL;
                int r = cvopt_client_next_event(c, 0, &line);
                if (r < 0)
                        return r;
                r = fn(line, userdata);
                free(line);
                if (r != 0)
                        return r;
                if (max_events && ++delivered >= max_events)
                        return 0;
        }
        CvoptClientEventFn saved_fn = c->event_fn;
        void *saved_userdata = c->event_userdata;
        c->event_fn = fn;
        c->event_userdata = userdata;
        int r;
        for (;;) {
                json_t *resp = NULL;
                int handler = 0;
                /* No deadline: a quiet camera is not an error here. */
                r = read_message(c, 0, &resp, &handler);
                if (r < 0)
                        break;
                if (resp) {
                        json_decref(resp);
                        continue;
                }
                if (handler != 0) {
                        r = handler;
                        break;
                }
                if (max_events && ++delivered >= max_events) {
                        r = 0;
                        break;
                }
        }
        c->event_fn = saved_fn;
        c->event_userdata = saved_userdata;
        return r;
}

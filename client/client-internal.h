/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared between the files of libcvopt-client; not installed. */

#include <jansson.h>
#include <stdbool.h>

#include "cvopt/client.h"

typedef struct EventLine {
        struct EventLine *next;
        char *line;
} EventLine;

struct CvoptClient {
        int fd;
        uint64_t timeout_usec;
        size_t max_line_bytes;
        uint64_t next_id;

        /* Received bytes: [start, len) are not consumed yet; scanned marks
         * how far [start, ...) is known to hold no newline, so a line that
         * arrives in many pieces is searched once, not once per piece. */
        char *buf;
        size_t start, len, scanned, size;
        /* A read or protocol failure left the stream at an unknown point
         * (a line cut in the middle, the peer gone): every later call
         * fails with this error instead of misreading what follows. */
        int broken;

        CvoptClientEventFn event_fn;
        void *event_userdata;
        EventLine *queue_head, *queue_tail;
        size_t queue_len;
        uint64_t events_dropped;
};

int client_error_set(int err, const char *format, ...) __attribute__((format(printf, 2, 3)));
void client_error_set_code(const char *code);
void client_error_clear(void);

/* Sends cmd with the members of args (borrowed, may be NULL). */
int client_send_json(CvoptClient *c, const char *cmd, json_t *args, uint64_t *ret_id);

/* Waits for the response to id; on success *ret_response is the parsed
 * response object. */
int client_wait_response(CvoptClient *c, uint64_t id, json_t **ret_response);

/* Unwraps a response: the result (new reference) or -CVOPT_CLIENT_E_DAEMON. */
int client_response_result(json_t *response, json_t **ret_result);

uint64_t client_now_usec(void);

/* Base64 (RFC 4648, with padding) of size bytes; malloc'd, NUL-terminated. */
char *client_base64_encode(const void *data, size_t size);

/* SPDX-License-Identifier: MIT */
#pragma once

/* cvoptctl's modules: the commands (cvoptctl.c), human-readable
 * rendering of protocol objects (format.c) and the live view (watch.c). */

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "cvopt/client.h"

/* Exit codes (documented in --help and cvoptctl(1)). */
enum {
        EXIT_OK = 0,
        EXIT_REQUEST_FAILED = 1,
        EXIT_USAGE = 2,
        EXIT_UNREACHABLE = 3,
};

typedef struct Ctl {
        const char *socket_path;
        bool json;
        uint64_t timeout_usec;
} Ctl;

/* Connects or prints why not (with a hint) and returns EXIT_UNREACHABLE. */
int ctl_connect(const Ctl *ctl, CvoptClient **ret_client);

/* Runs one request; prints a failure and returns an exit code, or
 * EXIT_OK with *ret_result (parsed) set. */
int ctl_request(CvoptClient *client, const char *cmd, json_t *args, json_t **ret_result);

/* Exit code and message for a failed client call. */
int ctl_report_failure(const char *what, int r);

/* Human renderings. */
void format_duration_usec(char *buf, size_t size, uint64_t usec);
void format_latency_usec(char *buf, size_t size, json_int_t usec);
void print_status(FILE *f, json_t *status);
void print_stats(FILE *f, json_t *stats);
void print_model(FILE *f, json_t *model);
/* One line for a result object (event or `last`/`classify` result). */
void print_result_line(FILE *f, json_t *result);
/* One line for a non-result event (camera, model, dropped). */
void print_event_line(FILE *f, json_t *event);

int cmd_watch(const Ctl *ctl, int argc, char **argv);

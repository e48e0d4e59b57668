/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by the cvopt commands: exit codes and error printing. */

#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include "cvopt/cvopt.h"

enum {
        EXIT_OK = 0,
        EXIT_FAILED = 1, /* the command ran and failed (bad file, target not met...) */
        EXIT_USAGE = 2,
};

/* Prints "cvopt: <what>: <detail or strerror>" once and returns EXIT_FAILED. */
static inline int cli_fail(int r, const char *what) {
        const char *detail = cvopt_error_detail();

        if (detail && detail[0])
                fprintf(stderr, "cvopt: %s%s%s\n", what ? what : "", what ? ": " : "", detail);
        else
                fprintf(stderr, "cvopt: %s%s%s\n", what ? what : "", what ? ": " : "", cvopt_strerror(r));
        return EXIT_FAILED;
}

static inline int cli_usage(const char *command, const char *message) {
        fprintf(stderr, "cvopt %s: %s\nTry 'cvopt %s --help'.\n", command, message, command);
        return EXIT_USAGE;
}

/* Progress lines are for people: only on a terminal, never with --json. */
static inline bool cli_show_progress(bool json) {
        return !json && isatty(STDERR_FILENO);
}

int cmd_eval(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_optimize(int argc, char **argv);
int cmd_analyze(int argc, char **argv);

/* SPDX-License-Identifier: MIT */
/* The client's error detail, per thread, in the style of the engine's
 * cvopt_error_detail() (the client does not link the engine). */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "client-internal.h"

/* Long enough for a path, a daemon's error message and some context. */
static _Thread_local char detail[1024];
/* Protocol error codes are short words ("permission-denied"). */
static _Thread_local char code[64];

int client_error_set(int err, const char *format, ...) {
        va_list ap;
        va_start(ap, format);
        vsnprintf(detail, sizeof detail, format, ap);
        va_end(ap);
        code[0] = 0;
        return err;
}

void client_error_set_code(const char *c) {
        snprintf(code, sizeof code, "%s", c ? c : "");
}

void client_error_clear(void) {
        detail[0] = 0;
        code[0] = 0;
}

const char *cvopt_client_error_detail(void) {
        return detail;
}

const char *cvopt_client_error_code(void) {
        return code;
}

const char *cvopt_client_strerror(int err) {
        if (err < 0)
                err = -err;
        if (err == CVOPT_CLIENT_E_DAEMON)
                return "the daemon reported an error";
        return strerror(err);
}

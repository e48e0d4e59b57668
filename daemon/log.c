/* SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "log.h"

static bool log_prefix_priority;
static int log_max_level = LOG_INFO;

void log_setup(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        /* Only when stderr really is the stream systemd connected to the
         * journal: a shell started from a unit inherits the variable. */
        if (e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
            (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino)
                log_prefix_priority = true;
}

void log_set_max_level(int level) {
        log_max_level = level;
}

void log_msg(int priority, const char *format, ...) {
        char buf[1024];
        va_list ap;
        int n = 0;

        if (priority > log_max_level)
                return;
        if (log_prefix_priority)
                n = snprintf(buf, sizeof buf, "<%d>", priority);
        va_start(ap, format);
        vsnprintf(buf + n, sizeof buf - n, format, ap);
        va_end(ap);
        /* One fputs of a whole line, so lines from the worker and the main
         * loop never interleave mid-line. */
        fprintf(stderr, "%s\n", buf);
}

/* SPDX-License-Identifier: MIT */
#pragma once

/* Daemon logging: one line per event on stderr. Under systemd (stderr is
 * the journal stream named by $JOURNAL_STREAM) each line starts with a
 * <N> syslog priority prefix, which journald turns into the priority;
 * otherwise the text is plain. */

#include <syslog.h>

#include "macro.h"

void log_setup(void);
void log_set_max_level(int level);
void log_msg(int priority, const char *format, ...) _printf_(2, 3);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)

/* SPDX-License-Identifier: MIT */
/* cvoptctl watch: a live view like top. One connection both subscribes
 * (the latest results fill the bottom of the screen) and asks for status
 * and stats once per refresh. Plain ANSI escapes (alternate screen,
 * cursor home, clear to end of line) work in any terminal over SSH; the
 * screen is cut to the terminal's size, so 80x24 shows everything that
 * matters. The terminal is restored on every way out: q, Ctrl-C, SIGTERM,
 * SIGHUP, or the daemon going away. */

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cvoptctl.h"
#include "macro.h"

/* Results kept for the bottom of the screen; more than any terminal
 * shows, few enough to copy every refresh. */
#define WATCH_RESULTS 64u

#define WATCH_TIMEOUT_USEC (5u * 1000000u)

typedef struct Watch {
        json_t *results[WATCH_RESULTS]; /* ring, newest at head - 1 */
        size_t head, count;
        char last_event[160];
        bool tty;
        int rows, cols;
        int row; /* rows written this refresh */
} Watch;

static volatile sig_atomic_t quit_signal;
static volatile sig_atomic_t resized;
static struct termios saved_termios;
static bool termios_saved;

static void on_quit(int sig) {
        quit_signal = sig;
}

static void on_winch(int sig) {
        (void) sig;
        resized = 1;
}

static void terminal_restore(void) {
        if (termios_saved) {
                /* Leave the alternate screen, show the cursor, reset colours. */
                fputs("\033[0m\033[?25h\033[?1049l", stdout);
                fflush(stdout);
                tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);
                termios_saved = false;
        }
}

static int terminal_setup(void) {
        if (tcgetattr(STDIN_FILENO, &saved_termios) < 0)
                return -errno;
        struct termios raw = saved_termios;
        /* Keys arrive one at a time without echo; ISIG stays on so Ctrl-C
         * is still SIGINT. */
        raw.c_lflag &= ~(tcflag_t) (ICANON | ECHO);
        raw.c_cc[VMIN] = 1;
        raw.c_cc[VTIME] = 0;
        if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) < 0)
                return -errno;
        termios_saved = true;
        atexit(terminal_restore);
        fputs("\033[?1049h\033[?25l\033[H\033[2J", stdout);
        fflush(stdout);
        return 0;
}

static void terminal_size(Watch *w) {
        struct winsize ws;
        w->rows = 24;
        w->cols = 80;
        if (w->tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
                w->rows = ws.ws_row;
                w->cols = ws.ws_col;
        }
}

/* One screen line, cut to the width; nothing beyond the last row, so the
 * terminal never scrolls and the view stays put. */
static void line(Watch *w, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void line(Watch *w, const char *format, ...) {
        char buf[512];
        va_list ap;
        if (w->row >= w->rows - 1)
                return;
        va_start(ap, format);
        vsnprintf(buf, sizeof buf, format, ap);
        va_end(ap);
        if ((int) strlen(buf) > w->cols)
                buf[w->cols] = 0;
        fputs(buf, stdout);
        fputs(w->tty ? "\033[K\n" : "\n", stdout);
        w->row++;
}

static int on_event(const char *text, void *userdata) {
        Watch *w = userdata;
        json_t *e = json_loads(text, 0, NULL);
        const char *kind = json_string_value(json_object_get(e, "event"));
        if (kind && strcmp(kind, "result") == 0) {
                json_decref(w->results[w->head]);
                w->results[w->head] = TAKE_PTR(e);
                w->head = (w->head + 1) % WATCH_RESULTS;
                w->count = MIN(w->count + 1, WATCH_RESULTS);
        } else if (kind) {
                char *p = NULL;
                size_t size = 0;
                FILE *f = open_memstream(&p, &size);
                if (f) {
                        print_event_line(f, e);
                        fclose(f);
                        if (p && size > 0 && p[size - 1] == '\n')
                                p[size - 1] = 0;
                        time_t now = time(NULL);
                        struct tm tm;
                        localtime_r(&now, &tm);
                        snprintf(w->last_event, sizeof w->last_event, "%02d:%02d:%02d %s", tm.tm_hour, tm.tm_min,
                                 tm.tm_sec, p ? p : "");
                }
                free(p);
        }
        json_decref(e);
        return 0;
}

static json_int_t integer(json_t *o, const char *key) {
        return json_integer_value(json_object_get(o, key));
}

static const char *str(json_t *o, const char *key) {
        const char *s = json_string_value(json_object_get(o, key));
        return s ? s : "-";
}

static void render(Watch *w, json_t *status, json_t *stats) {
        char up[64], b[4][32];
        json_t *camera = json_object_get(status, "camera");
        json_t *model = json_object_get(status, "model");
        json_t *frames = json_object_get(stats, "frames");
        json_t *clients = json_object_get(stats, "clients");
        json_t *lat = json_object_get(stats, "latency_usec");
        time_t now = time(NULL);
        struct tm tm;

        w->row = 0;
        terminal_size(w);
        if (w->tty)
                fputs("\033[H", stdout);
        localtime_r(&now, &tm);
        format_duration_usec(up, sizeof up, (uint64_t) integer(status, "uptime_usec"));
        line(w, "cvoptd %s  pid %lld  %s  up %s  %02d:%02d:%02d", str(status, "version"),
             (long long) integer(status, "pid"), str(status, "state"), up, tm.tm_hour, tm.tm_min, tm.tm_sec);
        const char *desc = json_string_value(json_object_get(camera, "description"));
        const char *reason = json_string_value(json_object_get(camera, "reason"));
        line(w, "camera   %s  %s  %s  reconnects %lld", str(camera, "device"), str(camera, "state"),
             desc ? desc : reason ? reason : "", (long long) integer(camera, "reconnects"));
        line(w, "model    %s  backend %s", str(model, "id"), str(status, "backend"));
        line(w, "fps      %.1f%s  frames %lld classified  %lld dropped  %lld errors",
             json_number_value(json_object_get(status, "fps")),
             json_is_true(json_object_get(status, "paused")) ? " (paused)" : "",
             (long long) integer(frames, "classified"), (long long) integer(frames, "dropped"),
             (long long) integer(frames, "errors"));
        format_latency_usec(b[0], sizeof b[0], integer(stats, "cpu_usec_per_frame"));
        line(w, "clients  %lld (%lld subscribed)  rss %.1f MiB  cpu/frame %s", (long long) integer(clients, "connected"),
             (long long) integer(clients, "subscribers"), (double) integer(stats, "rss_bytes") / (1 << 20), b[0]);
        line(w, "%s", "");
        line(w, "%-13s %10s %10s %10s %10s", "LATENCY", "p50", "p90", "p99", "count");
        const char *stage;
        json_t *h;
        json_object_foreach(lat, stage, h) {
                format_latency_usec(b[0], sizeof b[0], integer(h, "p50"));
                format_latency_usec(b[1], sizeof b[1], integer(h, "p90"));
                format_latency_usec(b[2], sizeof b[2], integer(h, "p99"));
                line(w, "%-13s %10s %10s %10s %10lld", stage, b[0], b[1], b[2], (long long) integer(h, "count"));
        }
        line(w, "%s", w->last_event[0] ? w->last_event : "");
        line(w, "%-8s %-20s %7s %10s %s", "SEQ", "LABEL", "SCORE", "LATENCY", "TOP-2");
        /* Newest result first, as many as the rows left allow. */
        for (size_t i = 0; i < w->count && w->row < w->rows - 1; i++) {
                json_t *r = w->results[(w->head + WATCH_RESULTS - 1 - i) % WATCH_RESULTS];
                json_t *label = json_object_get(r, "label");
                json_t *second = json_array_get(json_object_get(r, "top"), 1);
                format_latency_usec(b[0], sizeof b[0],
                                    json_integer_value(json_object_get(json_object_get(r, "latency_usec"), "total")));
                snprintf(b[1], sizeof b[1], "%s %.2f", second ? str(second, "label") : "",
                         second ? json_number_value(json_object_get(second, "score")) : 0.0);
                line(w, "%-8lld %-20.20s %7.3f %10s %s", (long long) integer(r, "seq"),
                     json_is_string(label) ? json_string_value(label) : "(none)",
                     json_number_value(json_object_get(r, "score")), b[0], second ? b[1] : "");
        }
        if (w->tty) {
                /* Clear what an earlier, longer screen left, then the key help
                 * on the last row. */
                fputs("\033[J", stdout);
                printf("\033[%d;1H\033[7m q quit \033[0m", w->rows);
        } else
                putchar('\n');
        fflush(stdout);
}

/* Waits up to interval for a key, a signal or a resize. Returns true to quit. */
static bool wait_key(Watch *w, uint64_t interval_usec) {
        struct timespec end, now;
        clock_gettime(CLOCK_MONOTONIC, &end);
        end.tv_sec += (time_t) (interval_usec / 1000000u);
        end.tv_nsec += (long) (interval_usec % 1000000u) * 1000;
        if (end.tv_nsec >= 1000000000L) {
                end.tv_sec++;
                end.tv_nsec -= 1000000000L;
        }
        for (;;) {
                if (quit_signal)
                        return true;
                if (resized) {
                        resized = 0;
                        if (w->tty)
                                fputs("\033[2J", stdout);
                        return false;
                }
                clock_gettime(CLOCK_MONOTONIC, &now);
                long long left_msec = (long long) (end.tv_sec - now.tv_sec) * 1000 + (end.tv_nsec - now.tv_nsec) / 1000000;
                if (left_msec <= 0)
                        return false;
                struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
                int n = poll(&p, w->tty ? 1 : 0, (int) left_msec);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return true;
                }
                if (n > 0) {
                        char c;
                        ssize_t k = read(STDIN_FILENO, &c, 1);
                        if (k <= 0)
                                return true; /* the terminal went away */
                        if (c == 'q' || c == 'Q' || c == 3 /* Ctrl-C if ISIG is off */)
                                return true;
                        return false; /* any other key refreshes now */
                }
        }
}

int cmd_watch(const Ctl *ctl, int argc, char **argv) {
        static const struct option options[] = {
                { "interval", required_argument, NULL, 'i' },
                { "count", required_argument, NULL, 'n' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        uint64_t interval_usec = 1000000u, count = 0;
        int opt;
        optind = 1;
        while ((opt = getopt_long(argc, argv, "+i:n:h", options, NULL)) >= 0) {
                char *end;
                switch (opt) {
                case 'i': {
                        double sec = strtod(optarg, &end);
                        if (*end || end == optarg || !(sec >= 0.1 && sec <= 3600)) {
                                fprintf(stderr, "cvoptctl watch: -i wants seconds in 0.1..3600, not \"%s\"\n", optarg);
                                return EXIT_USAGE;
                        }
                        interval_usec = (uint64_t) (sec * 1e6);
                        break;
                }
                case 'n':
                        count = strtoull(optarg, &end, 10);
                        if (*end || end == optarg || count == 0 || optarg[0] == '-') {
                                fprintf(stderr, "cvoptctl watch: -n wants a positive count, not \"%s\"\n", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'h':
                        printf("Usage: cvoptctl [--socket PATH] watch [-i SEC] [-n COUNT]\n\n"
                               "Live view of status, latency and the latest results, refreshed every SEC seconds\n"
                               "(default 1), until q or Ctrl-C. It fits 80x24 and uses plain ANSI escapes. When\n"
                               "stdout is not a terminal it prints one plain screen per refresh.\n\n"
                               "  -i, --interval SEC  seconds between refreshes (0.1..3600)\n"
                               "  -n, --count COUNT   stop after COUNT refreshes\n");
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "cvoptctl watch: unexpected argument \"%s\"\n", argv[optind]);
                return EXIT_USAGE;
        }
        if (ctl->json) {
                fprintf(stderr, "cvoptctl watch: no --json view; use `cvoptctl --json subscribe` or `status`\n");
                return EXIT_USAGE;
        }

        Watch w = { .tty = isatty(STDOUT_FILENO) && isatty(STDIN_FILENO) };
        CvoptClient *client = NULL;
        int ret = ctl_connect(ctl, &client);
        if (ret != EXIT_OK)
                return ret;
        /* Keys are only read between refreshes, so a wedged daemon must
         * not hold the screen (and q, and Ctrl-C) for the full default
         * timeout: 5 s is far beyond a healthy answer (milliseconds). */
        cvopt_client_set_timeout(client, MIN(ctl->timeout_usec, WATCH_TIMEOUT_USEC));
        cvopt_client_set_event_handler(client, on_event, &w);
        int r = cvopt_client_subscribe(client);
        if (r < 0) {
                cvopt_client_close(client);
                return ctl_report_failure("subscribe", r);
        }

        /* No SA_RESTART: a signal must interrupt poll() so we quit at once. */
        struct sigaction sa = { .sa_handler = on_quit };
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        sa.sa_handler = on_winch;
        sigaction(SIGWINCH, &sa, NULL);
        if (w.tty && terminal_setup() < 0)
                w.tty = false;

        for (uint64_t n = 0;;) {
                json_t *status = NULL, *stats = NULL;
                char *text = NULL;
                r = cvopt_client_request(client, "status", NULL, &text);
                if (r >= 0) {
                        status = json_loads(text, 0, NULL);
                        free(text);
                        text = NULL;
                        r = cvopt_client_request(client, "stats", NULL, &text);
                }
                if (r >= 0) {
                        stats = json_loads(text, 0, NULL);
                        free(text);
                }
                if (r < 0) {
                        json_decref(status);
                        terminal_restore();
                        ret = ctl_report_failure("watch", r);
                        break;
                }
                render(&w, status, stats);
                json_decref(status);
                json_decref(stats);
                if (count && ++n >= count)
                        break;
                if (wait_key(&w, interval_usec))
                        break;
        }
        terminal_restore();
        for (size_t i = 0; i < WATCH_RESULTS; i++)
                json_decref(w.results[i]);
        cvopt_client_close(client);
        return ret;
}

/* SPDX-License-Identifier: MIT */
/* cvoptctl: query and control cvoptd over its socket (libcvopt-client).
 * Human output by default, --json for scripts; exit codes 0 ok, 1 the
 * request failed, 2 usage, 3 the daemon cannot be reached. */

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cvoptctl.h"
#include "macro.h"

/* Requests are answered from the daemon's main loop within milliseconds;
 * a reload loads and verifies a model first, which a large model on a
 * slow device may take seconds for. 30 s leaves room without hanging a
 * script forever on a wedged daemon. */
#define CTL_TIMEOUT_USEC_DEFAULT (30u * 1000000u)

typedef struct Command {
        const char *name;
        const char *usage;
        const char *help;
        int (*run)(const Ctl *ctl, int argc, char **argv);
} Command;

static const Command *find_command(const char *name);

static void print_help(void) {
        printf("Usage: cvoptctl [--socket PATH] [--json] [--timeout SEC] COMMAND [ARGS...]\n\n"
               "Queries and controls cvoptd, the camera classification daemon.\n\n"
               "Commands:\n"
               "  status              one screen: camera, model, backend, fps, latency, clients, last result\n"
               "  stats               counters, per-stage latency percentiles, clients\n"
               "  metrics             the same numbers in Prometheus text format\n"
               "  model               the serving model: labels, input spec, provenance\n"
               "  last                the most recent result\n"
               "  watch               live view, refreshed every second (q quits)\n"
               "  subscribe [-n N]    print results as they come, one per line\n"
               "  classify FILE...    classify image files on the serving model\n"
               "  reload [PATH]       load the model again, or another .cvm (admin)\n"
               "  pause, resume       stop / restart classifying (admin)\n\n"
               "Options:\n"
               "  -s, --socket PATH   the daemon's socket (default $CVOPTD_SOCKET, else " CVOPT_CLIENT_SOCKET_DEFAULT ")\n"
               "  -j, --json          print the daemon's JSON (one object per line) instead of text\n"
               "  -t, --timeout SEC   how long to wait for an answer (default 30)\n"
               "  -h, --help          show this help; COMMAND --help shows a command's\n"
               "      --version       show the version\n\n"
               "Exit status: 0 success, 1 the request failed, 2 usage error, 3 cannot reach the daemon.\n"
               "See cvoptctl(1).\n");
}

static void print_command_help(const Command *c) {
        if (!c)
                return;
        printf("Usage: cvoptctl [--socket PATH] [--json] %s\n\n%s", c->usage, c->help);
}

static const char *connect_hint(int r) {
        switch (-r) {
        case ENOENT:
                return "is cvoptd running (systemctl status cvoptd)? Is the socket path right "
                       "(--socket, or [server] socket in /etc/cvoptd/cvoptd.conf)?";
        case ECONNREFUSED:
                return "the socket exists but nobody listens on it: cvoptd is not running (it may have crashed; "
                       "see journalctl -u cvoptd).";
        case EACCES:
        case EPERM:
                return "the socket's mode and group ([server] mode, group in cvoptd.conf) do not let this user in; "
                       "join that group or run as root.";
        case ETIMEDOUT:
                return "cvoptd did not accept the connection in time; it may be overloaded or stuck.";
        case ENOTDIR:
        case ENAMETOOLONG:
        case EINVAL:
                return "check the socket path (--socket).";
        default:
                return "is cvoptd running, and is the socket path right (--socket)?";
        }
}

int ctl_connect(const Ctl *ctl, CvoptClient **ret_client) {
        int r = cvopt_client_connect(ctl->socket_path, ctl->timeout_usec, ret_client);
        if (r < 0) {
                fprintf(stderr, "cvoptctl: cannot reach cvoptd: %s\nhint: %s\n", cvopt_client_error_detail(),
                        connect_hint(r));
                return EXIT_UNREACHABLE;
        }
        return EXIT_OK;
}

int ctl_report_failure(const char *what, int r) {
        if (r == -CVOPT_CLIENT_E_DAEMON) {
                fprintf(stderr, "cvoptctl: %s: %s (%s)\n", what, cvopt_client_error_detail(), cvopt_client_error_code());
                if (strcmp(cvopt_client_error_code(), "permission-denied") == 0)
                        fprintf(stderr, "hint: admin commands need root or a user/group listed in [server] admin_uids / "
                                        "admin_groups of cvoptd.conf.\n");
                else if (strcmp(cvopt_client_error_detail(), "too many clients") == 0)
                        fprintf(stderr, "hint: cvoptd serves at most [server] max_clients connections at once "
                                        "(cvoptctl stats lists them).\n");
                return EXIT_REQUEST_FAILED;
        }
        fprintf(stderr, "cvoptctl: %s: %s\n", what, cvopt_client_error_detail());
        /* The daemon went away under us: as unreachable as never there. */
        return r == -ECONNRESET ? EXIT_UNREACHABLE : EXIT_REQUEST_FAILED;
}

int ctl_request(CvoptClient *client, const char *cmd, json_t *args, json_t **ret_result) {
        char *args_text = NULL, *result_text = NULL;
        if (args && !(args_text = json_dumps(args, JSON_COMPACT))) {
                fprintf(stderr, "cvoptctl: out of memory\n");
                return EXIT_REQUEST_FAILED;
        }
        int r = cvopt_client_request(client, cmd, args_text, &result_text);
        free(args_text);
        if (r < 0)
                return ctl_report_failure(cmd, r);
        json_error_t e;
        json_t *result = json_loads(result_text, JSON_DECODE_ANY, &e);
        free(result_text);
        if (!result) {
                fprintf(stderr, "cvoptctl: %s: unreadable result: %s\n", cmd, e.text);
                return EXIT_REQUEST_FAILED;
        }
        *ret_result = result;
        return EXIT_OK;
}

static void print_json(json_t *v) {
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (text)
                puts(text);
        free(text);
}

/* Parses a command's own options: only --help (and those in extra). */
static int parse_plain(const Command *c, int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int opt;
        optind = 1;
        while ((opt = getopt_long(argc, argv, "+h", options, NULL)) >= 0) {
                if (opt == 'h') {
                        print_command_help(c);
                        return -1;
                }
                return -2;
        }
        return 0;
}

/* Commands that take no arguments and print one result. */
static int run_simple(const Ctl *ctl, int argc, char **argv, const char *cmd, void (*print)(FILE *, json_t *)) {
        const Command *c = find_command(cmd);
        int p = parse_plain(c, argc, argv);
        if (p == -1)
                return EXIT_OK;
        if (p < 0 || optind < argc) {
                if (optind < argc)
                        fprintf(stderr, "cvoptctl %s: unexpected argument \"%s\"\n", cmd, argv[optind]);
                return EXIT_USAGE;
        }
        CvoptClient *client = NULL;
        json_t *result = NULL;
        int ret = ctl_connect(ctl, &client);
        if (ret != EXIT_OK)
                return ret;
        ret = ctl_request(client, cmd, NULL, &result);
        cvopt_client_close(client);
        if (ret != EXIT_OK)
                return ret;
        if (ctl->json)
                print_json(result);
        else
                print(stdout, result);
        json_decref(result);
        return EXIT_OK;
}

static void print_metrics(FILE *f, json_t *r) {
        const char *text = json_string_value(json_object_get(r, "text"));
        fputs(text ? text : "", f);
}

static void print_last(FILE *f, json_t *r) {
        if (json_is_object(r))
                print_result_line(f, r);
        else
                fprintf(f, "no result yet\n");
}

static void print_admin(FILE *f, json_t *r) {
        if (json_object_get(r, "paused"))
                fprintf(f, "%s\n", json_is_true(json_object_get(r, "paused")) ? "paused" : "resumed");
        else {
                const char *id = json_string_value(json_object_get(r, "id"));
                const char *prev = json_string_value(json_object_get(r, "previous"));
                fprintf(f, "now serving model %s (was %s)\n", id ? id : "?", prev ? prev : "?");
        }
}

static int cmd_status(const Ctl *ctl, int argc, char **argv) {
        return run_simple(ctl, argc, argv, "status", print_status);
}
static int cmd_stats(const Ctl *ctl, int argc, char **argv) {
        return run_simple(ctl, argc, argv, "stats", print_stats);
}
static int cmd_metrics(const Ctl *ctl, int argc, char **argv) {
        return run_simple(ctl, argc, argv, "metrics", print_metrics);
}
static int cmd_model(const Ctl *ctl, int argc, char **argv) {
        return run_simple(ctl, argc, argv, "model", print_model);
}
static int cmd_last(const Ctl *ctl, int argc, char **argv) {
        return run_simple(ctl, argc, argv, "last", print_last);
}
static int cmd_pause(const Ctl *ctl, int argc, char **argv) {
        return run_simple(ctl, argc, argv, "pause", print_admin);
}
static int cmd_resume(const Ctl *ctl, int argc, char **argv) {
        return run_simple(ctl, argc, argv, "resume", print_admin);
}

static int cmd_reload(const Ctl *ctl, int argc, char **argv) {
        const Command *c = find_command("reload");
        int p = parse_plain(c, argc, argv);
        if (p == -1)
                return EXIT_OK;
        if (p < 0 || argc - optind > 1) {
                fprintf(stderr, "cvoptctl reload: takes at most one PATH\n");
                return EXIT_USAGE;
        }
        json_t *args = NULL;
        if (optind < argc) {
                /* The daemon resolves paths from its own working directory
                 * (/), not ours: send an absolute path. */
                char *abs = realpath(argv[optind], NULL);
                if (!abs) {
                        fprintf(stderr, "cvoptctl reload: %s: %s\n", argv[optind], strerror(errno));
                        return EXIT_REQUEST_FAILED;
                }
                args = json_pack("{s:s}", "path", abs);
                free(abs);
        }
        CvoptClient *client = NULL;
        json_t *result = NULL;
        int ret = ctl_connect(ctl, &client);
        if (ret == EXIT_OK)
                ret = ctl_request(client, "reload", args, &result);
        cvopt_client_close(client);
        json_decref(args);
        if (ret != EXIT_OK)
                return ret;
        if (ctl->json)
                print_json(result);
        else
                print_admin(stdout, result);
        json_decref(result);
        return EXIT_OK;
}

static int cmd_classify(const Ctl *ctl, int argc, char **argv) {
        const Command *c = find_command("classify");
        int p = parse_plain(c, argc, argv);
        if (p == -1)
                return EXIT_OK;
        if (p < 0 || optind >= argc) {
                fprintf(stderr, "cvoptctl classify: needs at least one FILE\n");
                return EXIT_USAGE;
        }
        CvoptClient *client = NULL;
        int ret = ctl_connect(ctl, &client);
        if (ret != EXIT_OK)
                return ret;
        for (int i = optind; i < argc; i++) {
                char *text = NULL;
                int r = cvopt_client_classify_file(client, argv[i], &text);
                if (r < 0) {
                        bool closed = r == -CVOPT_CLIENT_E_DAEMON && strcmp(cvopt_client_error_code(), "too-large") == 0;
                        int e = ctl_report_failure(argv[i], r);
                        ret = MAX(ret, e);
                        if (e == EXIT_UNREACHABLE)
                                break;
                        /* The daemon closes the connection after a too-large
                         * request; the next files get a new one. */
                        if (closed) {
                                client = cvopt_client_close(client);
                                e = ctl_connect(ctl, &client);
                                if (e != EXIT_OK)
                                        return e;
                        }
                        continue;
                }
                json_t *result = json_loads(text, 0, NULL);
                free(text);
                if (!result) {
                        fprintf(stderr, "cvoptctl: %s: unreadable result\n", argv[i]);
                        ret = MAX(ret, EXIT_REQUEST_FAILED);
                        continue;
                }
                if (ctl->json) {
                        json_object_set_new(result, "file", json_string(argv[i]));
                        print_json(result);
                } else {
                        printf("%s: ", argv[i]);
                        print_result_line(stdout, result);
                }
                json_decref(result);
                fflush(stdout);
        }
        cvopt_client_close(client);
        return ret;
}

typedef struct SubscribeState {
        bool json;
        uint64_t results_left; /* 0: no limit */
} SubscribeState;

static int on_subscribe_event(const char *line, void *userdata) {
        SubscribeState *s = userdata;
        json_t *e = json_loads(line, 0, NULL);
        bool is_result = e && json_is_string(json_object_get(e, "event")) &&
                         strcmp(json_string_value(json_object_get(e, "event")), "result") == 0;
        if (s->json)
                puts(line);
        else if (!e)
                printf("# unreadable event\n");
        else if (is_result)
                print_result_line(stdout, e);
        else
                print_event_line(stdout, e);
        json_decref(e);
        /* One line at a time, so `cvoptctl subscribe | jq` sees each result
         * as it happens, not when a pipe buffer fills. */
        fflush(stdout);
        if (is_result && s->results_left && --s->results_left == 0)
                return 1;
        return 0;
}

static int cmd_subscribe(const Ctl *ctl, int argc, char **argv) {
        static const struct option options[] = {
                { "count", required_argument, NULL, 'n' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        SubscribeState s = { .json = ctl->json };
        int opt;
        optind = 1;
        while ((opt = getopt_long(argc, argv, "+n:h", options, NULL)) >= 0) {
                switch (opt) {
                case 'n': {
                        char *end;
                        errno = 0;
                        unsigned long long n = strtoull(optarg, &end, 10);
                        if (errno || *end || end == optarg || n == 0 || optarg[0] == '-') {
                                fprintf(stderr, "cvoptctl subscribe: -n wants a positive count, not \"%s\"\n", optarg);
                                return EXIT_USAGE;
                        }
                        s.results_left = n;
                        break;
                }
                case 'h':
                        print_command_help(find_command("subscribe"));
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "cvoptctl subscribe: unexpected argument \"%s\"\n", argv[optind]);
                return EXIT_USAGE;
        }
        CvoptClient *client = NULL;
        int ret = ctl_connect(ctl, &client);
        if (ret != EXIT_OK)
                return ret;
        int r = cvopt_client_subscribe(client);
        if (r < 0) {
                ret = ctl_report_failure("subscribe", r);
                cvopt_client_close(client);
                return ret;
        }
        r = cvopt_client_read_events(client, on_subscribe_event, &s, 0);
        if (r < 0)
                ret = ctl_report_failure("subscribe", r);
        cvopt_client_close(client);
        return ret;
}

static const Command commands[] = {
        { "status", "status", "Shows one screen of the daemon's state: camera, model, backend, fps, latency p50/p99,\n"
                              "clients, uptime and the last result.\n", cmd_status },
        { "stats", "stats", "Shows counters (frames captured/classified/dropped), per-stage latency percentiles,\n"
                            "CPU time per frame, memory, and the connected clients.\n", cmd_stats },
        { "metrics", "metrics", "Prints the daemon's metrics in Prometheus text format (0.0.4), as the daemon\n"
                                "returns them; with --json, the JSON result.\n", cmd_metrics },
        { "model", "model", "Shows the serving model: id, path, input spec, labels and the provenance\n"
                            "(optimizer settings and measured before/after numbers) stored in the .cvm.\n", cmd_model },
        { "last", "last", "Shows the most recent result.\n", cmd_last },
        { "watch", "watch [-i SEC] [-n COUNT]",
          "Live view of status, latency and the latest results, refreshed every SEC seconds\n"
          "(default 1), until q or Ctrl-C. It fits 80x24 and uses plain ANSI escapes. When\n"
          "stdout is not a terminal it prints one plain screen per refresh.\n\n"
          "  -i, --interval SEC  seconds between refreshes (0.1..3600)\n"
          "  -n, --count COUNT   stop after COUNT refreshes\n",
          cmd_watch },
        { "subscribe", "subscribe [-n N]",
          "Prints results as the daemon publishes them, one per line: #SEQ LABEL SCORE ...;\n"
          "other events (camera, model, dropped) as lines starting with '#'. With --json,\n"
          "the protocol's event lines unchanged (for jq).\n\n"
          "  -n, --count N       exit after N results\n",
          cmd_subscribe },
        { "classify", "classify FILE...",
          "Sends each image file (PNG, JPEG, PGM/PPM, BMP) to the daemon and prints its result\n"
          "on the serving model. With --json, one result object per line with a \"file\" member.\n",
          cmd_classify },
        { "reload", "reload [PATH]",
          "Loads the configured model again, or the .cvm at PATH, verifies it, and swaps it in.\n"
          "A model that fails leaves the old one serving, and the command fails (exit 1).\n"
          "Admin: root, or admin_uids/admin_groups in cvoptd.conf.\n",
          cmd_reload },
        { "pause", "pause", "Stops classifying (the camera stays open). Admin.\n", cmd_pause },
        { "resume", "resume", "Restarts classifying after pause. Admin.\n", cmd_resume },
};

static const Command *find_command(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (strcmp(commands[i].name, name) == 0)
                        return &commands[i];
        return NULL;
}

static int set_timeout(Ctl *ctl, const char *arg) {
        char *end;
        double sec = strtod(arg, &end);

        if (*end || end == arg || !(sec > 0 && sec <= 86400)) {
                fprintf(stderr, "cvoptctl: --timeout wants seconds in (0, 86400], not \"%s\"\n", arg);
                return -1;
        }
        ctl->timeout_usec = (uint64_t) (sec * 1e6);
        return 0;
}

/* The global options may also follow the command ("cvoptctl stats
 * --json"): they are taken out of the command's arguments here, up to a
 * "--". Sets *ret_argc to what is left. */
static int take_global_options(Ctl *ctl, int argc, char **argv, int *ret_argc) {
        int out = 1, i = 1;

        for (; i < argc; i++) {
                const char *a = argv[i];

                if (streq(a, "--"))
                        break;
                if (streq(a, "--json") || streq(a, "-j")) {
                        ctl->json = true;
                } else if (streq(a, "--socket") || streq(a, "-s") || streq(a, "--timeout") || streq(a, "-t")) {
                        if (i + 1 >= argc) {
                                fprintf(stderr, "cvoptctl: %s needs a value\n", a);
                                return EXIT_USAGE;
                        }
                        if (streq(a, "--timeout") || streq(a, "-t")) {
                                if (set_timeout(ctl, argv[i + 1]) < 0)
                                        return EXIT_USAGE;
                        } else {
                                ctl->socket_path = argv[i + 1];
                        }
                        i++;
                } else if (startswith(a, "--socket=")) {
                        ctl->socket_path = a + strlen("--socket=");
                } else if (startswith(a, "--timeout=")) {
                        if (set_timeout(ctl, a + strlen("--timeout=")) < 0)
                                return EXIT_USAGE;
                } else {
                        argv[out++] = argv[i];
                }
        }
        for (; i < argc; i++)
                argv[out++] = argv[i];
        argv[out] = NULL;
        *ret_argc = out;
        return EXIT_OK;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "socket", required_argument, NULL, 's' },
                { "json", no_argument, NULL, 'j' },
                { "timeout", required_argument, NULL, 't' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        Ctl ctl = { .timeout_usec = CTL_TIMEOUT_USEC_DEFAULT };
        int opt;

        ctl.socket_path = getenv("CVOPTD_SOCKET");
        if (!ctl.socket_path || !*ctl.socket_path)
                ctl.socket_path = CVOPT_CLIENT_SOCKET_DEFAULT;
        /* '+': options after the command belong to the command. */
        while ((opt = getopt_long(argc, argv, "+s:jt:h", options, NULL)) >= 0) {
                switch (opt) {
                case 's':
                        ctl.socket_path = optarg;
                        break;
                case 'j':
                        ctl.json = true;
                        break;
                case 't':
                        if (set_timeout(&ctl, optarg) < 0)
                                return EXIT_USAGE;
                        break;
                case 'h':
                        print_help();
                        return EXIT_OK;
                case 'V':
                        printf("cvoptctl %s\n", PROJECT_VERSION);
                        return EXIT_OK;
                default:
                        fprintf(stderr, "Try 'cvoptctl --help'.\n");
                        return EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                fprintf(stderr, "cvoptctl: no command given. Try 'cvoptctl --help'.\n");
                return EXIT_USAGE;
        }
        const Command *c = find_command(argv[optind]);
        if (c) {
                int r = take_global_options(&ctl, argc - optind, argv + optind, &argc);

                if (r != EXIT_OK)
                        return r;
                argc += optind;
        }
        if (!c) {
                if (strcmp(argv[optind], "help") == 0) {
                        print_help();
                        return EXIT_OK;
                }
                fprintf(stderr, "cvoptctl: unknown command \"%s\". Try 'cvoptctl --help'.\n", argv[optind]);
                return EXIT_USAGE;
        }
        return c->run(&ctl, argc - optind, argv + optind);
}

/* SPDX-License-Identifier: MIT */
#pragma once

/* What the cvopt commands share: the command table entry type, the input
 * spec flags every command that opens a model accepts, opening a model of
 * either format, and small output helpers. */

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cvopt/cvopt.h"
#include "cvopt/engine.h"
#include "cvopt/image.h"
#include "cvopt/model.h"
#include "macro.h"

/* Exit codes of every command (the documented CLI contract): EXIT_SUCCESS
 * (0), EXIT_FAILURE (1: the operation failed and one "cvopt: ..." line was
 * printed), EXIT_USAGE (2: bad command line, the usage hint was printed). */
#define EXIT_USAGE 2

typedef struct CliCommand {
        const char *name;
        const char *summary;
        int (*run)(int argc, char **argv); /* returns an exit code */
        void (*help)(FILE *f);
} CliCommand;

int cmd_convert(int argc, char **argv);
void cmd_convert_help(FILE *f);
int cmd_info(int argc, char **argv);
void cmd_info_help(FILE *f);
int cmd_run(int argc, char **argv);
void cmd_run_help(FILE *f);
int cmd_eval(int argc, char **argv);
void cmd_eval_help(FILE *f);
int cmd_optimize(int argc, char **argv);
void cmd_optimize_help(FILE *f);
int cmd_bench(int argc, char **argv);
void cmd_bench_help(FILE *f);
int cmd_analyze(int argc, char **argv);
void cmd_analyze_help(FILE *f);

/* Progress lines are for people: only on a terminal, never with --json. */
static inline bool cli_show_progress(bool json) {
        return !json && isatty(STDERR_FILENO);
}

/* Input spec flags (--color, --mean, --std, --resize). A field not given
 * is left to the model: its .cvm spec, its ONNX "preprocessing" metadata,
 * or what the input shape implies. */
typedef struct InputSpecFlags {
        int color;  /* CvoptColor, 0: not given */
        int resize; /* CvoptResize, 0: not given */
        uint32_t n_mean, n_std; /* 0: not given; else 1 or 3 values */
        float mean[3], std[3];
} InputSpecFlags;

/* getopt_long ids of the spec flags; commands number their own from
 * ARG_COMMAND_FIRST. */
enum {
        ARG_COLOR = 0x100,
        ARG_MEAN,
        ARG_STD,
        ARG_RESIZE,
        ARG_COMMAND_FIRST,
};

#define INPUT_SPEC_LONG_OPTIONS                                     \
        { "color", required_argument, NULL, ARG_COLOR },           \
        { "mean", required_argument, NULL, ARG_MEAN },             \
        { "std", required_argument, NULL, ARG_STD },               \
        { "resize", required_argument, NULL, ARG_RESIZE }

#define INPUT_SPEC_HELP                                                                     \
        "Input spec (for .onnx models; override the model's own spec):\n"                   \
        "      --color gray|rgb|bgr     colour the model expects\n"                          \
        "      --mean M[,M,M]           per-channel mean, in 0..1 pixel units\n"             \
        "      --std S[,S,S]            per-channel standard deviation, in 0..1 units\n"     \
        "      --resize stretch|center-crop|letterbox\n"                                    \
        "                               how images of another size are fitted\n"

/* Handles one spec flag: 1 when opt was one (stored in f), 0 when it is
 * not a spec flag, -EINVAL (message printed) for a bad value. */
int input_spec_flags_parse(InputSpecFlags *f, int opt, const char *arg);
bool input_spec_flags_any(const InputSpecFlags *f);

/* Opens a model of either format, detected from its content: a .cvm is
 * loaded (spec flags override its stored spec, except the size); an ONNX
 * model is imported, given its input spec (flags, else its "preprocessing"
 * metadata, else derived from the NCHW input shape) and optimized with
 * cvopt_graph_optimize(). Errors leave a detail naming the file. */
int model_open_any(const char *path, const InputSpecFlags *flags, CvoptModel **ret_model);

/* Label of class index i: the model's label, or "class N" in buf. */
const char *model_label(const CvoptModel *m, uint32_t i, char *buf, size_t size);

/* Prints "cvopt: DETAIL" for a failed call returning r: the error detail
 * when there is one, else the strerror of r prefixed with context. */
void log_error(int r, const char *context);

/* Prints "cvopt: MESSAGE" and the "--help" hint for command; returns EXIT_USAGE. */
int usage_error(const char *command, const char *format, ...) _printf_(2, 3);
/* Only the hint, after getopt_long or a flag parser printed the message. */
int usage_hint(const char *command);

/* Reads a whole file (at most max_bytes); detail names the file. */
/* A decimal count in 0..max (all of arg, no sign): 0 or -EINVAL. */
int parse_count(const char *arg, unsigned long max, unsigned long *ret);

int read_file_full(const char *path, size_t max_bytes, void **ret_data, size_t *ret_size);

/* Counts over a graph, for info and convert's summary. */
typedef struct GraphStats {
        uint64_t n_params;     /* elements of constant tensors */
        uint64_t params_bytes; /* their in-memory bytes */
} GraphStats;
void graph_stats(const CvoptGraph *g, GraphStats *ret);

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptModel *, cvopt_model_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptSession *, cvopt_session_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptImage *, cvopt_image_free);
static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
        *f = NULL;
}

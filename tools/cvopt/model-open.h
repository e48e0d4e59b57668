/* SPDX-License-Identifier: MIT */
#pragma once

/* Opening a model for any cvopt command: a .cvm (which carries its input
 * spec) or an .onnx (imported, optimized, and given the input spec from
 * the --color/--mean/--std/--resize flags, since ONNX does not record how
 * pixels were normalized). */

#include <stdbool.h>

#include "cvopt/cvopt.h"

typedef struct InputSpecFlags {
        bool any;
        bool has_color, has_resize;
        CvoptColor color;
        CvoptResize resize;
        unsigned n_mean, n_std; /* 0, 1 (all channels) or 3 */
        float mean[3], std[3];
} InputSpecFlags;

/* getopt_long entries for the four flags, and their handler: returns 1 if
 * opt was one of them (and it parsed), 0 if not, or a negative error. */
#define INPUT_SPEC_OPTIONS                                              \
        { "color", required_argument, NULL, INPUT_SPEC_OPT_COLOR },     \
        { "mean", required_argument, NULL, INPUT_SPEC_OPT_MEAN },       \
        { "std", required_argument, NULL, INPUT_SPEC_OPT_STD },         \
        { "resize", required_argument, NULL, INPUT_SPEC_OPT_RESIZE }
enum {
        INPUT_SPEC_OPT_COLOR = 0x1000,
        INPUT_SPEC_OPT_MEAN,
        INPUT_SPEC_OPT_STD,
        INPUT_SPEC_OPT_RESIZE,
};
int input_spec_flags_parse(InputSpecFlags *f, int opt, const char *arg);

#define INPUT_SPEC_HELP                                                                                   \
        "  --color gray|rgb|bgr     channel order the .onnx model was trained on\n"                       \
        "  --mean M[,M,M]           per-channel mean in 0-1 pixel units (default 0)\n"                    \
        "  --std S[,S,S]            per-channel std in 0-1 pixel units (default 1)\n"                     \
        "  --resize stretch|center-crop|letterbox   how other image sizes are fitted (default stretch)\n"

/* True if the file starts with the .cvm magic. */
bool model_path_is_cvm(const char *path);

/* Loads path (.cvm or .onnx) ready to run: for .onnx the graph is
 * optimized and the input spec comes from the flags (defaults: size from
 * the NCHW input, gray for 1 channel, rgb for 3, mean 0, std 1). Flags
 * given for a .cvm are an error: it carries its own spec. */
int model_open_any(const char *path, const InputSpecFlags *flags, CvoptModel **ret_model);

/* SPDX-License-Identifier: MIT */
#pragma once

/* A loaded, verified model ready to serve: the model, an engine session,
 * a preprocessor for its input spec, and the postprocessing (softmax,
 * top-k). Made on the main loop (load/reload), then owned by the worker. */

#include <stdint.h>

#include "conf.h"
#include "cvopt/engine.h"
#include "cvopt/model.h"
#include "preprocess.h"

#define INFERENCE_MAX_TOP 100

typedef struct Inference {
        char *path;
        CvoptModel *model;
        CvoptSession *session;
        Preprocessor *preprocessor;
        uint32_t n_classes;
        float *scores; /* n_classes, scratch for postprocessing */
        char backend[32];
        char backend_note[256]; /* why the configured backend is not used, or "" */
} Inference;

typedef struct TopClass {
        uint32_t cls;
        float score;
} TopClass;

typedef struct Prediction {
        uint32_t n_top;
        TopClass top[INFERENCE_MAX_TOP];
} Prediction;

/* Loads path, checks the graph has one float input matching the input
 * spec and one output of n_labels scores, creates the session on the
 * configured backend and runs it once on a mean-gray input. Any failure
 * leaves detail naming the file. */
int inference_load(const char *path, const Conf *conf, Inference **ret);
Inference *inference_free(Inference *inf);
DEFINE_TRIVIAL_CLEANUP_FUNC(Inference *, inference_free);

/* The input tensor's float buffer the preprocessor writes into. */
float *inference_input(Inference *inf);

/* Runs the session and postprocesses: softmax (unless the output already is
 * a distribution), then the top_k classes with score >= min_score. */
int inference_run(Inference *inf, uint32_t top_k, double min_score, Prediction *ret);

const char *inference_label(const Inference *inf, uint32_t cls);

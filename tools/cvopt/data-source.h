/* SPDX-License-Identifier: MIT */
#pragma once

/* A dataset seen through a model's input spec: the callbacks evaluation
 * and calibration read samples with. */

#include <stddef.h>

#include "cvopt/cvopt.h"
#include "cvopt/dataset.h"

typedef struct DataSource {
        const CvoptDataset *dataset;
        const CvoptInputSpec *spec;
        const size_t *indices; /* subset of the dataset, or NULL for all */
        size_t count;
        /* IDX datasets hold one image size: it must be the model's (a
         * mismatch means the wrong dataset, not something to resize).
         * Image folders are resized by the spec's policy. */
        bool exact_size;
} DataSource;

/* Checks dataset against model: class count and, for IDX data, image size
 * and channels. Fills s for all items (or the first limit, if non-zero). */
int data_source_init(DataSource *s, const CvoptDataset *dataset, const CvoptModel *model, size_t limit);

/* EvalFetch */
int data_source_fetch(void *userdata, size_t i, float *ret_input, size_t input_count, int *ret_label);
/* CalibrationFeed */
int data_source_feed(void *userdata, size_t i, CvoptTensor *input);

/* SPDX-License-Identifier: MIT */
#pragma once

/* The dataset object shared by the dataset readers (dataset-idx.c,
 * dataset-dir.c) and the generic accessors (dataset.c). */

#include <stddef.h>
#include <stdint.h>

#include "cvopt/dataset.h"

typedef enum DatasetKind {
        DATASET_KIND_IDX,
        DATASET_KIND_DIR,
} DatasetKind;

struct CvoptDataset {
        DatasetKind kind;
        char *spec;
        size_t count;
        uint32_t n_classes;
        char **class_names; /* n_classes names, or NULL */
        int32_t *labels;    /* count labels, each in 0..n_classes-1 */

        /* IDX: every image in one buffer, count * height * width * channels. */
        uint8_t *idx_buffer;          /* owned */
        const uint8_t *idx_pixels;    /* inside idx_buffer */
        uint32_t width, height, channels;

        /* Folder: one file per item. */
        char **paths;
};

int dataset_open_idx(CvoptDataset *ds, const char *images_path, const char *labels_path,
                     const char *const *class_names, uint32_t n_known_classes);
int dataset_open_dir(CvoptDataset *ds, const char *path);

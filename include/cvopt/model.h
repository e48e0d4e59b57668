/* SPDX-License-Identifier: MIT */
#pragma once

/* A model is a graph plus what it takes to feed and read it: the input
 * spec (how camera or dataset pixels become the input tensor), the class
 * labels, and provenance. On disk it is a .cvm file (docs/model-format.md). */

#include <stdint.h>

#include "cvopt/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum CvoptColor {
        CVOPT_COLOR_GRAY = 1,
        CVOPT_COLOR_RGB = 2,
        CVOPT_COLOR_BGR = 3,
} CvoptColor;

typedef enum CvoptResize {
        CVOPT_RESIZE_STRETCH = 1,     /* scale each axis to the input size */
        CVOPT_RESIZE_CENTER_CROP = 2, /* scale the short side, crop the centre */
        CVOPT_RESIZE_LETTERBOX = 3,   /* scale the long side, pad with mean */
} CvoptResize;

/* Pixels (0..255) become input values as ((p / 255) - mean[c]) / std[c],
 * in planar NCHW order with batch 1. */
typedef struct CvoptInputSpec {
        uint32_t width, height;
        CvoptColor color;
        float mean[3];
        float std[3];
        CvoptResize resize;
} CvoptInputSpec;

const char *cvopt_color_name(CvoptColor c);
int cvopt_color_from_name(const char *name); /* CvoptColor or -EINVAL */
const char *cvopt_resize_name(CvoptResize r);
int cvopt_resize_from_name(const char *name); /* CvoptResize or -EINVAL */
uint32_t cvopt_color_channels(CvoptColor c);

typedef struct CvoptModel {
        CvoptGraph *graph;
        CvoptInputSpec input;
        uint32_t n_labels;
        char **labels;
        /* Free-form JSON object: source model hash, optimizer settings,
         * measured before/after numbers. May be NULL. */
        char *provenance_json;
        /* 16 hex digits identifying the file's content (set on load/save). */
        char id[17];
} CvoptModel;

int cvopt_model_new(CvoptModel **ret_model);
CvoptModel *cvopt_model_free(CvoptModel *m);

/* Maps and verifies a .cvm file: magic, version, every section's CRC,
 * every count, offset, dtype and shape. Constant tensors point into the
 * mapping. On failure the detail names the file and what is wrong. */
int cvopt_model_load(const char *path, CvoptModel **ret_model);

/* Same, from memory (copied); for tests and fuzzing. */
int cvopt_model_load_buffer(const void *data, size_t size, CvoptModel **ret_model);

/* Writes atomically (temporary file + rename). */
int cvopt_model_save(CvoptModel *m, const char *path);

/* Serialized size in bytes, without writing. */
int cvopt_model_serialized_size(const CvoptModel *m, uint64_t *ret_size);

#ifdef __cplusplus
}
#endif

/* SPDX-License-Identifier: MIT */
#pragma once

/* Camera frame -> model input, in one pass over the frame: the pixel
 * format conversion (YUYV, NV12, GREY, RGB24, or MJPEG decoded by
 * libturbojpeg at the smallest scale that still covers the model input)
 * feeds the engine's resize plan (cvopt/image.h), whose row writer
 * normalizes straight into the input tensor. The row writer is the only
 * part that knows the input's dtype: preprocess_frame_float() writes
 * float; an int8 writer slots in beside it for quantized inputs. */

#include "cvopt/image.h"
#include "cvopt/model.h"
#include "source.h"

typedef struct Preprocessor Preprocessor;

int preprocessor_new(const CvoptInputSpec *spec, Preprocessor **ret);
Preprocessor *preprocessor_free(Preprocessor *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Preprocessor *, preprocessor_free);

/* Fills values (C x H x W planar floats, as the spec says) from the frame.
 * Checks the frame's size and bytes_used first: -CVOPT_E_DATA (detail) for
 * a short or malformed frame, which the caller counts and skips. */
int preprocess_frame_float(Preprocessor *p, const Frame *f, float *values);

/* The same for a decoded image (the classify command). */
int preprocess_image_float(Preprocessor *p, const CvoptImage *img, float *values);

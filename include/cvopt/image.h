/* SPDX-License-Identifier: MIT */
#pragma once

/* Images and preprocessing. An image is 8-bit gray or RGB, interleaved
 * (HWC), owned by its struct. Preprocessing turns an image (or any source
 * of pixel rows, such as a camera frame) into the model's input tensor as
 * the input spec in cvopt/model.h says: colour conversion, resize by the
 * spec's policy, normalization.
 *
 * Both the optimizer (evaluation, calibration) and the daemon (replay
 * source, camera frames) use this code, so the accuracy the optimizer
 * measures is computed on exactly the pixels the device sees. */

#include <stddef.h>
#include <stdint.h>

#include "cvopt/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest width or height accepted from a file or a caller. A 16384 x
 * 16384 RGB image is 768 MiB, far above any camera frame or dataset image
 * we expect; anything larger is treated as corrupt or hostile rather than
 * allocated. */
#define CVOPT_IMAGE_MAX_DIMENSION 16384u

typedef struct CvoptImage {
        uint32_t width, height;
        uint32_t channels; /* 1 (gray) or 3 (R, G, B in this order) */
        /* height * width * channels bytes, rows top to bottom, no padding
         * between rows: pixel (x, y) channel c is at
         * pixels[(y * width + x) * channels + c]. Owned. */
        uint8_t *pixels;
} CvoptImage;

/* A zero-filled image. -EINVAL for a zero or too large size or channels
 * other than 1 and 3, -ENOMEM. */
int cvopt_image_new(uint32_t width, uint32_t height, uint32_t channels, CvoptImage **ret_image);
CvoptImage *cvopt_image_free(CvoptImage *img);

/* Decodes PNG, JPEG, PGM/PPM (binary PNM) or BMP; the format is detected
 * from the content, never from a name. Gray and gray+alpha give 1 channel,
 * everything else 3 (alpha is dropped, not blended; palette images are
 * expanded). 16-bit PNG/PNM samples are reduced to 8 bits. Fails with
 * -CVOPT_E_DATA (unknown format, corrupt or truncated data, a dimension
 * above CVOPT_IMAGE_MAX_DIMENSION, or a header claiming more than 2048
 * decoded bytes per byte of data, beyond 1 MiB: all checked before any
 * pixel memory is allocated) or -ENOMEM, with detail saying why. Safe on
 * hostile data (fuzzed); see engine/data/image.c for the checks added in
 * front of Debian's stb_image 2.27. */
int cvopt_image_decode(const void *data, size_t size, CvoptImage **ret_image);

/* Reads and decodes a file; the detail names the file. Files larger than
 * 256 MiB are refused (-EFBIG) before they are read. */
int cvopt_image_load(const char *path, CvoptImage **ret_image);

/* Lossless writers. PNG for any image; PNM writes PGM (P5) for gray and
 * PPM (P6) for RGB. Both write a temporary file and rename it into place. */
int cvopt_image_save_png(const CvoptImage *img, const char *path);
int cvopt_image_save_pnm(const CvoptImage *img, const char *path);

/* ---- Preprocessing -------------------------------------------------- */

/* Colour conversion. Sources are gray or RGB; the model wants spec->color:
 *   gray from RGB: BT.601 luma, Y = 0.299 R + 0.587 G + 0.114 B (the
 *     weights of PIL's convert("L") and OpenCV's RGB2GRAY, which is what
 *     training pipelines use), kept as a float, not rounded;
 *   RGB/BGR from gray: the gray value in all three channels;
 *   BGR: R and B swapped.
 *
 * Resize (spec->resize), always with the sample grid of pixel centres
 * (source x = (out x + 0.5) * scale - 0.5, as OpenCV and PIL do):
 *   STRETCH: each axis scaled to the input size independently;
 *   CENTER_CROP: scaled so the short side fits, the long side's excess is
 *     cropped equally from both ends;
 *   LETTERBOX: scaled so the long side fits, the image centred, the bands
 *     around it filled with the mean, i.e. input value exactly 0.
 * Interpolation is bilinear. When an axis shrinks by more than 2x,
 * bilinear would skip source pixels and alias (a 640x480 frame to 28x28
 * reads only 4 of every ~20 pixels), so that axis uses area averaging
 * instead: each output pixel is the mean of the source pixels it covers,
 * fractional ones weighted by their coverage.
 * When the source already has the input size, every output pixel is
 * exactly one source pixel (no interpolation at all).
 *
 * Normalization: value = (p / 255.0f - mean[c]) / std[c], in float. */

/* The model's input tensor from an image: ret_values holds
 * C * spec->height * spec->width floats, planar (all of channel 0 first),
 * C = cvopt_color_channels(spec->color). -EINVAL (with detail) for a bad
 * spec (zero or too large size, unknown colour or resize policy, std <= 0)
 * or image. Allocates a little scratch memory; thread-safe. */
int cvopt_preprocess_image(const CvoptInputSpec *spec, const CvoptImage *img, float *ret_values);

/* The same work in two separable steps, for sources that are not a
 * CvoptImage (camera frames in YUYV or NV12) and outputs that are not
 * float (the daemon's int8 input): a plan made once per source size and
 * spec, a pixel source, and a row writer.
 *
 * Pixel source: writes source row y, columns [x_begin, x_end), converted
 * to the spec's colour (C channels, in spec order), interleaved, as floats
 * on the 0..255 scale, into ret_row ((x_end - x_begin) * C floats).
 * Returns 0 or a negative error, which aborts the run.
 *
 * Row writer: receives output row y (0 <= y < spec->height) once, in
 * order. Columns [x_begin, x_end) come from the image, interleaved C floats
 * on the 0..255 scale in row (row[(x - x_begin) * C + c]); the columns
 * outside that range are letterbox padding. row is NULL when the whole
 * row is padding (x_begin == x_end == 0 then). Returns 0 or a negative
 * error, which aborts the run. */
typedef int (*CvoptPixelSourceFunc)(void *userdata, uint32_t y, uint32_t x_begin, uint32_t x_end, float *ret_row);
typedef int (*CvoptRowWriterFunc)(void *userdata, uint32_t y, uint32_t x_begin, uint32_t x_end, const float *row);

typedef struct CvoptResizePlan CvoptResizePlan;

/* Precomputes the sampling taps for a source of src_width x src_height
 * pixels and this spec. A plan owns scratch rows: use it from one thread
 * at a time (one plan per thread). */
int cvopt_resize_plan_new(const CvoptInputSpec *spec, uint32_t src_width, uint32_t src_height,
                          CvoptResizePlan **ret_plan);
CvoptResizePlan *cvopt_resize_plan_free(CvoptResizePlan *plan);

/* Runs the plan: asks source for the rows it needs (each at most a few
 * times; only the columns the output reads) and hands every output row to
 * writer. Returns 0 or the first error of source or writer. */
int cvopt_resize_plan_run(CvoptResizePlan *plan,
                          CvoptPixelSourceFunc source, void *source_userdata,
                          CvoptRowWriterFunc writer, void *writer_userdata);

/* The pixel source for a CvoptImage: userdata is a CvoptPixelSourceImage. */
typedef struct CvoptPixelSourceImage {
        const CvoptImage *image;
        CvoptColor color; /* the spec's colour: what to convert to */
} CvoptPixelSourceImage;
int cvopt_pixel_source_image(void *userdata, uint32_t y, uint32_t x_begin, uint32_t x_end, float *ret_row);

/* The writer of normalized planar floats: userdata is a
 * CvoptRowWriterFloat. Padding columns get 0 (the normalized mean). */
typedef struct CvoptRowWriterFloat {
        const CvoptInputSpec *spec;
        float *values; /* C * height * width, planar */
} CvoptRowWriterFloat;
int cvopt_row_writer_float(void *userdata, uint32_t y, uint32_t x_begin, uint32_t x_end, const float *row);

/* The writer of quantized planar int8 values (the daemon's int8 input):
 * userdata is a CvoptRowWriterInt8. Each normalized value v becomes
 * q = saturate(round_half_to_even(v / scale) + zero_point) in -128..127,
 * the ONNX QuantizeLinear rule; padding columns get zero_point (v = 0). */
typedef struct CvoptRowWriterInt8 {
        const CvoptInputSpec *spec;
        float scale; /* > 0 */
        int32_t zero_point;
        int8_t *values; /* C * height * width, planar */
} CvoptRowWriterInt8;
int cvopt_row_writer_int8(void *userdata, uint32_t y, uint32_t x_begin, uint32_t x_end, const float *row);

/* Checks a spec for preprocessing: sizes 1..CVOPT_IMAGE_MAX_DIMENSION,
 * known colour and resize policy, std > 0 and finite mean/std.
 * 0 or -EINVAL with detail. */
int cvopt_input_spec_check(const CvoptInputSpec *spec);

#ifdef __cplusplus
}
#endif

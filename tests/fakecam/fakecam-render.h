/* SPDX-License-Identifier: MIT */
#pragma once

#include <linux/videodev2.h>
#include <stddef.h>
#include <stdint.h>

#include "cvopt/image.h"

/* A negotiated format: size, fourcc, and the stride with its padding
 * (bytes after each line's pixels, filled with 0xff). */
typedef struct FrameLayout {
        uint32_t width, height, fourcc;
        uint32_t bytes_per_line, line_pad;
} FrameLayout;

/* Line and image sizes of a format, as the driver reports them
 * (bytes_per_line 0 for MJPEG). */
void frame_geometry(uint32_t fourcc, uint32_t w, uint32_t h, uint32_t line_pad, uint32_t *ret_bytes_per_line,
                    uint32_t *ret_size_image);

/* Writes img as one frame of layout f into mem (length bytes, at least the
 * format's size image); returns the bytes used. Aborts if JPEG encoding
 * fails. */
uint32_t frame_render(const FrameLayout *f, const CvoptImage *img, uint8_t *mem, size_t length);

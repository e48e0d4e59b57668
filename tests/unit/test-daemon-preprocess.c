/* SPDX-License-Identifier: MIT */
/* cvoptd's pixel readers: coloured frames in every uncompressed camera
 * format, full and limited range, with padded lines, must come out as the
 * colours they were made from. The integration suite runs every format
 * through the real V4L2 path, but on Fashion-MNIST, which is gray: there
 * R and B, or U and V, look the same. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cvopt/errors.h"
#include "preprocess.h"

/* 4x2 pixels: two 2x2 blocks of one colour each, so 4:2:2 and 4:2:0
 * chroma lose nothing and every difference is the reader's. */
#define W 4u
#define H 2u
/* Bytes after each line, filled with 0xff: a reader that ignored
 * bytes_per_line would take them for pixels. */
#define LINE_PAD 5u

static const uint8_t colours[2][3] = {
        { 200, 100, 50 },  /* orange: R > G > B */
        { 30, 160, 220 },  /* sky blue: B > G > R */
};

static const uint8_t *pixel_rgb(uint32_t x) {
        return colours[x / 2];
}

static uint8_t round_byte(double v) {
        return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t) (v + 0.5);
}

/* BT.601, the conversion the daemon inverts. */
static void rgb_to_yuv(const uint8_t rgb[3], bool full_range, uint8_t *ret_y, uint8_t *ret_u, uint8_t *ret_v) {
        double Y = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
        double U = (rgb[2] - Y) / 1.772, V = (rgb[0] - Y) / 1.402;
        if (full_range) {
                *ret_y = round_byte(Y);
                *ret_u = round_byte(U + 128);
                *ret_v = round_byte(V + 128);
        } else {
                *ret_y = round_byte(16 + Y * 219 / 255);
                *ret_u = round_byte(128 + U * 224 / 255);
                *ret_v = round_byte(128 + V * 224 / 255);
        }
}

static uint32_t bytes_per_pixel(CameraFormat format) {
        return format == CAMERA_FORMAT_YUYV ? 2 : format == CAMERA_FORMAT_RGB24 ? 3 : 1;
}

/* Writes the test picture into buf; returns the frame describing it. */
static Frame make_frame(CameraFormat format, bool full_range, uint8_t *buf, size_t size) {
        uint32_t bpl = W * bytes_per_pixel(format) + LINE_PAD;
        uint32_t lines = format == CAMERA_FORMAT_NV12 ? H + H / 2 : H;
        assert_true((size_t) bpl * lines <= size);
        memset(buf, 0xff, size);
        for (uint32_t y = 0; y < H; y++)
                for (uint32_t x = 0; x < W; x++) {
                        const uint8_t *rgb = pixel_rgb(x);
                        uint8_t *line = buf + (size_t) y * bpl;
                        uint8_t Y, U, V;
                        rgb_to_yuv(rgb, full_range, &Y, &U, &V);
                        switch (format) {
                        case CAMERA_FORMAT_YUYV:
                                line[x * 2] = Y;
                                line[x * 2 + 1] = x % 2 ? V : U;
                                break;
                        case CAMERA_FORMAT_NV12: {
                                uint8_t *chroma = buf + (size_t) bpl * H + (size_t) (y / 2) * bpl;
                                line[x] = Y;
                                chroma[x & ~1u] = U;
                                chroma[(x & ~1u) + 1] = V;
                                break;
                        }
                        case CAMERA_FORMAT_GREY:
                                line[x] = round_byte(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]);
                                break;
                        case CAMERA_FORMAT_RGB24:
                                memcpy(line + x * 3, rgb, 3);
                                break;
                        default:
                                fail();
                        }
                }
        return (Frame) {
                .format = format,
                .width = W,
                .height = H,
                .bytes_per_line = bpl,
                .data = buf,
                .bytes_used = bpl * lines,
                .truth = -1,
                .full_range = full_range,
        };
}

/* values is C x H x W, normalized with mean 0, std 1: value * 255 is the
 * pixel. Two levels of tolerance: the 8-bit YUV of the frame. */
static void check_values(const float *values, CvoptColor color, CameraFormat format) {
        for (uint32_t y = 0; y < H; y++)
                for (uint32_t x = 0; x < W; x++) {
                        const uint8_t *rgb = pixel_rgb(x);
                        float want[3];
                        if (color == CVOPT_COLOR_GRAY || format == CAMERA_FORMAT_GREY) {
                                float gray = 0.299f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2];
                                want[0] = want[1] = want[2] = gray;
                        } else if (color == CVOPT_COLOR_BGR) {
                                want[0] = rgb[2], want[1] = rgb[1], want[2] = rgb[0];
                        } else {
                                want[0] = rgb[0], want[1] = rgb[1], want[2] = rgb[2];
                        }
                        for (uint32_t c = 0; c < cvopt_color_channels(color); c++) {
                                float got = values[(size_t) c * W * H + y * W + x] * 255.f;
                                if (got < want[c] - 2.f || got > want[c] + 2.f)
                                        fail_msg("%s, %s: pixel (%u, %u) channel %u is %.1f, want %.1f",
                                                 camera_format_name(format), cvopt_color_name(color), x, y, c,
                                                 (double) got, (double) want[c]);
                        }
                }
}

static void test_colours(void **state) {
        static const CameraFormat formats[] = { CAMERA_FORMAT_YUYV, CAMERA_FORMAT_NV12, CAMERA_FORMAT_GREY,
                                                CAMERA_FORMAT_RGB24 };
        static const CvoptColor model_colours[] = { CVOPT_COLOR_RGB, CVOPT_COLOR_BGR, CVOPT_COLOR_GRAY };
        uint8_t buf[256];
        float values[3 * W * H];
        (void) state;

        for (size_t m = 0; m < ELEMENTSOF(model_colours); m++) {
                CvoptInputSpec spec = { .width = W, .height = H, .color = model_colours[m], .mean = { 0, 0, 0 },
                                        .std = { 1, 1, 1 }, .resize = CVOPT_RESIZE_STRETCH };
                _cleanup_(preprocessor_freep) Preprocessor *p = NULL;
                assert_int_equal(preprocessor_new(&spec, &p), 0);
                for (size_t f = 0; f < ELEMENTSOF(formats); f++)
                        for (int full_range = 0; full_range <= 1; full_range++) {
                                Frame frame = make_frame(formats[f], full_range, buf, sizeof buf);
                                assert_int_equal(preprocess_frame_float(p, &frame, values), 0);
                                check_values(values, model_colours[m], formats[f]);
                        }
        }
}

/* A frame one byte short of its last line, or with lines shorter than its
 * pixels, is refused before any read. */
static void test_short_frames(void **state) {
        static const CameraFormat formats[] = { CAMERA_FORMAT_YUYV, CAMERA_FORMAT_NV12, CAMERA_FORMAT_GREY,
                                                CAMERA_FORMAT_RGB24 };
        CvoptInputSpec spec = { .width = W, .height = H, .color = CVOPT_COLOR_RGB, .mean = { 0, 0, 0 },
                                .std = { 1, 1, 1 }, .resize = CVOPT_RESIZE_STRETCH };
        _cleanup_(preprocessor_freep) Preprocessor *p = NULL;
        uint8_t buf[256];
        float values[3 * W * H];
        (void) state;

        assert_int_equal(preprocessor_new(&spec, &p), 0);
        for (size_t f = 0; f < ELEMENTSOF(formats); f++) {
                Frame frame = make_frame(formats[f], true, buf, sizeof buf);
                frame.bytes_used--;
                assert_int_equal(preprocess_frame_float(p, &frame, values), -CVOPT_E_DATA);
                frame = make_frame(formats[f], true, buf, sizeof buf);
                frame.bytes_per_line = W * bytes_per_pixel(formats[f]) - 1;
                assert_int_equal(preprocess_frame_float(p, &frame, values), -CVOPT_E_DATA);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_colours),
                cmocka_unit_test(test_short_frames),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

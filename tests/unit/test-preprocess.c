/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cvopt/cvopt.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptImage *, cvopt_image_free);

static CvoptInputSpec make_spec(uint32_t w, uint32_t h, CvoptColor color, CvoptResize resize, float mean,
                                float std) {
        return (CvoptInputSpec) {
                .width = w,
                .height = h,
                .color = color,
                .mean = { mean, mean, mean },
                .std = { std, std, std },
                .resize = resize,
        };
}

static float norm(uint8_t p, float mean, float std) {
        return ((float) p / 255.0f - mean) / std;
}

/* Fashion-MNIST's case: the image already is the input. Every value must
 * be exactly (p / 255 - mean) / std: any interpolation would show. */
static void test_identity_exact(void **state) {
        static const CvoptResize policies[] = { CVOPT_RESIZE_STRETCH, CVOPT_RESIZE_CENTER_CROP,
                                                CVOPT_RESIZE_LETTERBOX };
        _cleanup_(cvopt_image_freep) CvoptImage *img = NULL;
        float values[28 * 28];
        (void) state;

        assert_int_equal(cvopt_image_new(28, 28, 1, &img), 0);
        for (size_t i = 0; i < 28 * 28; i++)
                img->pixels[i] = (uint8_t) (i * 37 + i / 28);

        for (size_t p = 0; p < ELEMENTSOF(policies); p++) {
                CvoptInputSpec spec = make_spec(28, 28, CVOPT_COLOR_GRAY, policies[p], 0.2860f, 0.3530f);
                assert_int_equal(cvopt_preprocess_image(&spec, img, values), 0);
                for (size_t i = 0; i < 28 * 28; i++)
                        assert_true(values[i] == norm(img->pixels[i], 0.2860f, 0.3530f));
        }
}

/* 56x56 made of 2x2 blocks of one value each, to 28x28: each output pixel
 * is its block's value, with nothing of the neighbouring blocks. */
static void test_downscale_blocks(void **state) {
        _cleanup_(cvopt_image_freep) CvoptImage *img = NULL;
        CvoptInputSpec spec = make_spec(28, 28, CVOPT_COLOR_GRAY, CVOPT_RESIZE_STRETCH, 0.0f, 1.0f);
        float values[28 * 28];
        (void) state;

        assert_int_equal(cvopt_image_new(56, 56, 1, &img), 0);
        for (uint32_t y = 0; y < 56; y++)
                for (uint32_t x = 0; x < 56; x++)
                        img->pixels[y * 56 + x] = (uint8_t) ((x / 2) * 9 + (y / 2) * 5);
        assert_int_equal(cvopt_preprocess_image(&spec, img, values), 0);
        for (uint32_t y = 0; y < 28; y++)
                for (uint32_t x = 0; x < 28; x++)
                        assert_float_equal(values[y * 28 + x] * 255.0f, (float) (uint8_t) (x * 9 + y * 5), 1e-3);
}

/* A large shrink (8x) averages the whole block instead of sampling two
 * pixels of it: with one bright column in every 8, each output pixel is
 * 255 / 8. Bilinear sampling would read columns 3 and 4 of each block and
 * see only black (aliasing: the stripes vanish). */
static void test_downscale_area_average(void **state) {
        _cleanup_(cvopt_image_freep) CvoptImage *img = NULL;
        CvoptInputSpec spec = make_spec(8, 6, CVOPT_COLOR_GRAY, CVOPT_RESIZE_STRETCH, 0.0f, 1.0f);
        float values[8 * 6];
        (void) state;

        assert_int_equal(cvopt_image_new(64, 48, 1, &img), 0);
        for (uint32_t y = 0; y < 48; y++)
                for (uint32_t x = 0; x < 64; x++)
                        img->pixels[y * 64 + x] = x % 8 == 0 ? 255 : 0;
        assert_int_equal(cvopt_preprocess_image(&spec, img, values), 0);
        for (size_t i = 0; i < ELEMENTSOF(values); i++)
                assert_float_equal(values[i], 0.125f, 1e-5);

        /* A 640x480 frame whose left half is 40 and right half 200, to
         * 28x28 (22.9x by 17.1x, not integers): output column 14 starts at
         * source x = 14 * 640 / 28 = 320, so no column mixes the halves
         * and every value is exact. */
        CvoptInputSpec small = make_spec(28, 28, CVOPT_COLOR_GRAY, CVOPT_RESIZE_STRETCH, 0.0f, 1.0f);
        _cleanup_(cvopt_image_freep) CvoptImage *frame = NULL;
        float out[28 * 28];
        assert_int_equal(cvopt_image_new(640, 480, 1, &frame), 0);
        for (uint32_t y = 0; y < 480; y++)
                for (uint32_t x = 0; x < 640; x++)
                        frame->pixels[y * 640 + x] = x < 320 ? 40 : 200;
        assert_int_equal(cvopt_preprocess_image(&small, frame, out), 0);
        for (uint32_t y = 0; y < 28; y++) {
                assert_float_equal(out[y * 28 + 0] * 255.0f, 40.0f, 1e-3);
                assert_float_equal(out[y * 28 + 13] * 255.0f, 40.0f, 1e-3);
                assert_float_equal(out[y * 28 + 14] * 255.0f, 200.0f, 1e-3);
                assert_float_equal(out[y * 28 + 27] * 255.0f, 200.0f, 1e-3);
        }
}

/* Upscaling interpolates linearly between pixel centres. */
static void test_upscale_bilinear(void **state) {
        _cleanup_(cvopt_image_freep) CvoptImage *img = NULL;
        CvoptInputSpec spec = make_spec(4, 1, CVOPT_COLOR_GRAY, CVOPT_RESIZE_STRETCH, 0.0f, 1.0f);
        float values[4];
        (void) state;

        assert_int_equal(cvopt_image_new(2, 1, 1, &img), 0);
        img->pixels[0] = 0;
        img->pixels[1] = 200;
        assert_int_equal(cvopt_preprocess_image(&spec, img, values), 0);
        /* Output centres map to source x = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped). */
        assert_float_equal(values[0] * 255.0f, 0.0f, 1e-3);
        assert_float_equal(values[1] * 255.0f, 50.0f, 1e-3);
        assert_float_equal(values[2] * 255.0f, 150.0f, 1e-3);
        assert_float_equal(values[3] * 255.0f, 200.0f, 1e-3);
}

/* A wide 8x4 image letterboxed into 4x4: the image fills rows 1..2, rows 0
 * and 3 are padding with value exactly 0 (the normalized mean). */
static void test_letterbox_padding(void **state) {
        _cleanup_(cvopt_image_freep) CvoptImage *img = NULL;
        CvoptInputSpec spec = make_spec(4, 4, CVOPT_COLOR_RGB, CVOPT_RESIZE_LETTERBOX, 0.5f, 0.25f);
        float values[3 * 4 * 4];
        (void) state;

        assert_int_equal(cvopt_image_new(8, 4, 1, &img), 0);
        memset(img->pixels, 255, 8 * 4);
        assert_int_equal(cvopt_preprocess_image(&spec, img, values), 0);
        for (uint32_t c = 0; c < 3; c++)
                for (uint32_t y = 0; y < 4; y++)
                        for (uint32_t x = 0; x < 4; x++) {
                                float v = values[c * 16 + y * 4 + x];
                                if (y == 0 || y == 3)
                                        assert_true(v == 0.0f);
                                else
                                        assert_float_equal(v, (1.0f - 0.5f) / 0.25f, 1e-5);
                        }

        /* Tall: padding left and right. */
        CvoptInputSpec tall_spec = make_spec(4, 4, CVOPT_COLOR_GRAY, CVOPT_RESIZE_LETTERBOX, 0.5f, 0.25f);
        _cleanup_(cvopt_image_freep) CvoptImage *tall = NULL;
        float tall_values[16];
        assert_int_equal(cvopt_image_new(2, 4, 1, &tall), 0);
        memset(tall->pixels, 0, 8);
        assert_int_equal(cvopt_preprocess_image(&tall_spec, tall, tall_values), 0);
        for (uint32_t y = 0; y < 4; y++) {
                assert_true(tall_values[y * 4 + 0] == 0.0f);
                assert_float_equal(tall_values[y * 4 + 1], -2.0f, 1e-5);
                assert_float_equal(tall_values[y * 4 + 2], -2.0f, 1e-5);
                assert_true(tall_values[y * 4 + 3] == 0.0f);
        }
}

/* Center crop of a 6x2 image to 2x2: the scale keeps the height, so the
 * two middle columns (2 and 3) are the output, exactly. */
static void test_center_crop(void **state) {
        _cleanup_(cvopt_image_freep) CvoptImage *img = NULL;
        CvoptInputSpec spec = make_spec(2, 2, CVOPT_COLOR_GRAY, CVOPT_RESIZE_CENTER_CROP, 0.0f, 1.0f);
        float values[4];
        (void) state;

        assert_int_equal(cvopt_image_new(6, 2, 1, &img), 0);
        for (uint32_t y = 0; y < 2; y++)
                for (uint32_t x = 0; x < 6; x++)
                        img->pixels[y * 6 + x] = (uint8_t) (10 * x + 100 * y);
        assert_int_equal(cvopt_preprocess_image(&spec, img, values), 0);
        assert_true(values[0] == norm(20, 0.0f, 1.0f));
        assert_true(values[1] == norm(30, 0.0f, 1.0f));
        assert_true(values[2] == norm(120, 0.0f, 1.0f));
        assert_true(values[3] == norm(130, 0.0f, 1.0f));
}

/* RGB source, BGR/RGB/gray models; gray source, RGB model. */
static void test_colour_conversion(void **state) {
        _cleanup_(cvopt_image_freep) CvoptImage *rgb = NULL, *gray = NULL;
        float values[3];
        CvoptInputSpec spec;
        (void) state;

        assert_int_equal(cvopt_image_new(1, 1, 3, &rgb), 0);
        rgb->pixels[0] = 200; /* R */
        rgb->pixels[1] = 100; /* G */
        rgb->pixels[2] = 50;  /* B */

        spec = make_spec(1, 1, CVOPT_COLOR_RGB, CVOPT_RESIZE_STRETCH, 0.5f, 0.5f);
        assert_int_equal(cvopt_preprocess_image(&spec, rgb, values), 0);
        assert_true(values[0] == norm(200, 0.5f, 0.5f));
        assert_true(values[1] == norm(100, 0.5f, 0.5f));
        assert_true(values[2] == norm(50, 0.5f, 0.5f));

        spec.color = CVOPT_COLOR_BGR;
        assert_int_equal(cvopt_preprocess_image(&spec, rgb, values), 0);
        assert_true(values[0] == norm(50, 0.5f, 0.5f));
        assert_true(values[1] == norm(100, 0.5f, 0.5f));
        assert_true(values[2] == norm(200, 0.5f, 0.5f));

        /* BT.601: 0.299 * 200 + 0.587 * 100 + 0.114 * 50 = 124.2. */
        spec.color = CVOPT_COLOR_GRAY;
        assert_int_equal(cvopt_preprocess_image(&spec, rgb, values), 0);
        assert_float_equal(values[0], (124.2f / 255.0f - 0.5f) / 0.5f, 1e-5);

        assert_int_equal(cvopt_image_new(1, 1, 1, &gray), 0);
        gray->pixels[0] = 255;
        spec.color = CVOPT_COLOR_RGB;
        assert_int_equal(cvopt_preprocess_image(&spec, gray, values), 0);
        for (int c = 0; c < 3; c++)
                assert_true(values[c] == 1.0f);
}

/* Per-channel mean/std (ImageNet's) land on the right planes. */
static void test_per_channel_normalization(void **state) {
        _cleanup_(cvopt_image_freep) CvoptImage *img = NULL;
        CvoptInputSpec spec = {
                .width = 2, .height = 1, .color = CVOPT_COLOR_RGB, .resize = CVOPT_RESIZE_STRETCH,
                .mean = { 0.485f, 0.456f, 0.406f }, .std = { 0.229f, 0.224f, 0.225f },
        };
        float values[6];
        (void) state;

        assert_int_equal(cvopt_image_new(2, 1, 3, &img), 0);
        for (int i = 0; i < 6; i++)
                img->pixels[i] = (uint8_t) (40 * i + 3);
        assert_int_equal(cvopt_preprocess_image(&spec, img, values), 0);
        for (int c = 0; c < 3; c++)
                for (int x = 0; x < 2; x++)
                        assert_true(values[c * 2 + x] == norm(img->pixels[x * 3 + c], spec.mean[c], spec.std[c]));
}

static void test_bad_spec(void **state) {
        _cleanup_(cvopt_image_freep) CvoptImage *img = NULL;
        CvoptInputSpec spec = make_spec(4, 4, CVOPT_COLOR_GRAY, CVOPT_RESIZE_STRETCH, 0.0f, 0.0f);
        float values[16];
        (void) state;

        assert_int_equal(cvopt_image_new(4, 4, 1, &img), 0);
        assert_int_equal(cvopt_preprocess_image(&spec, img, values), -EINVAL);
        assert_non_null(strstr(cvopt_error_detail(), "std"));
        spec.std[0] = 1.0f;
        spec.resize = 0;
        assert_int_equal(cvopt_preprocess_image(&spec, img, values), -EINVAL);
        spec.resize = CVOPT_RESIZE_STRETCH;
        spec.width = 0;
        assert_int_equal(cvopt_preprocess_image(&spec, img, values), -EINVAL);
}

/* A custom source and writer (as the daemon uses for camera frames and
 * int8 input): the source is asked only for rows and columns in range,
 * and the writer gets every output row once, in order. */
typedef struct Recorder {
        uint32_t source_calls;
        uint32_t rows_written;
        uint32_t next_row;
        uint32_t src_width, src_height;
        uint32_t cancel_at_row; /* 0: never */
        bool out_of_range;
} Recorder;

static int counting_source(void *userdata, uint32_t y, uint32_t x_begin, uint32_t x_end, float *ret_row) {
        Recorder *r = userdata;
        r->source_calls++;
        if (y >= r->src_height || x_end > r->src_width || x_begin >= x_end)
                r->out_of_range = true;
        for (uint32_t x = x_begin; x < x_end; x++)
                *ret_row++ = (float) y;
        return 0;
}

static int counting_writer(void *userdata, uint32_t y, uint32_t x_begin, uint32_t x_end, const float *row) {
        Recorder *r = userdata;
        (void) row;
        (void) x_begin;
        (void) x_end;
        if (y != r->next_row)
                r->out_of_range = true;
        r->next_row++;
        r->rows_written++;
        return r->cancel_at_row > 0 && y == r->cancel_at_row ? -ECANCELED : 0;
}

static void test_plan_source_writer(void **state) {
        CvoptInputSpec spec = make_spec(10, 10, CVOPT_COLOR_GRAY, CVOPT_RESIZE_CENTER_CROP, 0.0f, 1.0f);
        CvoptResizePlan *plan = NULL;
        Recorder rec = { .src_width = 640, .src_height = 480, .cancel_at_row = 5 };
        (void) state;

        assert_int_equal(cvopt_resize_plan_new(&spec, 640, 480, &plan), 0);
        assert_int_equal(cvopt_resize_plan_run(plan, counting_source, &rec, counting_writer, &rec), -ECANCELED);
        assert_int_equal(rec.rows_written, 6);
        assert_false(rec.out_of_range);
        assert_null(cvopt_resize_plan_free(plan));

        /* 2x upscale of 10 rows: consecutive output rows share source
         * rows, and each source row is converted once, not once per tap. */
        CvoptInputSpec up = make_spec(4, 20, CVOPT_COLOR_GRAY, CVOPT_RESIZE_STRETCH, 0.0f, 1.0f);
        Recorder source_rec = { .src_width = 2, .src_height = 10 };
        Recorder writer_rec = {};
        float values[4 * 20];
        CvoptRowWriterFloat writer = { .spec = &up, .values = values };
        assert_int_equal(cvopt_resize_plan_new(&up, 2, 10, &plan), 0);
        assert_int_equal(cvopt_resize_plan_run(plan, counting_source, &source_rec, cvopt_row_writer_float, &writer), 0);
        assert_false(source_rec.out_of_range);
        assert_int_equal(source_rec.source_calls, 10);
        /* Running again reads the new frame, not the cached rows. */
        assert_int_equal(cvopt_resize_plan_run(plan, counting_source, &source_rec, counting_writer, &writer_rec), 0);
        assert_int_equal(source_rec.source_calls, 20);
        assert_int_equal(writer_rec.rows_written, 20);
        /* Row y of the source has value y: output row 1 (source y 0.25) is 0.25. */
        assert_float_equal(values[1 * 4] * 255.0f, 0.25f, 1e-5);
        assert_null(cvopt_resize_plan_free(plan));
}

/* The int8 writer: QuantizeLinear's rounding (half to even), saturation,
 * zero point for letterbox padding. The numbers are chosen exact in
 * binary floating point so the halves really are halves. */
static void test_int8_writer(void **state) {
        _cleanup_(cvopt_image_freep) CvoptImage *img = NULL;
        CvoptInputSpec spec = make_spec(4, 2, CVOPT_COLOR_GRAY, CVOPT_RESIZE_LETTERBOX, 0.375f, 1.0f);
        CvoptPixelSourceImage source;
        CvoptResizePlan *plan = NULL;
        int8_t values[8];
        CvoptRowWriterInt8 writer = { .spec = &spec, .scale = 0.25f, .zero_point = -100, .values = values };
        (void) state;

        /* 2x2 image letterboxed into 4x2: columns 0 and 3 are padding.
         * p = 0: v = -0.375, v / scale = -1.5 -> -2; p = 255: v = 0.625,
         * v / scale = 2.5 -> 2 (both halves to even). */
        assert_int_equal(cvopt_image_new(2, 2, 1, &img), 0);
        img->pixels[0] = 0;
        img->pixels[1] = 255;
        img->pixels[2] = 255;
        img->pixels[3] = 0;
        source = (CvoptPixelSourceImage) { .image = img, .color = CVOPT_COLOR_GRAY };
        assert_int_equal(cvopt_resize_plan_new(&spec, 2, 2, &plan), 0);
        assert_int_equal(cvopt_resize_plan_run(plan, cvopt_pixel_source_image, &source, cvopt_row_writer_int8, &writer), 0);
        static const int8_t want[8] = { -100, -102, -98, -100, -100, -98, -102, -100 };
        assert_memory_equal(values, want, sizeof(want));

        /* Saturation: 2 + 126 = 128 -> 127; padding is the zero point. */
        writer.zero_point = 126;
        assert_int_equal(cvopt_resize_plan_run(plan, cvopt_pixel_source_image, &source, cvopt_row_writer_int8, &writer), 0);
        assert_int_equal(values[2], 127);
        assert_int_equal(values[1], 124);
        assert_int_equal(values[0], 126);
        writer.zero_point = -127;
        assert_int_equal(cvopt_resize_plan_run(plan, cvopt_pixel_source_image, &source, cvopt_row_writer_int8, &writer), 0);
        assert_int_equal(values[1], -128);
        writer.scale = 0.0f;
        assert_int_equal(cvopt_resize_plan_run(plan, cvopt_pixel_source_image, &source, cvopt_row_writer_int8, &writer), -EINVAL);
        assert_null(cvopt_resize_plan_free(plan));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_identity_exact),
                cmocka_unit_test(test_downscale_blocks),
                cmocka_unit_test(test_downscale_area_average),
                cmocka_unit_test(test_upscale_bilinear),
                cmocka_unit_test(test_letterbox_padding),
                cmocka_unit_test(test_center_crop),
                cmocka_unit_test(test_colour_conversion),
                cmocka_unit_test(test_per_channel_normalization),
                cmocka_unit_test(test_bad_spec),
                cmocka_unit_test(test_plan_source_writer),
                cmocka_unit_test(test_int8_writer),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

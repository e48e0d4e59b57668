/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "cvopt/cvopt.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptImage *, cvopt_image_free);

#define TMPDIR_TEMPLATE "/tmp/cvopt-test-image-XXXXXX"
#include "tmpdir-fixture.h"

/* A pattern where every pixel and channel differs from its neighbours, so
 * a swapped channel, a transposed axis or an off-by-one row shows. */
static CvoptImage *make_pattern(uint32_t w, uint32_t h, uint32_t ch) {
        CvoptImage *img;

        assert_int_equal(cvopt_image_new(w, h, ch, &img), 0);
        for (uint32_t y = 0; y < h; y++)
                for (uint32_t x = 0; x < w; x++)
                        for (uint32_t c = 0; c < ch; c++)
                                img->pixels[(y * w + x) * ch + c] = (uint8_t) (x * 7 + y * 31 + c * 101);
        return img;
}

static void write_file(const char *path, const void *data, size_t size) {
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, size, f), size);
        assert_int_equal(fclose(f), 0);
}

static void assert_same_image(const CvoptImage *a, const CvoptImage *b) {
        assert_int_equal(a->width, b->width);
        assert_int_equal(a->height, b->height);
        assert_int_equal(a->channels, b->channels);
        assert_memory_equal(a->pixels, b->pixels, (size_t) a->width * a->height * a->channels);
}

static void test_new_rejects_bad_sizes(void **state) {
        CvoptImage *img = NULL;
        (void) state;

        assert_int_equal(cvopt_image_new(0, 5, 1, &img), -EINVAL);
        assert_int_equal(cvopt_image_new(5, CVOPT_IMAGE_MAX_DIMENSION + 1, 1, &img), -EINVAL);
        assert_int_equal(cvopt_image_new(5, 5, 4, &img), -EINVAL);
        assert_null(img);
        assert_null(cvopt_image_free(NULL));
}

static void test_png_round_trip(void **state) {
        _cleanup_free_ char *gray_path = tmp_path("gray.png"), *rgb_path = tmp_path("rgb.png");
        _cleanup_(cvopt_image_freep) CvoptImage *gray = make_pattern(13, 7, 1), *rgb = make_pattern(9, 11, 3);
        _cleanup_(cvopt_image_freep) CvoptImage *gray_back = NULL, *rgb_back = NULL;
        (void) state;

        assert_int_equal(cvopt_image_save_png(gray, gray_path), 0);
        assert_int_equal(cvopt_image_save_png(rgb, rgb_path), 0);
        assert_int_equal(cvopt_image_load(gray_path, &gray_back), 0);
        assert_int_equal(cvopt_image_load(rgb_path, &rgb_back), 0);
        assert_same_image(gray, gray_back);
        assert_same_image(rgb, rgb_back);
}

static void test_pnm_round_trip(void **state) {
        _cleanup_free_ char *pgm_path = tmp_path("gray.pgm"), *ppm_path = tmp_path("rgb.ppm");
        _cleanup_(cvopt_image_freep) CvoptImage *gray = make_pattern(28, 28, 1), *rgb = make_pattern(5, 3, 3);
        _cleanup_(cvopt_image_freep) CvoptImage *gray_back = NULL, *rgb_back = NULL;
        (void) state;

        assert_int_equal(cvopt_image_save_pnm(gray, pgm_path), 0);
        assert_int_equal(cvopt_image_save_pnm(rgb, ppm_path), 0);
        assert_int_equal(cvopt_image_load(pgm_path, &gray_back), 0);
        assert_int_equal(cvopt_image_load(ppm_path, &rgb_back), 0);
        assert_same_image(gray, gray_back);
        assert_same_image(rgb, rgb_back);
}

/* A hand-written PGM: the decoder must read what the format says, not
 * only what our own writer produces. */
static void test_decode_handwritten_pgm(void **state) {
        static const uint8_t pgm[] = "P5\n# comment\n3 2\n255\n\x00\x10\x20\x30\x40\xff";
        _cleanup_(cvopt_image_freep) CvoptImage *img = NULL;
        (void) state;

        assert_int_equal(cvopt_image_decode(pgm, sizeof(pgm) - 1, &img), 0);
        assert_int_equal(img->width, 3);
        assert_int_equal(img->height, 2);
        assert_int_equal(img->channels, 1);
        assert_int_equal(img->pixels[0], 0x00);
        assert_int_equal(img->pixels[3], 0x30);
        assert_int_equal(img->pixels[5], 0xff);
}

/* JPEG, gray and colour: 8x8 images of one colour, written by PIL
 * (quality 95 gray, quality 90 RGB without chroma subsampling). JPEG is
 * lossy and decoders round colour conversion differently, so values may
 * be off by a little, never by more than 2. */
static void test_decode_jpeg(void **state) {
        static const uint8_t gray_jpeg[] = {
                0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01,
                0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0xff, 0xdb, 0x00, 0x43,
                0x00, 0x02, 0x01, 0x01, 0x01, 0x01, 0x01, 0x02, 0x01, 0x01, 0x01, 0x02,
                0x02, 0x02, 0x02, 0x02, 0x04, 0x03, 0x02, 0x02, 0x02, 0x02, 0x05, 0x04,
                0x04, 0x03, 0x04, 0x06, 0x05, 0x06, 0x06, 0x06, 0x05, 0x06, 0x06, 0x06,
                0x07, 0x09, 0x08, 0x06, 0x07, 0x09, 0x07, 0x06, 0x06, 0x08, 0x0b, 0x08,
                0x09, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x06, 0x08, 0x0b, 0x0c, 0x0b, 0x0a,
                0x0c, 0x09, 0x0a, 0x0a, 0x0a, 0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x08,
                0x00, 0x08, 0x01, 0x01, 0x11, 0x00, 0xff, 0xc4, 0x00, 0x14, 0x00, 0x01,
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x08, 0xff, 0xc4, 0x00, 0x14, 0x10, 0x01, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x00, 0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00,
                0x19, 0xbf, 0xff, 0xd9,
        };
        static const uint8_t rgb_jpeg[] = {
                0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01,
                0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0xff, 0xdb, 0x00, 0x43,
                0x00, 0x03, 0x02, 0x02, 0x03, 0x02, 0x02, 0x03, 0x03, 0x03, 0x03, 0x04,
                0x03, 0x03, 0x04, 0x05, 0x08, 0x05, 0x05, 0x04, 0x04, 0x05, 0x0a, 0x07,
                0x07, 0x06, 0x08, 0x0c, 0x0a, 0x0c, 0x0c, 0x0b, 0x0a, 0x0b, 0x0b, 0x0d,
                0x0e, 0x12, 0x10, 0x0d, 0x0e, 0x11, 0x0e, 0x0b, 0x0b, 0x10, 0x16, 0x10,
                0x11, 0x13, 0x14, 0x15, 0x15, 0x15, 0x0c, 0x0f, 0x17, 0x18, 0x16, 0x14,
                0x18, 0x12, 0x14, 0x15, 0x14, 0xff, 0xdb, 0x00, 0x43, 0x01, 0x03, 0x04,
                0x04, 0x05, 0x04, 0x05, 0x09, 0x05, 0x05, 0x09, 0x14, 0x0d, 0x0b, 0x0d,
                0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14,
                0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14,
                0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14,
                0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14,
                0x14, 0x14, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 0x08, 0x00, 0x08, 0x03,
                0x01, 0x11, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01, 0xff, 0xc4, 0x00,
                0x14, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0xff, 0xc4, 0x00, 0x14, 0x10,
                0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xc4, 0x00, 0x15, 0x01, 0x01, 0x01,
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x07, 0x08, 0xff, 0xc4, 0x00, 0x14, 0x11, 0x01, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x00, 0xff, 0xda, 0x00, 0x0c, 0x03, 0x01, 0x00, 0x02, 0x11, 0x03,
                0x11, 0x00, 0x3f, 0x00, 0x20, 0x3d, 0x48, 0x3f, 0xff, 0xd9,
        };
        _cleanup_(cvopt_image_freep) CvoptImage *gray = NULL, *rgb = NULL;
        (void) state;

        assert_int_equal(cvopt_image_decode(gray_jpeg, sizeof(gray_jpeg), &gray), 0);
        assert_int_equal(gray->width, 8);
        assert_int_equal(gray->height, 8);
        assert_int_equal(gray->channels, 1);
        for (size_t i = 0; i < 64; i++)
                assert_in_range(gray->pixels[i], 75, 79);

        assert_int_equal(cvopt_image_decode(rgb_jpeg, sizeof(rgb_jpeg), &rgb), 0);
        assert_int_equal(rgb->channels, 3);
        for (size_t i = 0; i < 64; i++) {
                assert_in_range(rgb->pixels[3 * i + 0], 198, 202);
                assert_in_range(rgb->pixels[3 * i + 1], 98, 102);
                assert_in_range(rgb->pixels[3 * i + 2], 48, 52);
        }

        /* Cut before the end of the scan: an error, not garbage pixels. */
        CvoptImage *cut = NULL;
        int r = cvopt_image_decode(rgb_jpeg, 100, &cut);
        assert_int_equal(r, -CVOPT_E_DATA);
        assert_null(cut);
}

/* Gray+alpha decodes to gray and RGBA to RGB, alpha dropped (not blended). */
static void test_alpha_dropped(void **state) {
        /* 2x1 PNG, colour type 4 (gray+alpha): pixels (77, a=10), (200, a=255). */
        static const uint8_t gray_alpha_png[] = {
                0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
                0x44, 0x52, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x08, 0x04, 0x00, 0x00,
                0x00, 0x5e, 0x2b, 0xb7, 0x01, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78,
                0x9c, 0x63, 0xf0, 0xe5, 0x3a, 0xf1, 0x1f, 0x00, 0x03, 0xe6, 0x02, 0x1f, 0x46, 0x6e,
                0x34, 0x97, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
        };
        /* 2x1 BMP with 32-bit pixels stored B, G, R, A. */
        static const uint8_t bgra_bmp[] = {
                'B', 'M', 62, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0, /* file header: size 62, pixels at 54 */
                40, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0,            /* info header: 2x1 */
                1, 0, 32, 0, 0, 0, 0, 0, 8, 0, 0, 0,            /* 1 plane, 32 bpp, BI_RGB, 8 bytes */
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                10, 20, 30, 128, 40, 50, 60, 255,
        };
        _cleanup_(cvopt_image_freep) CvoptImage *gray = NULL, *rgb = NULL;
        (void) state;

        assert_int_equal(cvopt_image_decode(gray_alpha_png, sizeof(gray_alpha_png), &gray), 0);
        assert_int_equal(gray->channels, 1);
        assert_int_equal(gray->width, 2);
        assert_int_equal(gray->pixels[0], 77);
        assert_int_equal(gray->pixels[1], 200);

        assert_int_equal(cvopt_image_decode(bgra_bmp, sizeof(bgra_bmp), &rgb), 0);
        assert_int_equal(rgb->channels, 3);
        assert_int_equal(rgb->width, 2);
        assert_int_equal(rgb->pixels[0], 30);
        assert_int_equal(rgb->pixels[1], 20);
        assert_int_equal(rgb->pixels[2], 10);
        assert_int_equal(rgb->pixels[3], 60);
}

static void test_corrupt_and_truncated_name_the_file(void **state) {
        _cleanup_free_ char *png_path = tmp_path("good.png"), *cut_path = tmp_path("cut.png"),
                            *junk_path = tmp_path("junk.jpg"), *missing = tmp_path("missing.png");
        _cleanup_(cvopt_image_freep) CvoptImage *img = make_pattern(32, 32, 3);
        _cleanup_free_ uint8_t *data = NULL;
        CvoptImage *out = NULL;
        FILE *f;
        long size;
        (void) state;

        assert_int_equal(cvopt_image_save_png(img, png_path), 0);
        f = fopen(png_path, "re");
        assert_non_null(f);
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        size = ftell(f);
        rewind(f);
        data = malloc((size_t) size);
        assert_int_equal(fread(data, 1, (size_t) size, f), (size_t) size);
        fclose(f);

        /* Cut in the middle of the pixel data. */
        write_file(cut_path, data, (size_t) size / 2);
        assert_int_equal(cvopt_image_load(cut_path, &out), -CVOPT_E_DATA);
        assert_null(out);
        assert_non_null(strstr(cvopt_error_detail(), cut_path));

        write_file(junk_path, "this is not an image at all", 27);
        assert_int_equal(cvopt_image_load(junk_path, &out), -CVOPT_E_DATA);
        assert_non_null(strstr(cvopt_error_detail(), junk_path));

        assert_int_equal(cvopt_image_load(missing, &out), -ENOENT);
        assert_non_null(strstr(cvopt_error_detail(), missing));
        assert_int_equal(cvopt_image_load(tmpdir, &out), -EISDIR);
        assert_null(out);
}

/* A header claiming a huge image is refused before allocation. */
static void test_oversized_refused(void **state) {
        static const char pgm[] = "P5\n20000 2\n255\n";
        CvoptImage *out = NULL;
        (void) state;

        assert_int_equal(cvopt_image_decode(pgm, sizeof(pgm) - 1, &out), -CVOPT_E_DATA);
        assert_null(out);
        assert_int_equal(cvopt_image_decode("", 0, &out), -CVOPT_E_DATA);

        /* Within the maximum size, but 16000x16000 from 20 bytes is a lie:
         * refused before stb allocates 256 MB. */
        static const char big[] = "P5\n16000 16000\n255\n";
        assert_int_equal(cvopt_image_decode(big, sizeof(big) - 1, &out), -CVOPT_E_DATA);
        assert_non_null(strstr(cvopt_error_detail(), "16000x16000"));
        assert_null(out);
}

/* Inputs that made Debian's stb_image 2.27 misbehave under the fuzzer
 * (memory written past a table; signed overflow) are refused before stb
 * reads them. */
static void test_stb_hardening(void **state) {
        static const uint8_t dht_head[] = {
                0xff, 0xd8,             /* SOI */
                0xff, 0xc4, 0x02, 0x13, /* DHT, length 2 + 17 + 512 */
                0x00,                   /* DC table 0 */
        };
        uint8_t jpeg[sizeof(dht_head) + 16 + 512 + 2] = {};
        static const char pnm[] = "P5\n# w\n99999999999 2\n255\nxx";
        CvoptImage *img = NULL;
        (void) state;

        memcpy(jpeg, dht_head, sizeof(dht_head));
        /* 16 code lengths with 32 symbols each: 512 symbols, the table has room for 256. */
        memset(jpeg + sizeof(dht_head), 32, 16);
        jpeg[sizeof(jpeg) - 2] = 0xff;
        jpeg[sizeof(jpeg) - 1] = 0xd9;
        assert_int_equal(cvopt_image_decode(jpeg, sizeof(jpeg), &img), -CVOPT_E_DATA);
        assert_non_null(strstr(cvopt_error_detail(), "Huffman"));

        /* The same behind fill bytes before SOI, which stb skips. */
        memmove(jpeg + 2, jpeg, sizeof(jpeg) - 2);
        jpeg[0] = jpeg[1] = 0xff;
        assert_int_equal(cvopt_image_decode(jpeg, sizeof(jpeg), &img), -CVOPT_E_DATA);
        assert_non_null(strstr(cvopt_error_detail(), "Huffman"));

        /* A PNG whose second chunk claims 2 GiB: refused without
         * allocating it (stb alone would realloc to the claimed size). */
        static const uint8_t png[] = {
                0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                0, 0, 0, 9, 0, 0, 0, 7, 8, 0, 0, 0, 0, 0xff, 0xf0, 0x36, 0xbc,
                0x80, 0, 0, 0, 'I', 'D', 'A', 'T', 0x78, 0x9c, 0, 0, 0, 0,
        };
        assert_int_equal(cvopt_image_decode(png, sizeof(png), &img), -CVOPT_E_DATA);
        assert_non_null(strstr(cvopt_error_detail(), "PNG"));

        assert_int_equal(cvopt_image_decode(pnm, sizeof(pnm) - 1, &img), -CVOPT_E_DATA);
        assert_non_null(strstr(cvopt_error_detail(), "PNM header"));
        assert_null(img);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_new_rejects_bad_sizes),
                cmocka_unit_test(test_png_round_trip),
                cmocka_unit_test(test_pnm_round_trip),
                cmocka_unit_test(test_decode_handwritten_pgm),
                cmocka_unit_test(test_decode_jpeg),
                cmocka_unit_test(test_alpha_dropped),
                cmocka_unit_test(test_corrupt_and_truncated_name_the_file),
                cmocka_unit_test(test_oversized_refused),
                cmocka_unit_test(test_stb_hardening),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}

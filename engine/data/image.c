/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cvopt/errors.h"
#include "cvopt/image.h"
#include "data/file-util.h"
#include "macro.h"

/* Debian's stb (libstb-dev) is compiled into this file alone, with every
 * stb function static: no stbi_* symbol leaves libcvopt, so a program
 * that also links Debian's libstb.so gets no clash. Only the formats we
 * document are compiled in: less code facing hostile files. stb's own
 * dimension limit is set to ours so that it refuses an oversized image
 * before it allocates anything, in every decoder. */
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNM
#define STBI_ONLY_BMP
#define STBI_MAX_DIMENSIONS CVOPT_IMAGE_MAX_DIMENSION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#define STBI_WRITE_NO_STDIO

/* stb is third-party code written to older, laxer warning levels; our
 * -Werror set applies to our code, not to its internals. */
/* stb declares some functions (GIF, HDR) that the STBI_ONLY_* set leaves
 * undefined; GCC reports that at the end of the file, after any pop, so
 * this one warning is off for the whole file. */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wnull-dereference"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wundef"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

/* Image files are read whole into memory before decoding; 256 MiB is
 * well above a 16384x16384 PNG of natural content and keeps a stray
 * multi-gigabyte file from being read at all. */
#define IMAGE_FILE_MAX_BYTES ((size_t) 256 << 20)

int cvopt_image_new(uint32_t width, uint32_t height, uint32_t channels, CvoptImage **ret_image) {
        _cleanup_free_ CvoptImage *img = NULL;
        size_t n;

        if (width == 0 || height == 0 || width > CVOPT_IMAGE_MAX_DIMENSION ||
            height > CVOPT_IMAGE_MAX_DIMENSION)
                return cvopt_error_set(-EINVAL, "image size %ux%u out of range 1..%u", width, height,
                                       CVOPT_IMAGE_MAX_DIMENSION);
        if (channels != 1 && channels != 3)
                return cvopt_error_set(-EINVAL, "image has %u channels, expected 1 or 3", channels);

        /* Cannot overflow: 16384 * 16384 * 3 < 2^30. */
        n = (size_t) width * height * channels;
        img = calloc(1, sizeof(*img));
        if (!img)
                return -ENOMEM;
        img->pixels = calloc(n, 1);
        if (!img->pixels)
                return -ENOMEM;
        img->width = width;
        img->height = height;
        img->channels = channels;
        *ret_image = TAKE_PTR(img);
        return 0;
}

CvoptImage *cvopt_image_free(CvoptImage *img) {
        if (!img)
                return NULL;
        free(img->pixels);
        free(img);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptImage *, cvopt_image_free);

/* Debian's stb_image 2.27 builds a JPEG Huffman table from 16 code
 * counts without checking that they add up to at most 256 symbols, and
 * writes past its 257-byte size table when they do (found by fuzzing
 * cvopt_image_decode; fixed upstream in 2.28). Until the distribution
 * ships the fix, every DHT segment is checked here before stb sees the
 * file. The walk follows the marker structure: segments are skipped by
 * their length, entropy-coded data byte by byte (inside it 0xFF is
 * followed by 0x00 or a restart marker). Truncation is left to stb. */
static bool jpeg_huffman_tables_valid(const uint8_t *d, size_t n) {
        size_t pos = 0;

        while (pos + 1 < n) {
                size_t length, q;
                ssize_t remaining;
                uint8_t marker;

                if (d[pos] != 0xff) {
                        pos++;
                        continue;
                }
                marker = d[pos + 1];
                if (marker == 0xff) {
                        pos++; /* fill byte */
                        continue;
                }
                if (marker == 0x00 || marker == 0x01 || marker == 0xd8 || (marker >= 0xd0 && marker <= 0xd7)) {
                        pos += 2;
                        continue;
                }
                if (marker == 0xd9)
                        return true;
                if (pos + 4 > n)
                        return true;
                length = (size_t) d[pos + 2] << 8 | d[pos + 3];
                if (length < 2)
                        return false;
                if (marker != 0xc4) {
                        pos += 2 + length;
                        continue;
                }
                /* Mirror stb's reading of a DHT segment exactly: tables
                 * are read one after the other while the remaining length
                 * is positive, even past the segment's end, and bytes
                 * past the end of the data read as 0. */
                remaining = (ssize_t) length - 2;
                q = pos + 4;
                while (remaining > 0) {
                        size_t symbols = 0;
                        for (size_t i = 0; i < 16; i++)
                                symbols += q + 1 + i < n ? d[q + 1 + i] : 0;
                        if (symbols > 256)
                                return false;
                        q += 17 + symbols;
                        remaining -= 17 + (ssize_t) symbols;
                }
                if (remaining != 0)
                        return true; /* stb rejects this segment itself */
                pos = q;
        }
        return true;
}

/* stb_image 2.27 reads PNM header numbers into an int without an
 * overflow check (undefined behaviour on "P5 99999999999 ..."; found by
 * fuzzing). The header is read here first, the way stb reads it
 * (whitespace and # comments between fields), and numbers that could
 * overflow are refused; real ones are far smaller (sizes up to 16384,
 * maxval up to 65535). */
static bool pnm_header_valid(const uint8_t *d, size_t n) {
        size_t pos = 2;

        for (int field = 0; field < 3; field++) {
                uint64_t value = 0;

                for (;;) {
                        while (pos < n && (d[pos] == ' ' || (d[pos] >= '\t' && d[pos] <= '\r')))
                                pos++;
                        if (pos >= n || d[pos] != '#')
                                break;
                        while (pos < n && d[pos] != '\n' && d[pos] != '\r')
                                pos++;
                }
                while (pos < n && d[pos] >= '0' && d[pos] <= '9') {
                        value = value * 10 + (d[pos++] - '0');
                        if (value > 99999999)
                                return false;
                }
        }
        return true;
}

/* stb grows its compressed-data buffer to an IDAT chunk's declared length
 * before it checks that the data is there, so a 100-byte PNG declaring a
 * 2 GiB chunk allocates 2 GiB (found by fuzzing). Every chunk must fit in
 * the data we hold; then no allocation exceeds the file size. */
static bool png_chunks_valid(const uint8_t *d, size_t n) {
        size_t pos = 8;

        while (pos + 8 <= n) {
                uint32_t length = (uint32_t) d[pos] << 24 | (uint32_t) d[pos + 1] << 16 |
                                  (uint32_t) d[pos + 2] << 8 | d[pos + 3];
                /* length + type + CRC must fit. */
                if (length > n - pos - 8 || n - pos - 8 - length < 4)
                        return false;
                if (memcmp(d + pos + 4, "IEND", 4) == 0)
                        return true;
                pos += 12 + (size_t) length;
        }
        return false;
}

int cvopt_image_decode(const void *data, size_t size, CvoptImage **ret_image) {
        _cleanup_(cvopt_image_freep) CvoptImage *img = NULL;
        int w, h, comp, got_w, got_h, got_comp, want;
        uint8_t *pixels;

        if (!data || size == 0)
                return cvopt_error_set(-CVOPT_E_DATA, "empty image data");
        if (size > INT_MAX)
                return cvopt_error_set(-CVOPT_E_DATA, "image data of %zu bytes too large", size);

        /* stb takes a file for JPEG when it starts with 0xFF: fill bytes
         * may come before the SOI marker. */
        if (((const uint8_t *) data)[0] == 0xff && !jpeg_huffman_tables_valid(data, size))
                return cvopt_error_set(-CVOPT_E_DATA, "corrupt JPEG (Huffman table with more than 256 symbols)");

        if (size >= 2 && ((const uint8_t *) data)[0] == 'P' &&
            (((const uint8_t *) data)[1] == '5' || ((const uint8_t *) data)[1] == '6') &&
            !pnm_header_valid(data, size))
                return cvopt_error_set(-CVOPT_E_DATA, "corrupt PNM header (number too large)");

        if (size >= 8 && memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0 && !png_chunks_valid(data, size))
                return cvopt_error_set(-CVOPT_E_DATA, "corrupt or truncated PNG (a chunk runs past the end)");

        /* Header first: the size is checked before any pixel memory exists. */
        if (!stbi_info_from_memory(data, (int) size, &w, &h, &comp))
                return cvopt_error_set(-CVOPT_E_DATA, "not a PNG, JPEG, PNM or BMP image, or corrupt (%s)",
                                       strempty(stbi_failure_reason()));
        if (w <= 0 || h <= 0 || (uint32_t) w > CVOPT_IMAGE_MAX_DIMENSION ||
            (uint32_t) h > CVOPT_IMAGE_MAX_DIMENSION)
                return cvopt_error_set(-CVOPT_E_DATA, "image size %dx%d out of range 1..%u", w, h,
                                       CVOPT_IMAGE_MAX_DIMENSION);
        if (comp < 1 || comp > 4)
                return cvopt_error_set(-CVOPT_E_DATA, "image has %d channels", comp);
        /* A header may claim any size up to the maximum, and stb allocates
         * for it (several bytes per pixel for progressive JPEG) before it
         * finds the data missing. No real image compresses beyond ~1000:1
         * (deflate's limit is 1032:1; JPEG's is lower), so a claim of more
         * than 2048 decoded bytes per file byte, beyond a 1 MiB allowance
         * for small files, is corrupt or hostile. */
        if ((uint64_t) w * (uint64_t) h * (uint64_t) comp > (uint64_t) size * 2048 + ((uint64_t) 1 << 20))
                return cvopt_error_set(-CVOPT_E_DATA, "image header claims %dx%d pixels, far more than %zu bytes can hold",
                                       w, h, size);

        /* Gray+alpha -> gray, RGB(A) -> RGB: stb converts while decoding. */
        want = comp <= 2 ? 1 : 3;
        pixels = stbi_load_from_memory(data, (int) size, &got_w, &got_h, &got_comp, want);
        if (!pixels)
                return cvopt_error_set(-CVOPT_E_DATA, "corrupt or truncated image (%s)",
                                       strempty(stbi_failure_reason()));
        if (got_w != w || got_h != h) {
                stbi_image_free(pixels);
                return cvopt_error_set(-CVOPT_E_DATA, "image header says %dx%d, data is %dx%d", w, h, got_w,
                                       got_h);
        }

        img = calloc(1, sizeof(*img));
        if (!img) {
                stbi_image_free(pixels);
                return -ENOMEM;
        }
        /* stb allocates with malloc (STBI_MALLOC is not overridden), so the
         * buffer is adopted as it is and released with free(). */
        img->pixels = pixels;
        img->width = (uint32_t) w;
        img->height = (uint32_t) h;
        img->channels = (uint32_t) want;
        *ret_image = TAKE_PTR(img);
        return 0;
}

int cvopt_image_load(const char *path, CvoptImage **ret_image) {
        _cleanup_free_ uint8_t *data = NULL;
        size_t size;
        int r;

        r = file_read_all(path, IMAGE_FILE_MAX_BYTES, &data, &size);
        if (r < 0)
                return r;
        r = cvopt_image_decode(data, size, ret_image);
        if (r < 0)
                return cvopt_error_prefix(r, "%s", path);
        return 0;
}

static int image_check(const CvoptImage *img, const char *path) {
        if (!img || !img->pixels || img->width == 0 || img->height == 0 ||
            img->width > CVOPT_IMAGE_MAX_DIMENSION || img->height > CVOPT_IMAGE_MAX_DIMENSION ||
            (img->channels != 1 && img->channels != 3))
                return cvopt_error_set(-EINVAL, "%s: invalid image to write", path);
        return 0;
}

typedef struct MemoryBuffer {
        uint8_t *data;
        size_t size, allocated;
        bool failed;
} MemoryBuffer;

static void memory_buffer_append(void *context, void *data, int size) {
        MemoryBuffer *b = context;
        size_t need;

        if (b->failed || size <= 0)
                return;
        if (size_add_overflow(b->size, (size_t) size, &need)) {
                b->failed = true;
                return;
        }
        if (need > b->allocated) {
                size_t n = MAX(need, b->allocated * 2);
                uint8_t *p = realloc(b->data, n);
                if (!p) {
                        b->failed = true;
                        return;
                }
                b->data = p;
                b->allocated = n;
        }
        memcpy(b->data + b->size, data, (size_t) size);
        b->size = need;
}

int cvopt_image_save_png(const CvoptImage *img, const char *path) {
        _cleanup_free_ uint8_t *owned = NULL;
        MemoryBuffer b = {};
        int r;

        r = image_check(img, path);
        if (r < 0)
                return r;
        r = stbi_write_png_to_func(memory_buffer_append, &b, (int) img->width, (int) img->height,
                                   (int) img->channels, img->pixels, (int) (img->width * img->channels));
        owned = b.data;
        if (!r || b.failed)
                return cvopt_error_set(-ENOMEM, "%s: cannot encode PNG", path);
        return file_write_atomic(path, b.data, b.size);
}

int cvopt_image_save_pnm(const CvoptImage *img, const char *path) {
        _cleanup_free_ uint8_t *data = NULL;
        char header[64];
        size_t n_pixels, size;
        int r, header_len;

        r = image_check(img, path);
        if (r < 0)
                return r;
        header_len = snprintf(header, sizeof(header), "P%c\n%u %u\n255\n", img->channels == 1 ? '5' : '6',
                              img->width, img->height);
        n_pixels = (size_t) img->width * img->height * img->channels;
        size = (size_t) header_len + n_pixels;
        data = malloc(size);
        if (!data)
                return -ENOMEM;
        memcpy(data, header, (size_t) header_len);
        memcpy(data + header_len, img->pixels, n_pixels);
        return file_write_atomic(path, data, size);
}

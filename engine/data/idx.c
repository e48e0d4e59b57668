/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <zlib.h>

#include "cvopt/errors.h"
#include "data/file-util.h"
#include "data/idx.h"
#include "macro.h"

/* Limits on what an IDX file may make us hold in memory. The largest
 * dataset we expect, Fashion-MNIST's training images, is 47 MB
 * uncompressed; ImageNet-sized IDX sets are not a use case. 2 GiB keeps a
 * hostile gzip bomb or header from exhausting the machine. */
#define IDX_MAX_FILE_BYTES ((size_t) 1 << 31)
#define IDX_MAX_DATA_BYTES ((size_t) 1 << 31)

static int gunzip(const char *path, const uint8_t *in, size_t in_size, uint8_t **ret_out, size_t *ret_size) {
        _cleanup_free_ uint8_t *out = NULL;
        size_t allocated, size = 0;
        z_stream z = {};
        int zr, r = 0;

        /* The gzip trailer's last 4 bytes hold the size modulo 2^32: a
         * good first guess for the buffer, never trusted beyond that. It
         * is capped by deflate's largest possible expansion (1032:1), so
         * a tiny hostile file cannot make us reserve gigabytes up front. */
        allocated = 1 << 16;
        if (in_size >= 18) {
                uint32_t hint = (uint32_t) in[in_size - 4] | (uint32_t) in[in_size - 3] << 8 |
                                (uint32_t) in[in_size - 2] << 16 | (uint32_t) in[in_size - 1] << 24;
                size_t possible;
                if (size_mul_overflow(in_size, 1032, &possible))
                        possible = SIZE_MAX;
                if (hint > allocated && hint <= IDX_MAX_DATA_BYTES && hint <= possible)
                        allocated = hint;
        }
        out = malloc(allocated);
        if (!out)
                return -ENOMEM;

        /* 15 + 16: the largest window, gzip wrapper only. */
        if (inflateInit2(&z, 15 + 16) != Z_OK)
                return cvopt_error_set(-ENOMEM, "%s: cannot initialize zlib", path);
        z.next_in = (Bytef *) in;

        for (;;) {
                size_t chunk;

                if (size == allocated) {
                        size_t n = allocated * 2;
                        uint8_t *p;
                        if (allocated >= IDX_MAX_DATA_BYTES) {
                                r = cvopt_error_set(-CVOPT_E_DATA, "%s: decompresses to more than %zu bytes",
                                                    path, IDX_MAX_DATA_BYTES);
                                break;
                        }
                        n = MIN(n, IDX_MAX_DATA_BYTES);
                        p = realloc(out, n);
                        if (!p) {
                                r = -ENOMEM;
                                break;
                        }
                        out = p;
                        allocated = n;
                }
                /* zlib counts in uInt: feed and drain at most 1 GiB per call. */
                z.avail_in = (uInt) MIN(in_size - (size_t) ((const uint8_t *) z.next_in - in), (size_t) 1 << 30);
                chunk = MIN(allocated - size, (size_t) 1 << 30);
                z.next_out = out + size;
                z.avail_out = (uInt) chunk;
                zr = inflate(&z, Z_NO_FLUSH);
                size += chunk - z.avail_out;
                if (zr == Z_STREAM_END)
                        break;
                if (zr == Z_DATA_ERROR || zr == Z_NEED_DICT) {
                        r = cvopt_error_set(-CVOPT_E_DATA, "%s: corrupt gzip data (%s)", path,
                                            z.msg ? z.msg : "invalid stream");
                        break;
                }
                if (zr == Z_MEM_ERROR) {
                        r = -ENOMEM;
                        break;
                }
                if (zr == Z_BUF_ERROR && z.avail_in == 0 && z.avail_out > 0) {
                        r = cvopt_error_set(-CVOPT_E_DATA, "%s: truncated gzip data (ends after %zu bytes)",
                                            path, size);
                        break;
                }
                if (z.avail_in == 0 && z.avail_out > 0 &&
                    (size_t) ((const uint8_t *) z.next_in - in) == in_size) {
                        r = cvopt_error_set(-CVOPT_E_DATA, "%s: truncated gzip data (ends after %zu bytes)",
                                            path, size);
                        break;
                }
        }
        inflateEnd(&z);
        if (r < 0)
                return r;
        *ret_out = TAKE_PTR(out);
        *ret_size = size;
        return 0;
}

static uint32_t read_be32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

void idx_file_done(IdxFile *f) {
        free(f->buffer);
        *f = (IdxFile) {};
}

int idx_buffer_parse(const char *path, uint8_t *raw, size_t raw_size, IdxFile *ret) {
        _cleanup_free_ uint8_t *owned_raw = raw, *unpacked = NULL;
        uint8_t *content;
        size_t size = 0, header, expected = 1;
        IdxFile f = {};
        int r;

        if (raw_size >= 2 && raw[0] == 0x1f && raw[1] == 0x8b) {
                r = gunzip(path, raw, raw_size, &unpacked, &size);
                if (r < 0)
                        return r;
                content = unpacked;
        } else {
                content = raw;
                size = raw_size;
        }

        if (size < 4)
                return cvopt_error_set(-CVOPT_E_DATA, "%s: truncated IDX file (%zu bytes, no header)", path, size);
        if (content[0] != 0 || content[1] != 0)
                return cvopt_error_set(-CVOPT_E_DATA, "%s: not an IDX file (bad magic %02x %02x %02x %02x)", path,
                                       content[0], content[1], content[2], content[3]);
        if (content[2] != 0x08)
                return cvopt_error_set(-CVOPT_E_DATA,
                                       "%s: IDX element type 0x%02x not supported (only 0x08, unsigned byte)", path,
                                       content[2]);
        f.ndim = content[3];
        if (f.ndim < 1 || f.ndim > IDX_MAX_DIMS)
                return cvopt_error_set(-CVOPT_E_DATA, "%s: IDX file has %u dimensions, expected 1..%d", path, f.ndim,
                                       IDX_MAX_DIMS);
        header = 4 + 4 * (size_t) f.ndim;
        if (size < header)
                return cvopt_error_set(-CVOPT_E_DATA, "%s: truncated IDX header (%zu bytes)", path, size);
        for (uint32_t i = 0; i < f.ndim; i++) {
                f.dims[i] = read_be32(content + 4 + 4 * i);
                if (size_mul_overflow(expected, f.dims[i], &expected) || expected > IDX_MAX_DATA_BYTES)
                        return cvopt_error_set(-CVOPT_E_DATA, "%s: IDX dimensions too large", path);
        }
        if (size - header < expected)
                return cvopt_error_set(-CVOPT_E_DATA,
                                       "%s: truncated IDX data: the header says %zu bytes, the file has %zu", path,
                                       expected, size - header);
        if (size - header > expected)
                return cvopt_error_set(-CVOPT_E_DATA, "%s: %zu unexpected bytes after the IDX data", path,
                                       size - header - expected);

        f.buffer = unpacked ? TAKE_PTR(unpacked) : TAKE_PTR(owned_raw);
        f.data = f.buffer + header;
        *ret = f;
        return 0;
}

int idx_file_read(const char *path, IdxFile *ret) {
        uint8_t *raw = NULL;
        size_t raw_size;
        int r;

        r = file_read_all(path, IDX_MAX_FILE_BYTES, &raw, &raw_size);
        if (r < 0)
                return r;
        return idx_buffer_parse(path, raw, raw_size, ret);
}

/* SPDX-License-Identifier: MIT */
#pragma once

/* IDX files (the MNIST format): a magic of two zero bytes, an element
 * type byte and a dimension count, the dimensions as big-endian uint32,
 * then the elements row-major. Only unsigned-byte elements (type 0x08),
 * which is what image and label files use. Gzipped files (detected by the
 * gzip magic, not the name) are decompressed into memory. */

#include <stddef.h>
#include <stdint.h>

#define IDX_MAX_DIMS 4

typedef struct IdxFile {
        uint8_t *buffer;     /* owned: the whole (decompressed) file */
        const uint8_t *data; /* the elements, inside buffer */
        uint32_t ndim;
        uint32_t dims[IDX_MAX_DIMS];
} IdxFile;

/* Reads and verifies path: magic, element type, dimension count within
 * 1..IDX_MAX_DIMS, and exactly as many data bytes as the dimensions say
 * (truncated and oversized files are errors). -CVOPT_E_DATA or -errno with
 * detail naming the file. */
int idx_file_read(const char *path, IdxFile *ret);

/* The same checks on a file already in memory (for fuzzing): takes
 * ownership of raw (malloc'ed, freed here on every path); path only names
 * the data in messages. */
int idx_buffer_parse(const char *path, uint8_t *raw, size_t raw_size, IdxFile *ret);
void idx_file_done(IdxFile *f);

/* SPDX-License-Identifier: MIT */
#pragma once

/* Whole-file reads and atomic writes for engine/data. Errors are -errno
 * with detail naming the file. */

#include <stddef.h>
#include <stdint.h>

/* Reads a regular file of at most max_bytes into a new buffer (with one
 * NUL byte after the data, not counted in *ret_size). -EFBIG beyond
 * max_bytes, -EISDIR/-EINVAL for a non-regular file. */
int file_read_all(const char *path, size_t max_bytes, uint8_t **ret_data, size_t *ret_size);

/* Writes data to a temporary file next to path and renames it over path,
 * so readers never see a half-written file. */
int file_write_atomic(const char *path, const void *data, size_t size);

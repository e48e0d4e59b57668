/* SPDX-License-Identifier: MIT */
#pragma once

/* The on-disk cache of compiled program binaries and tuned work-group
 * sizes: one file per entry, named by kind and a 64-bit key (a hash of the
 * device name, driver version, kernel source and build options, plus the
 * problem for tuning entries). Each file carries its key, length and a
 * checksum of its payload, so a truncated, corrupted or foreign file is
 * detected, removed, and rebuilt by the caller. Writes go to a temporary
 * file renamed into place, so concurrent sessions never read a half-written
 * entry. */

#include <stddef.h>
#include <stdint.h>

/* FNV-1a, 64 bits: chaining hash for building keys (start with 0). */
uint64_t cl_hash(uint64_t hash, const void *data, size_t size);

/* Resolves the cache directory: dir if non-NULL, else CVOPT_CACHE_DIR,
 * else $XDG_CACHE_HOME/cvopt, else $HOME/.cache/cvopt; "" disables. */
void cl_cache_dir_resolve(const char *dir, char *buf, size_t size);

/* 0 and a malloc'ed payload; -ENOENT if absent; -CVOPT_E_CRC if the entry
 * was corrupt or stale (the file is then removed). */
int cl_cache_load(const char *dir, const char *kind, uint64_t key, void **ret_data, size_t *ret_size);
/* Creates dir (and parents) if needed. Failures are returned, and callers
 * ignore them: a read-only cache only costs compile time. */
int cl_cache_store(const char *dir, const char *kind, uint64_t key, const void *data, size_t size);
/* Removes an entry (used when a loaded binary fails to build). */
void cl_cache_remove(const char *dir, const char *kind, uint64_t key);

/* SPDX-License-Identifier: MIT */
#pragma once

/* SHA-256 (FIPS 180-4), for the source-model hash in provenance. Small and
 * self-contained so the optimizer needs no crypto library. */

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_BYTES 32

typedef struct Sha256 {
        uint32_t state[8];
        uint64_t n_bytes;
        uint8_t block[64];
        size_t block_used;
} Sha256;

void sha256_init(Sha256 *s);
void sha256_update(Sha256 *s, const void *data, size_t size);
void sha256_final(Sha256 *s, uint8_t ret_digest[SHA256_DIGEST_BYTES]);

/* Digest of a buffer as 64 lowercase hex digits plus NUL. */
void sha256_hex(const void *data, size_t size, char ret_hex[2 * SHA256_DIGEST_BYTES + 1]);

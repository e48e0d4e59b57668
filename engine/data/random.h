/* SPDX-License-Identifier: MIT */
#pragma once

/* A small, fixed PRNG for reproducible choices (dataset subsets): the
 * same seed gives the same sequence on every machine and libc, which
 * rand() does not promise. xoshiro256** (Blackman and Vigna, 2018), its
 * state filled from the seed by splitmix64 as its authors recommend. Not
 * for anything secret. */

#include <stdint.h>

typedef struct Random {
        uint64_t s[4];
} Random;

static inline uint64_t splitmix64_next(uint64_t *x) {
        uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

static inline void random_init(Random *r, uint64_t seed) {
        for (int i = 0; i < 4; i++)
                r->s[i] = splitmix64_next(&seed);
}

static inline uint64_t random_rotl(uint64_t x, int k) {
        return (x << k) | (x >> (64 - k));
}

static inline uint64_t random_next(Random *r) {
        uint64_t result = random_rotl(r->s[1] * 5, 7) * 9;
        uint64_t t = r->s[1] << 17;

        r->s[2] ^= r->s[0];
        r->s[3] ^= r->s[1];
        r->s[1] ^= r->s[2];
        r->s[0] ^= r->s[3];
        r->s[2] ^= t;
        r->s[3] = random_rotl(r->s[3], 45);
        return result;
}

/* Uniform in [0, bound), bound > 0, without modulo bias: draws that fall
 * in the incomplete last block of 2^64 are rejected and redrawn. */
static inline uint64_t random_below(Random *r, uint64_t bound) {
        uint64_t limit = UINT64_MAX - UINT64_MAX % bound, x;

        do
                x = random_next(r);
        while (x >= limit);
        return x % bound;
}

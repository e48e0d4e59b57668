/* SPDX-License-Identifier: MIT */
#pragma once

/* Helpers for tests of int8 ops (test-qops, test-kernels-int8). Include
 * after <cmocka.h>; define QTEST_RNG_SEED first to pick the test's data. */

#include <stdint.h>
#include <stdlib.h>

#include "cvopt/cvopt.h"

/* xorshift64: fixed-seed data, the same on every machine. */
static uint64_t rng_state = QTEST_RNG_SEED;
static inline uint32_t rng(void) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return (uint32_t) (rng_state >> 11);
}

/* Per-tensor quantization of t: real = scale * (q - zero_point). */
static inline void set_quant(CvoptTensor *t, float scale, int32_t zero_point) {
        t->quant.axis = -1;
        t->quant.count = 1;
        t->quant.scale = malloc(sizeof(float));
        t->quant.zero_point = malloc(sizeof(int32_t));
        assert_non_null(t->quant.scale);
        assert_non_null(t->quant.zero_point);
        t->quant.scale[0] = scale;
        t->quant.zero_point[0] = zero_point;
}

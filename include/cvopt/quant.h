/* SPDX-License-Identifier: MIT */
#pragma once

/* The int8 numerics contract (docs/quantization.md). Every backend — this
 * scalar reference, SIMD CPU kernels, OpenCL kernels — computes exactly
 * these integer formulas, so their outputs are bit-identical.
 *
 * Activations are asymmetric uint8: real = scale * (q - zero_point).
 * Weights are symmetric int8 per output channel: real = scale[c] * q.
 * A conv/gemm accumulates sum(x_q * w_q) in int32, starting from an int32
 * bias that already holds -zero_point_x * sum(w_q) (so padding reads
 * zero_point_x and the inner loop is a plain u8 x s8 dot product), then
 * requantizes with a 32-bit fixed-point multiplier and a rounding right
 * shift:
 *
 *     y = clamp(zero_point_y + ((acc * multiplier + 2^(shift-1)) >> shift),
 *               out_min, out_max)
 *
 * computed in int64 with an arithmetic (flooring) shift, which rounds
 * halves towards +infinity. multiplier is in [2^30, 2^31) and shift in
 * [1, 62], so acc * multiplier + 2^(shift-1) never overflows int64 for any
 * int32 acc. */

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CVOPT_SHIFT_MIN 1
#define CVOPT_SHIFT_MAX 62

static inline int64_t cvopt_rounding_shift(int64_t value, int32_t multiplier, int32_t shift) {
        return (value * multiplier + ((int64_t) 1 << (shift - 1))) >> shift;
}

static inline int32_t cvopt_clamp_i32(int64_t v, int32_t lo, int32_t hi) {
        return v < lo ? lo : v > hi ? hi : (int32_t) v;
}

static inline uint8_t cvopt_requantize(int32_t acc, int32_t multiplier, int32_t shift, int32_t zero_point,
                                   int32_t out_min, int32_t out_max) {
        return (uint8_t) cvopt_clamp_i32(zero_point + cvopt_rounding_shift(acc, multiplier, shift), out_min, out_max);
}

/* Splits a positive real multiplier into multiplier * 2^-shift with
 * multiplier in [2^30, 2^31). Fails (-ERANGE) when the real value is too
 * large (>= 2^30) for the contract; a value too small for shift <= 62
 * becomes multiplier 0 (the output is then the zero point). Done once, on
 * the host, when a model is quantized: the integers are stored in the
 * model so no backend converts floats at run time. */
int cvopt_quantize_multiplier(double real, int32_t *ret_multiplier, int32_t *ret_shift);

#ifdef __cplusplus
}
#endif

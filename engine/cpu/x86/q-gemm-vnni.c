/* SPDX-License-Identifier: MIT */
/* AVX-512 VNNI int8 kernels: vpdpbusd adds four u8 x s8 products into each
 * int32 lane, exactly (no intermediate saturation). Compiled with
 * -mavx512f -mavx512bw -mavx512vnni; called only when the CPU has them. */
#include <immintrin.h>

#include "cpu/q-simd.h"
#include "cvopt/quant.h"
#include "macro.h"

void q_gemm_vnni(const QPackedWeights *w, const void *cols, int64_t pixels_padded, const QGemmTile *tile, int32_t *acc) {
        const int64_t steps = w->steps;
        const uint8_t *c8 = cols;

        for (int64_t ob = tile->block_begin; ob < tile->block_end; ob++) {
                const int32_t *wb = (const int32_t *) w->data + ob * steps * Q_OC_BLOCK;

                for (int64_t p = tile->pixel_begin; p < tile->pixel_end; p += Q_PIXEL_BLOCK) {
                        __m512i sum[Q_OC_BLOCK][2];

#pragma GCC unroll 8
                        for (int o = 0; o < Q_OC_BLOCK; o++)
                                sum[o][0] = sum[o][1] = _mm512_setzero_si512();
                        for (int64_t s = 0; s < steps; s++) {
                                const uint8_t *src = c8 + ((size_t) s * (size_t) pixels_padded + (size_t) p) * 4;
                                const __m512i x0 = _mm512_loadu_si512(src), x1 = _mm512_loadu_si512(src + 64);
                                const int32_t *quad = wb + s * Q_OC_BLOCK;

#pragma GCC unroll 8
                                for (int o = 0; o < Q_OC_BLOCK; o++) {
                                        const __m512i b = _mm512_set1_epi32(quad[o]);

                                        sum[o][0] = _mm512_dpbusd_epi32(sum[o][0], x0, b);
                                        sum[o][1] = _mm512_dpbusd_epi32(sum[o][1], x1, b);
                                }
                        }
                        for (int o = 0; o < Q_OC_BLOCK; o++) {
                                int64_t oc = ob * Q_OC_BLOCK + o;

                                if (oc >= w->channels)
                                        break;
                                _mm512_storeu_si512(acc + oc * pixels_padded + p, sum[o][0]);
                                _mm512_storeu_si512(acc + oc * pixels_padded + p + 16, sum[o][1]);
                        }
                }
        }
}

void q_gemv_vnni(const QPackedWeights *w, const uint8_t *x, int64_t channel_begin, int64_t channel_end, int32_t *acc) {
        const int8_t *rows = w->rows;
        const int64_t length = w->row_length;
        int64_t c = channel_begin;

        /* Four rows at a time share each load of x. */
        for (; c + 4 <= channel_end; c += 4) {
                __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
                const int8_t *r0 = rows + c * length;

                for (int64_t k = 0; k < length; k += 64) {
                        const __m512i v = _mm512_loadu_si512(x + k);

                        s0 = _mm512_dpbusd_epi32(s0, v, _mm512_loadu_si512(r0 + k));
                        s1 = _mm512_dpbusd_epi32(s1, v, _mm512_loadu_si512(r0 + length + k));
                        s2 = _mm512_dpbusd_epi32(s2, v, _mm512_loadu_si512(r0 + 2 * length + k));
                        s3 = _mm512_dpbusd_epi32(s3, v, _mm512_loadu_si512(r0 + 3 * length + k));
                }
                acc[c] = _mm512_reduce_add_epi32(s0);
                acc[c + 1] = _mm512_reduce_add_epi32(s1);
                acc[c + 2] = _mm512_reduce_add_epi32(s2);
                acc[c + 3] = _mm512_reduce_add_epi32(s3);
        }
        for (; c < channel_end; c++) {
                __m512i s = _mm512_setzero_si512();

                for (int64_t k = 0; k < length; k += 64)
                        s = _mm512_dpbusd_epi32(s, _mm512_loadu_si512(x + k), _mm512_loadu_si512(rows + c * length + k));
                acc[c] = _mm512_reduce_add_epi32(s);
        }
}

/* Requantizes one channel's row of accumulators to uint8, 16 lanes at a
 * time, with the same integer formula as cvopt_requantize(): 64-bit
 * products (even and odd lanes separately), rounding, arithmetic shift,
 * clamp, zero point. */
void q_requant_row_vnni(const int32_t *acc, int64_t n, int32_t bias, int32_t multiplier, int32_t shift,
                        int32_t zero_point, int32_t out_min, int32_t out_max, uint8_t *out) {
        const __m512i vbias = _mm512_set1_epi32(bias), vm = _mm512_set1_epi64(multiplier);
        const __m512i round = _mm512_set1_epi64((int64_t) 1 << (shift - 1));
        const __m512i lo = _mm512_set1_epi64((int64_t) out_min - zero_point), hi = _mm512_set1_epi64((int64_t) out_max - zero_point);
        const __m512i vzp = _mm512_set1_epi32(zero_point);
        const __m128i count = _mm_cvtsi32_si128(shift);
        int64_t i = 0;

        for (; i + 16 <= n; i += 16) {
                __m512i v = _mm512_add_epi32(_mm512_loadu_si512(acc + i), vbias);
                __m512i even = _mm512_mul_epi32(v, vm);
                __m512i odd = _mm512_mul_epi32(_mm512_srli_epi64(v, 32), vm);

                even = _mm512_min_epi64(_mm512_max_epi64(_mm512_sra_epi64(_mm512_add_epi64(even, round), count), lo), hi);
                odd = _mm512_min_epi64(_mm512_max_epi64(_mm512_sra_epi64(_mm512_add_epi64(odd, round), count), lo), hi);
                v = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
                _mm_storeu_si128((__m128i *) (out + i), _mm512_cvtepi32_epi8(_mm512_add_epi32(v, vzp)));
        }
        for (; i < n; i++)
                out[i] = cvopt_requantize(acc[i] + bias, multiplier, shift, zero_point, out_min, out_max);
}

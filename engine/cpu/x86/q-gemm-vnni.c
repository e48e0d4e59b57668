/* SPDX-License-Identifier: MIT */
/* AVX-512 VNNI int8 kernels: vpdpbusd adds four u8 x s8 products into each
 * int32 lane, exactly (no intermediate saturation). Compiled with
 * -mavx512f -mavx512bw -mavx512vnni; called only when the CPU has them. */
#include <immintrin.h>

#include "cpu/q-simd.h"
#include "macro.h"

void q_gemm_vnni(const QPackedWeights *w, const void *cols, int64_t pixels_padded, int32_t *acc) {
        const int64_t blocks = DIV_ROUND_UP(w->channels, Q_OC_BLOCK), steps = w->steps;
        const uint8_t *c8 = cols;

        for (int64_t ob = 0; ob < blocks; ob++) {
                const int32_t *wb = (const int32_t *) w->data + ob * steps * Q_OC_BLOCK;

                for (int64_t p = 0; p < pixels_padded; p += Q_PIXEL_BLOCK) {
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

void q_gemv_vnni(const QPackedWeights *w, const uint8_t *x, int32_t *acc) {
        const int8_t *rows = w->rows;
        const int64_t length = w->row_length;
        int64_t c = 0;

        /* Four rows at a time share each load of x. */
        for (; c + 4 <= w->channels; c += 4) {
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
        for (; c < w->channels; c++) {
                __m512i s = _mm512_setzero_si512();

                for (int64_t k = 0; k < length; k += 64)
                        s = _mm512_dpbusd_epi32(s, _mm512_loadu_si512(x + k), _mm512_loadu_si512(rows + c * length + k));
                acc[c] = _mm512_reduce_add_epi32(s);
        }
}

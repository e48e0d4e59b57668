/* SPDX-License-Identifier: MIT */
/* AVX2 int8 kernels on int16 pairs: vpmaddwd multiplies 16-bit values and
 * adds adjacent products into int32 exactly. (vpmaddubsw would take the
 * u8/s8 bytes directly but saturates its 16-bit pair sums, which breaks the
 * bit-identical contract.) Compiled with -mavx2; called only when the CPU
 * has it. */
#include <immintrin.h>

#include "cpu/q-simd.h"
#include "macro.h"

/* 4 rows x 2 vectors of 8 pixels: 8 accumulators, 2 loads and a broadcast
 * stay within AVX2's 16 registers. */
#define ROWS 4

void q_gemm_avx2(const QPackedWeights *w, const void *cols, int64_t pixels_padded, int32_t *acc) {
        const int64_t blocks = DIV_ROUND_UP(w->channels, Q_OC_BLOCK), steps = w->steps;
        const int16_t *c16 = cols;

        for (int64_t ob = 0; ob < blocks; ob++) {
                const int32_t *wb = (const int32_t *) w->data + ob * steps * Q_OC_BLOCK;

                for (int half = 0; half < Q_OC_BLOCK / ROWS; half++)
                        for (int64_t p = 0; p < pixels_padded; p += 16) {
                                __m256i sum[ROWS][2];

#pragma GCC unroll 4
                                for (int o = 0; o < ROWS; o++)
                                        sum[o][0] = sum[o][1] = _mm256_setzero_si256();
                                for (int64_t s = 0; s < steps; s++) {
                                        const int16_t *src = c16 + ((size_t) s * (size_t) pixels_padded + (size_t) p) * 2;
                                        const __m256i x0 = _mm256_loadu_si256((const __m256i *) src);
                                        const __m256i x1 = _mm256_loadu_si256((const __m256i *) (src + 16));
                                        const int32_t *pair = wb + s * Q_OC_BLOCK + half * ROWS;

#pragma GCC unroll 4
                                        for (int o = 0; o < ROWS; o++) {
                                                const __m256i b = _mm256_set1_epi32(pair[o]);

                                                sum[o][0] = _mm256_add_epi32(sum[o][0], _mm256_madd_epi16(x0, b));
                                                sum[o][1] = _mm256_add_epi32(sum[o][1], _mm256_madd_epi16(x1, b));
                                        }
                                }
                                for (int o = 0; o < ROWS; o++) {
                                        int64_t oc = ob * Q_OC_BLOCK + half * ROWS + o;

                                        if (oc >= w->channels)
                                                break;
                                        _mm256_storeu_si256((__m256i *) (acc + oc * pixels_padded + p), sum[o][0]);
                                        _mm256_storeu_si256((__m256i *) (acc + oc * pixels_padded + p + 8), sum[o][1]);
                                }
                        }
        }
}

static int32_t hsum(__m256i v) {
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));

        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
        return _mm_cvtsi128_si32(s);
}

void q_gemv_avx2(const QPackedWeights *w, const uint8_t *x, int32_t *acc) {
        const int16_t *rows = w->rows;
        const int64_t length = w->row_length;
        int64_t c = 0;

        for (; c + 4 <= w->channels; c += 4) {
                __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
                const int16_t *r0 = rows + c * length;

                for (int64_t k = 0; k < length; k += 16) {
                        const __m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *) (x + k)));

                        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(v, _mm256_loadu_si256((const __m256i *) (r0 + k))));
                        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(v, _mm256_loadu_si256((const __m256i *) (r0 + length + k))));
                        s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(v, _mm256_loadu_si256((const __m256i *) (r0 + 2 * length + k))));
                        s3 = _mm256_add_epi32(s3, _mm256_madd_epi16(v, _mm256_loadu_si256((const __m256i *) (r0 + 3 * length + k))));
                }
                acc[c] = hsum(s0);
                acc[c + 1] = hsum(s1);
                acc[c + 2] = hsum(s2);
                acc[c + 3] = hsum(s3);
        }
        for (; c < w->channels; c++) {
                __m256i s = _mm256_setzero_si256();

                for (int64_t k = 0; k < length; k += 16) {
                        const __m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *) (x + k)));

                        s = _mm256_add_epi32(s, _mm256_madd_epi16(v, _mm256_loadu_si256((const __m256i *) (rows + c * length + k))));
                }
                acc[c] = hsum(s);
        }
}

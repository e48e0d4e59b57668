/* SPDX-License-Identifier: MIT */
/* AVX2 int8 kernels on int16 pairs: vpmaddwd multiplies 16-bit values and
 * adds adjacent products into int32 exactly. (vpmaddubsw would take the
 * u8/s8 bytes directly but saturates its 16-bit pair sums, which breaks the
 * bit-identical contract.) Compiled with -mavx2; called only when the CPU
 * has it. */
#include <immintrin.h>
#include <string.h>

#include "cpu/q-simd.h"
#include "cvopt/quant.h"
#include "macro.h"

/* 4 rows x 2 vectors of 8 pixels: 8 accumulators, 2 loads and a broadcast
 * stay within AVX2's 16 registers. */
#define ROWS 4

void q_gemm_avx2(const QPackedWeights *w, const void *cols, int64_t pixels_padded, const QGemmTile *tile, int32_t *acc) {
        const int64_t steps = w->steps;
        const int16_t *c16 = cols;

        for (int64_t ob = tile->block_begin; ob < tile->block_end; ob++) {
                const int32_t *wb = (const int32_t *) w->data + ob * steps * Q_OC_BLOCK;

                for (int half = 0; half < Q_OC_BLOCK / ROWS; half++)
                        for (int64_t p = tile->pixel_begin; p < tile->pixel_end; p += 16) {
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

/* 16 weights of a row, widened to int16. */
static inline __m256i load_s8(const int8_t *p) {
        return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *) p));
}

void q_gemv_avx2(const QPackedWeights *w, const uint8_t *x, int64_t channel_begin, int64_t channel_end, int32_t *acc) {
        const int8_t *rows = w->rows;
        const int64_t length = w->row_length;
        int64_t c = channel_begin;

        for (; c + 4 <= channel_end; c += 4) {
                __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
                const int8_t *r0 = rows + c * length;

                for (int64_t k = 0; k < length; k += 16) {
                        const __m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *) (x + k)));

                        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(v, load_s8(r0 + k)));
                        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(v, load_s8(r0 + length + k)));
                        s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(v, load_s8(r0 + 2 * length + k)));
                        s3 = _mm256_add_epi32(s3, _mm256_madd_epi16(v, load_s8(r0 + 3 * length + k)));
                }
                acc[c] = hsum(s0);
                acc[c + 1] = hsum(s1);
                acc[c + 2] = hsum(s2);
                acc[c + 3] = hsum(s3);
        }
        for (; c < channel_end; c++) {
                __m256i s = _mm256_setzero_si256();

                for (int64_t k = 0; k < length; k += 16) {
                        const __m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *) (x + k)));

                        s = _mm256_add_epi32(s, _mm256_madd_epi16(v, load_s8(rows + c * length + k)));
                }
                acc[c] = hsum(s);
        }
}

/* 64-bit clamp from compares, which AVX2 has (max/min of 64-bit lanes it
 * does not). */
static inline __m256i clamp_epi64(__m256i v, __m256i lo, __m256i hi) {
        v = _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v));
        return _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi));
}

/* As q_requant_row_vnni, 8 lanes at a time. AVX2 has no 64-bit arithmetic
 * shift: the rounded product is offset by 2^62 (|acc * m + round| < 2^62 + 2^61,
 * so the sum is non-negative and fits 64 unsigned bits), shifted logically,
 * and 2^(62 - shift) taken off again: the same floor division. */
void q_requant_row_avx2(const int32_t *acc, int64_t n, int32_t bias, int32_t multiplier, int32_t shift,
                        int32_t zero_point, int32_t out_min, int32_t out_max, uint8_t *out) {
        const __m256i vbias = _mm256_set1_epi32(bias), vm = _mm256_set1_epi64x(multiplier);
        const __m256i offset = _mm256_set1_epi64x(((int64_t) 1 << (shift - 1)) + ((int64_t) 1 << 62));
        const __m256i unoffset = _mm256_set1_epi64x((int64_t) 1 << (62 - shift));
        const __m256i lo = _mm256_set1_epi64x((int64_t) out_min - zero_point);
        const __m256i hi = _mm256_set1_epi64x((int64_t) out_max - zero_point);
        const __m256i vzp = _mm256_set1_epi32(zero_point);
        /* Low byte of each 32-bit lane, within each 128-bit half. */
        const __m256i bytes = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                               0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
        const __m128i count = _mm_cvtsi32_si128(shift);
        int64_t i = 0;

        for (; i + 8 <= n; i += 8) {
                __m256i v = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *) (acc + i)), vbias);
                __m256i even = _mm256_mul_epi32(v, vm);
                __m256i odd = _mm256_mul_epi32(_mm256_srli_epi64(v, 32), vm);

                even = _mm256_sub_epi64(_mm256_srl_epi64(_mm256_add_epi64(even, offset), count), unoffset);
                odd = _mm256_sub_epi64(_mm256_srl_epi64(_mm256_add_epi64(odd, offset), count), unoffset);
                even = clamp_epi64(even, lo, hi);
                odd = clamp_epi64(odd, lo, hi);
                v = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
                v = _mm256_shuffle_epi8(_mm256_add_epi32(v, vzp), bytes);
                uint32_t low = (uint32_t) _mm256_extract_epi32(v, 0), high = (uint32_t) _mm256_extract_epi32(v, 4);
                memcpy(out + i, &low, 4);
                memcpy(out + i + 4, &high, 4);
        }
        for (; i < n; i++)
                out[i] = cvopt_requantize(acc[i] + bias, multiplier, shift, zero_point, out_min, out_max);
}

/* 2x2 stride-2 max pooling of one uint8 plane (height and width even, no
 * padding): the common CNN downsampling. Vertical max of two rows, then
 * the max of each horizontal byte pair, packed back to bytes; 32 outputs
 * per iteration. Max commutes with the affine map, so no requantization. */
void q_maxpool2_avx2(const uint8_t *x, int64_t height, int64_t width, uint8_t *y) {
        const __m256i low_bytes = _mm256_set1_epi16(0x00ff);
        const int64_t out_h = height / 2, out_w = width / 2;

        for (int64_t oy = 0; oy < out_h; oy++) {
                const uint8_t *r0 = x + 2 * oy * width, *r1 = r0 + width;
                uint8_t *o = y + oy * out_w;
                int64_t ox = 0;

                for (; ox + 32 <= out_w; ox += 32) {
                        __m256i a = _mm256_max_epu8(_mm256_loadu_si256((const __m256i *) (r0 + 2 * ox)),
                                                    _mm256_loadu_si256((const __m256i *) (r1 + 2 * ox)));
                        __m256i b = _mm256_max_epu8(_mm256_loadu_si256((const __m256i *) (r0 + 2 * ox + 32)),
                                                    _mm256_loadu_si256((const __m256i *) (r1 + 2 * ox + 32)));

                        a = _mm256_and_si256(_mm256_max_epu8(a, _mm256_srli_epi16(a, 8)), low_bytes);
                        b = _mm256_and_si256(_mm256_max_epu8(b, _mm256_srli_epi16(b, 8)), low_bytes);
                        _mm256_storeu_si256((__m256i *) (o + ox), _mm256_permute4x64_epi64(_mm256_packus_epi16(a, b), 0xd8));
                }
                /* 8 outputs from 16 bytes per row; the last group may
                 * overlap the previous one (it rewrites the same values),
                 * so rows of 8..31 outputs (28x28 and 14x14 inputs) avoid
                 * the scalar loop. */
                if (out_w >= 8)
                        for (;;) {
                                if (ox + 8 > out_w) {
                                        if (ox == out_w)
                                                break;
                                        ox = out_w - 8;
                                }
                                __m128i a = _mm_max_epu8(_mm_loadu_si128((const __m128i *) (r0 + 2 * ox)),
                                                         _mm_loadu_si128((const __m128i *) (r1 + 2 * ox)));

                                a = _mm_and_si128(_mm_max_epu8(a, _mm_srli_epi16(a, 8)), _mm256_castsi256_si128(low_bytes));
                                _mm_storel_epi64((__m128i *) (o + ox), _mm_packus_epi16(a, a));
                                ox += 8;
                        }
                /* The same with 4 outputs from 8 bytes (7x7 outputs). */
                if (out_w >= 4 && out_w < 8)
                        for (;;) {
                                if (ox + 4 > out_w) {
                                        if (ox == out_w)
                                                break;
                                        ox = out_w - 4;
                                }
                                __m128i a = _mm_max_epu8(_mm_loadl_epi64((const __m128i *) (r0 + 2 * ox)),
                                                         _mm_loadl_epi64((const __m128i *) (r1 + 2 * ox)));
                                int32_t four;

                                a = _mm_and_si128(_mm_max_epu8(a, _mm_srli_epi16(a, 8)), _mm256_castsi256_si128(low_bytes));
                                four = _mm_cvtsi128_si32(_mm_packus_epi16(a, a));
                                memcpy(o + ox, &four, 4);
                                ox += 4;
                        }
                for (; ox < out_w; ox++) {
                        uint8_t m0 = MAX(r0[2 * ox], r0[2 * ox + 1]), m1 = MAX(r1[2 * ox], r1[2 * ox + 1]);

                        o[ox] = MAX(m0, m1);
                }
        }
}

/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "macro.h"
#include "q-simd.h"

QIsa q_isa_detect(void) {
        const char *forced = getenv("CVOPT_CPU_ISA");
        QIsa best = Q_ISA_NONE;

#if defined(__x86_64__)
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2"))
                best = Q_ISA_AVX2;
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vnni"))
                best = Q_ISA_AVX512_VNNI;
#endif
        if (forced) {
                if (streq(forced, "none"))
                        return Q_ISA_NONE;
                if (streq(forced, "avx2") && best >= Q_ISA_AVX2)
                        return Q_ISA_AVX2;
        }
        return best;
}

const char *q_isa_name(QIsa isa) {
        switch (isa) {
        case Q_ISA_AVX2:
                return "avx2";
        case Q_ISA_AVX512_VNNI:
                return "avx512-vnni";
        default:
                return "none";
        }
}

void q_packed_weights_done(QPackedWeights *w) {
        free(w->data);
        free(w->rows);
        memset(w, 0, sizeof(*w));
}

int q_pack_weights(QIsa isa, const int8_t *w, int64_t channels, int64_t depth, QPackedWeights *ret) {
        QPackedWeights p = { .isa = isa, .channels = channels, .depth = depth };
        const int64_t blocks = DIV_ROUND_UP(channels, Q_OC_BLOCK);
        size_t elem;

        if (isa == Q_ISA_NONE || channels <= 0 || depth <= 0)
                return -EINVAL;
        p.step = isa == Q_ISA_AVX512_VNNI ? 4 : 2;
        p.steps = DIV_ROUND_UP(depth, p.step);
        /* Rows of the GEMV layout are padded to 64 k values, one AVX-512
         * load (AVX2 reads 16 at a time, which divides it). */
        p.row_length = DIV_ROUND_UP(depth, 64) * 64;
        elem = isa == Q_ISA_AVX512_VNNI ? 1 : 2;
        p.data = calloc((size_t) (blocks * p.steps * Q_OC_BLOCK * p.step), elem);
        /* GEMV rows stay s8 for both ISAs: the GEMV streams every weight
         * once per inference, so it is bound by their bytes, and AVX2
         * widens 16 at a time for the price of one shuffle. */
        p.rows = calloc((size_t) (channels * p.row_length), 1);
        if (!p.data || !p.rows) {
                q_packed_weights_done(&p);
                return -ENOMEM;
        }
        for (int64_t c = 0; c < channels; c++)
                for (int64_t k = 0; k < depth; k++) {
                        int8_t v = w[c * depth + k];
                        size_t at = (((size_t) (c / Q_OC_BLOCK) * (size_t) p.steps + (size_t) (k / p.step)) * Q_OC_BLOCK +
                                     (size_t) (c % Q_OC_BLOCK)) * (size_t) p.step + (size_t) (k % p.step);
                        size_t row_at = (size_t) c * (size_t) p.row_length + (size_t) k;

                        if (elem == 1)
                                ((int8_t *) p.data)[at] = v;
                        else
                                ((int16_t *) p.data)[at] = v;
                        ((int8_t *) p.rows)[row_at] = v;
                }
        *ret = p;
        return 0;
}

size_t q_cols_bytes(const QPackedWeights *w, int64_t pixels) {
        int64_t padded = DIV_ROUND_UP(pixels, Q_PIXEL_BLOCK) * Q_PIXEL_BLOCK;

        return (size_t) (w->steps * padded * w->step) * (w->isa == Q_ISA_AVX512_VNNI ? 1 : 2);
}

void q_cols_pack_step(const QPackedWeights *w, const uint8_t *const *rows, int64_t pixels_padded, int64_t s,
                      int64_t pixel_begin, int64_t pixel_end, void *cols) {
        int64_t p = pixel_begin;

        assert(pixel_begin % 16 == 0 && pixel_end % 16 == 0 && pixel_end <= pixels_padded);

        if (w->isa == Q_ISA_AVX512_VNNI) {
                uint8_t *dst = (uint8_t *) cols + (size_t) (s * pixels_padded) * 4;

#if defined(__SSE2__)
                /* 16 pixels of 4 rows -> 16 lanes of (k0, k1, k2, k3). */
                for (; p + 16 <= pixel_end; p += 16) {
                        __m128i a = _mm_loadu_si128((const __m128i *) (rows[0] + p));
                        __m128i b = _mm_loadu_si128((const __m128i *) (rows[1] + p));
                        __m128i c = _mm_loadu_si128((const __m128i *) (rows[2] + p));
                        __m128i d = _mm_loadu_si128((const __m128i *) (rows[3] + p));
                        __m128i ab_lo = _mm_unpacklo_epi8(a, b), ab_hi = _mm_unpackhi_epi8(a, b);
                        __m128i cd_lo = _mm_unpacklo_epi8(c, d), cd_hi = _mm_unpackhi_epi8(c, d);
                        uint8_t *o = dst + p * 4;

                        _mm_storeu_si128((__m128i *) o, _mm_unpacklo_epi16(ab_lo, cd_lo));
                        _mm_storeu_si128((__m128i *) (o + 16), _mm_unpackhi_epi16(ab_lo, cd_lo));
                        _mm_storeu_si128((__m128i *) (o + 32), _mm_unpacklo_epi16(ab_hi, cd_hi));
                        _mm_storeu_si128((__m128i *) (o + 48), _mm_unpackhi_epi16(ab_hi, cd_hi));
                }
#endif
                for (; p < pixel_end; p++)
                        for (int j = 0; j < 4; j++)
                                dst[p * 4 + j] = rows[j][p];
                return;
        }

        int16_t *dst = (int16_t *) cols + (size_t) (s * pixels_padded) * 2;
#if defined(__SSE2__)
        /* 16 pixels of 2 rows -> 16 pairs of int16 (k0, k1). */
        const __m128i zero = _mm_setzero_si128();
        for (; p + 16 <= pixel_end; p += 16) {
                __m128i a = _mm_loadu_si128((const __m128i *) (rows[0] + p));
                __m128i b = _mm_loadu_si128((const __m128i *) (rows[1] + p));
                __m128i lo = _mm_unpacklo_epi8(a, b), hi = _mm_unpackhi_epi8(a, b);
                int16_t *o = dst + p * 2;

                _mm_storeu_si128((__m128i *) o, _mm_unpacklo_epi8(lo, zero));
                _mm_storeu_si128((__m128i *) (o + 8), _mm_unpackhi_epi8(lo, zero));
                _mm_storeu_si128((__m128i *) (o + 16), _mm_unpacklo_epi8(hi, zero));
                _mm_storeu_si128((__m128i *) (o + 24), _mm_unpackhi_epi8(hi, zero));
        }
#endif
        for (; p < pixel_end; p++)
                for (int j = 0; j < 2; j++)
                        dst[p * 2 + j] = rows[j][p];
}

/* Only x86 builds have the kernels; elsewhere q_isa_detect() says NONE and
 * the backend declines every op, so these are never reached. */
void q_gemm(const QPackedWeights *w, const void *cols, int64_t pixels_padded, const QGemmTile *tile, int32_t *acc) {
        assert(tile->pixel_begin % Q_PIXEL_BLOCK == 0 && tile->pixel_end % Q_PIXEL_BLOCK == 0);
        assert(tile->pixel_end <= pixels_padded && tile->block_end <= DIV_ROUND_UP(w->channels, Q_OC_BLOCK));
#if defined(__x86_64__)
        if (w->isa == Q_ISA_AVX512_VNNI)
                q_gemm_vnni(w, cols, pixels_padded, tile, acc);
        else
                q_gemm_avx2(w, cols, pixels_padded, tile, acc);
#else
        (void) w, (void) cols, (void) pixels_padded, (void) tile, (void) acc;
        abort();
#endif
}

void q_gemv(const QPackedWeights *w, const uint8_t *x, int64_t channel_begin, int64_t channel_end, int32_t *acc) {
        assert(0 <= channel_begin && channel_begin <= channel_end && channel_end <= w->channels);
#if defined(__x86_64__)
        if (w->isa == Q_ISA_AVX512_VNNI)
                q_gemv_vnni(w, x, channel_begin, channel_end, acc);
        else
                q_gemv_avx2(w, x, channel_begin, channel_end, acc);
#else
        (void) w, (void) x, (void) channel_begin, (void) channel_end, (void) acc;
        abort();
#endif
}

void q_requant_row(QIsa isa, const int32_t *acc, int64_t n, int32_t bias, int32_t multiplier, int32_t shift,
                   int32_t zero_point, int32_t out_min, int32_t out_max, uint8_t *out) {
#if defined(__x86_64__)
        if (isa == Q_ISA_AVX512_VNNI)
                q_requant_row_vnni(acc, n, bias, multiplier, shift, zero_point, out_min, out_max, out);
        else
                q_requant_row_avx2(acc, n, bias, multiplier, shift, zero_point, out_min, out_max, out);
#else
        (void) isa, (void) acc, (void) n, (void) bias, (void) multiplier, (void) shift, (void) zero_point,
                (void) out_min, (void) out_max, (void) out;
        abort();
#endif
}

void q_maxpool2(QIsa isa, const uint8_t *x, int64_t height, int64_t width, uint8_t *y) {
#if defined(__x86_64__)
        (void) isa; /* AVX-512 adds nothing here over AVX2 at these sizes. */
        q_maxpool2_avx2(x, height, width, y);
#else
        (void) isa, (void) x, (void) height, (void) width, (void) y;
        abort();
#endif
}

/* SPDX-License-Identifier: MIT */
#pragma once

/* SIMD int8 matrix kernels for QConv/QGemm, chosen at run time from the
 * CPU's features. They compute exactly the reference's int32 accumulators
 * (no saturating instruction is used), and the requantization is the
 * shared inline formula, so results are bit-identical to the reference.
 *
 * Convolution is a GEMM: acc[oc][p] = bias[oc] + sum_k w[oc][k] * col[k][p],
 * where col is the unrolled input. Both operands are packed in "steps" of
 * k: 4 u8 per 32-bit lane for VNNI's vpdpbusd (u8 x s8, 4 products per
 * lane), 2 int16 per lane for AVX2's vpmaddwd (exact, unlike vpmaddubsw,
 * whose pairwise sum saturates at 32767 < 2 * 255 * 127). */

#include <stddef.h>
#include <stdint.h>

typedef enum QIsa {
        Q_ISA_NONE = 0,
        Q_ISA_AVX2,
        Q_ISA_AVX512_VNNI,
} QIsa;

/* The best ISA this CPU runs; CVOPT_CPU_ISA=none|avx2|avx512-vnni lowers
 * it (for tests and benchmarks of each kernel). */
QIsa q_isa_detect(void);
const char *q_isa_name(QIsa isa);

/* Output channels computed together: 8 accumulator rows, each over two
 * vectors of pixels, fill 16 of AVX-512's 32 registers (and AVX2 uses 4
 * rows x 2 vectors of its 16). */
#define Q_OC_BLOCK 8

typedef struct QPackedWeights {
        QIsa isa;
        int64_t channels, depth;
        int64_t steps;      /* ceil(depth / step) */
        int step;           /* k values per 32-bit lane: 4 (VNNI) or 2 (AVX2) */
        int64_t row_length; /* depth rounded up to 64: one AVX-512 load */
        void *data;         /* [ceil(channels / Q_OC_BLOCK)][steps][Q_OC_BLOCK][step], s8 or s16 */
        void *rows;         /* GEMV layout: [channels][row_length], s8 */
} QPackedWeights;

int q_pack_weights(QIsa isa, const int8_t *w, int64_t channels, int64_t depth, QPackedWeights *ret);
void q_packed_weights_done(QPackedWeights *w);

/* Pixels are padded to a multiple of this. */
#define Q_PIXEL_BLOCK 32

/* Bytes of a packed column buffer for depth x pixels. */
size_t q_cols_bytes(const QPackedWeights *w, int64_t pixels);

/* Stores value (a u8 activation) at (k, p) of a packed column buffer. */
static inline void q_cols_set(const QPackedWeights *w, void *cols, int64_t pixels_padded, int64_t k, int64_t p,
                              uint8_t value) {
        size_t at = ((size_t) (k / w->step) * (size_t) pixels_padded + (size_t) p) * (size_t) w->step + (size_t) (k % w->step);

        if (w->isa == Q_ISA_AVX512_VNNI)
                ((uint8_t *) cols)[at] = value;
        else
                ((int16_t *) cols)[at] = value;
}

/* Packs pixels [pixel_begin, pixel_end) (multiples of 16) of step s of a
 * column buffer from w->step rows of pixels_padded u8 values, one row per k
 * value of the step (a row for k >= depth may hold anything: its weights
 * are 0). SSE2 interleaving where the compiler has it, so the unrolled
 * input is written in vectors, not byte by byte. */
void q_cols_pack_step(const QPackedWeights *w, const uint8_t *const *rows, int64_t pixels_padded, int64_t s,
                      int64_t pixel_begin, int64_t pixel_end, void *cols);

/* A part of the GEMM that is computed on its own: output channel blocks
 * [block_begin, block_end) (of Q_OC_BLOCK channels) times pixels
 * [pixel_begin, pixel_end) (multiples of Q_PIXEL_BLOCK). Every accumulator
 * is the same sum whichever tiles the GEMM is cut into, so threads that
 * take different tiles give the one-thread result bit for bit. */
typedef struct QGemmTile {
        int64_t block_begin, block_end;
        int64_t pixel_begin, pixel_end;
} QGemmTile;

/* acc[channels][pixels_padded] = packed weights x packed columns, within
 * tile (other accumulators are left alone). */
void q_gemm(const QPackedWeights *w, const void *cols, int64_t pixels_padded, const QGemmTile *tile, int32_t *acc);

/* acc[c] = w[c] x x for c in [channel_begin, channel_end), for one row x
 * of depth u8 values (x padded to row_length with zeros by the caller: the
 * buffer must be that long). */
void q_gemv(const QPackedWeights *w, const uint8_t *x, int64_t channel_begin, int64_t channel_end, int32_t *acc);

/* out[i] = cvopt_requantize(acc[i] + bias, ...) for a row of n values of
 * one channel, vectorized. */
void q_requant_row(QIsa isa, const int32_t *acc, int64_t n, int32_t bias, int32_t multiplier, int32_t shift,
                   int32_t zero_point, int32_t out_min, int32_t out_max, uint8_t *out);

/* 2x2 stride-2 max pool of one uint8 plane (even height and width). */
void q_maxpool2(QIsa isa, const uint8_t *x, int64_t height, int64_t width, uint8_t *y);

/* ISA kernels (x86/ files, compiled with their own flags). */
void q_gemm_avx2(const QPackedWeights *w, const void *cols, int64_t pixels_padded, const QGemmTile *tile, int32_t *acc);
void q_gemv_avx2(const QPackedWeights *w, const uint8_t *x, int64_t channel_begin, int64_t channel_end, int32_t *acc);
void q_gemm_vnni(const QPackedWeights *w, const void *cols, int64_t pixels_padded, const QGemmTile *tile, int32_t *acc);
void q_gemv_vnni(const QPackedWeights *w, const uint8_t *x, int64_t channel_begin, int64_t channel_end, int32_t *acc);
void q_maxpool2_avx2(const uint8_t *x, int64_t height, int64_t width, uint8_t *y);
void q_requant_row_avx2(const int32_t *acc, int64_t n, int32_t bias, int32_t multiplier, int32_t shift,
                        int32_t zero_point, int32_t out_min, int32_t out_max, uint8_t *out);
void q_requant_row_vnni(const int32_t *acc, int64_t n, int32_t bias, int32_t multiplier, int32_t shift,
                        int32_t zero_point, int32_t out_min, int32_t out_max, uint8_t *out);

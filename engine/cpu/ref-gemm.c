/* SPDX-License-Identifier: MIT */
/* Gemm, MatMul, and the cache-blocked single-precision matrix product that
 * they and Conv (through im2col) share. Plain C written so that gcc -O2
 * vectorizes the micro-kernel; SIMD variants live in their own files. */
#include <stdlib.h>

#include "ref-internal.h"

/* Blocking in the style of GotoBLAS/BLIS: a KC x NC panel of B and an MC x
 * KC block of A are packed into contiguous buffers, and a micro-kernel
 * computes an MR x NR tile of C from them with the tile in registers.
 * MR x NR = 4 x 16 floats keeps the accumulators in 16 SSE (or 8 AVX)
 * registers' worth (measured at -O2 on x86-64 baseline: 4x8, 4x12, 4x24,
 * 8x8 and 2x32 all land within 10% of it, about 31 GFLOP/s); KC = 256 keeps one NR-wide B sliver (16 KiB) in L1;
 * MC = 64 keeps the packed A block (64 KiB) in L2; NC = 512 bounds the packed
 * B panel to 512 KiB. */
#define GEMM_MR 4
#define GEMM_NR 16
#define GEMM_KC 256
#define GEMM_MC 64
#define GEMM_NC 512
#define PACKED_A_FLOATS ((size_t) DIV_ROUND_UP(GEMM_MC, GEMM_MR) * GEMM_MR * GEMM_KC)
#define PACKED_B_FLOATS ((size_t) DIV_ROUND_UP(GEMM_NC, GEMM_NR) * GEMM_NR * GEMM_KC)

static void pack_a(size_t mc, size_t kc, const float *a, size_t a_row, size_t a_col, float *restrict packed) {
        for (size_t i0 = 0; i0 < mc; i0 += GEMM_MR) {
                size_t rows = MIN((size_t) GEMM_MR, mc - i0);

                for (size_t p = 0; p < kc; p++) {
                        for (size_t r = 0; r < rows; r++)
                                packed[r] = a[(i0 + r) * a_row + p * a_col];
                        for (size_t r = rows; r < GEMM_MR; r++)
                                packed[r] = 0;
                        packed += GEMM_MR;
                }
        }
}

static void pack_b(size_t kc, size_t nc, const float *b, size_t b_row, size_t b_col, float *restrict packed) {
        for (size_t j0 = 0; j0 < nc; j0 += GEMM_NR) {
                size_t cols = MIN((size_t) GEMM_NR, nc - j0);

                for (size_t p = 0; p < kc; p++) {
                        const float *src = b + p * b_row + j0 * b_col;

                        if (b_col == 1 && cols == GEMM_NR)
                                memcpy(packed, src, GEMM_NR * sizeof(float));
                        else {
                                for (size_t j = 0; j < cols; j++)
                                        packed[j] = src[j * b_col];
                                for (size_t j = cols; j < GEMM_NR; j++)
                                        packed[j] = 0;
                        }
                        packed += GEMM_NR;
                }
        }
}

/* acc = A_panel (kc x MR, packed by k) * B_sliver (kc x NR, packed by k).
 * The fixed-size inner loop over NR is what the compiler vectorizes. The
 * unroll pragmas let gcc -O2 keep the whole tile in registers (scalar
 * replacement needs constant indices); without them it keeps c[][] in
 * memory and runs 2.2x slower. */
static void micro_kernel(size_t kc, const float *restrict a, const float *restrict b,
                         float acc[GEMM_MR][GEMM_NR]) {
        float c[GEMM_MR][GEMM_NR] = { { 0 } };

        for (size_t p = 0; p < kc; p++) {
#pragma GCC unroll 16
                for (size_t r = 0; r < GEMM_MR; r++) {
                        float av = a[r];

#pragma GCC unroll 16
                        for (size_t j = 0; j < GEMM_NR; j++)
                                c[r][j] += av * b[j];
                }
                a += GEMM_MR;
                b += GEMM_NR;
        }
        memcpy(acc, c, sizeof(c));
}

/* Dot product of k contiguous floats in REF_BLOCK partial sums: the
 * partials are independent lanes, which gcc -O2 vectorizes without
 * reassociating a single float sum. */
static float dot(size_t k, const float *restrict x, const float *restrict y) {
        float partial[REF_BLOCK] = { 0 }, sum = 0;
        size_t start = 0;

        for (; start + REF_BLOCK <= k; start += REF_BLOCK)
                for (size_t j = 0; j < REF_BLOCK; j++)
                        partial[j] += x[start + j] * y[start + j];
        for (size_t j = 0; j < REF_BLOCK; j++)
                sum += partial[j];
        for (size_t i = start; i < k; i++)
                sum += x[i] * y[i];
        return sum;
}

/* One row of A (a fully connected layer at batch 1): packing B would copy
 * as many floats as the product multiplies, so B is read in place. */
static int sgemv_row(size_t n, size_t k, float alpha, const float *a, size_t a_col, const float *b, size_t b_row,
                     size_t b_col, float *c, bool accumulate) {
        _cleanup_free_ float *a_copy = NULL;

        if (a_col != 1) {
                a_copy = malloc(k * sizeof(float));
                if (!a_copy)
                        return -ENOMEM;
                for (size_t p = 0; p < k; p++)
                        a_copy[p] = a[p * a_col];
                a = a_copy;
        }
        if (b_row == 1) {
                /* B transposed (Gemm transB = 1): columns are contiguous. */
                for (size_t j = 0; j < n; j++) {
                        float v = alpha * dot(k, a, b + j * b_col);

                        c[j] = accumulate ? c[j] + v : v;
                }
                return 0;
        }
        if (!accumulate)
                memset(c, 0, n * sizeof(float));
        for (size_t p = 0; p < k; p++)
                ref_axpy(n, alpha * a[p], b + p * b_row, c);
        return 0;
}

int ref_sgemm(size_t m, size_t n, size_t k, float alpha, const float *a, size_t a_row, size_t a_col,
              const float *b, size_t b_row, size_t b_col, float *c, size_t ldc, bool accumulate) {
        _cleanup_free_ float *packed_a = NULL, *packed_b = NULL;

        if (m == 0 || n == 0)
                return 0;
        if (k == 0) {
                if (!accumulate)
                        for (size_t i = 0; i < m; i++)
                                memset(c + i * ldc, 0, n * sizeof(float));
                return 0;
        }
        if (m == 1 && (b_row == 1 || b_col == 1))
                return sgemv_row(n, k, alpha, a, a_col, b, b_row, b_col, c, accumulate);
        /* Panels are zero-padded to whole MR/NR tiles. */
        packed_a = aligned_alloc(64, PACKED_A_FLOATS * sizeof(float));
        packed_b = aligned_alloc(64, PACKED_B_FLOATS * sizeof(float));
        if (!packed_a || !packed_b)
                return -ENOMEM;

        for (size_t jc = 0; jc < n; jc += GEMM_NC) {
                size_t nc = MIN((size_t) GEMM_NC, n - jc);

                for (size_t pc = 0; pc < k; pc += GEMM_KC) {
                        size_t kc = MIN((size_t) GEMM_KC, k - pc);
                        bool add = accumulate || pc > 0;

                        pack_b(kc, nc, b + pc * b_row + jc * b_col, b_row, b_col, packed_b);
                        for (size_t ic = 0; ic < m; ic += GEMM_MC) {
                                size_t mc = MIN((size_t) GEMM_MC, m - ic);

                                pack_a(mc, kc, a + ic * a_row + pc * a_col, a_row, a_col, packed_a);
                                for (size_t jr = 0; jr < nc; jr += GEMM_NR) {
                                        size_t cols = MIN((size_t) GEMM_NR, nc - jr);

                                        for (size_t ir = 0; ir < mc; ir += GEMM_MR) {
                                                size_t rows = MIN((size_t) GEMM_MR, mc - ir);
                                                float acc[GEMM_MR][GEMM_NR];

                                                micro_kernel(kc, packed_a + ir * kc, packed_b + jr * kc, acc);
                                                for (size_t r = 0; r < rows; r++) {
                                                        float *dst = c + (ic + ir + r) * ldc + jc + jr;

                                                        if (add)
                                                                for (size_t j = 0; j < cols; j++)
                                                                        dst[j] += alpha * acc[r][j];
                                                        else
                                                                for (size_t j = 0; j < cols; j++)
                                                                        dst[j] = alpha * acc[r][j];
                                                }
                                        }
                                }
                        }
                }
        }
        return 0;
}

/* Gemm: Y = alpha * A' * B' + beta * C, A' = transA ? A^T : A (M x K),
 * B' = transB ? B^T : B (K x N), C broadcast to M x N. */

typedef struct GemmParams {
        int64_t trans_a, trans_b;
        float alpha, beta;
        size_t m, n, k;
} GemmParams;

static int gemm_params(const CvoptNode *n, const CvoptTensor *a, const CvoptTensor *b, const CvoptTensor *c,
                       GemmParams *ret) {
        GemmParams p;
        int64_t k_b;
        int r;

        r = ref_attr_int(n, "transA", 0, &p.trans_a);
        if (r >= 0)
                r = ref_attr_int(n, "transB", 0, &p.trans_b);
        if (r >= 0)
                r = ref_attr_float(n, "alpha", 1.0f, &p.alpha);
        if (r >= 0)
                r = ref_attr_float(n, "beta", 1.0f, &p.beta);
        if (r < 0)
                return r;
        if (a->ndim != 2 || b->ndim != 2)
                return ref_fail(-CVOPT_E_SHAPE, n, "A and B must be 2-D (got %u-D and %u-D)", a->ndim, b->ndim);
        p.m = (size_t) a->dims[p.trans_a ? 1 : 0];
        p.k = (size_t) a->dims[p.trans_a ? 0 : 1];
        k_b = b->dims[p.trans_b ? 1 : 0];
        p.n = (size_t) b->dims[p.trans_b ? 0 : 1];
        if ((int64_t) p.k != k_b)
                return ref_fail(-CVOPT_E_SHAPE, n, "inner dimensions differ (%zu vs %lld)", p.k, (long long) k_b);
        if (c) {
                /* C broadcasts unidirectionally to M x N. */
                int64_t want[2] = { (int64_t) p.m, (int64_t) p.n };

                if (c->ndim > 2)
                        return ref_fail(-CVOPT_E_SHAPE, n, "C has %u dims", c->ndim);
                for (uint32_t i = 0; i < c->ndim; i++) {
                        int64_t d = c->dims[i], w = want[2 - c->ndim + i];

                        if (d != 1 && d != w)
                                return ref_fail(-CVOPT_E_SHAPE, n, "C '%s' does not broadcast to %zux%zu", c->name,
                                                p.m, p.n);
                }
        }
        *ret = p;
        return 0;
}

int ref_gemm_infer(CvoptGraph *g, CvoptNode *n) {
        CvoptTensor *a, *b, *c;
        RefActivation act;
        GemmParams p;
        int r;

        r = ref_check_arity(n, 2, 3, 1, 1);
        if (r < 0)
                return r;
        r = ref_input(g, n, 0, &a);
        if (r >= 0)
                r = ref_input(g, n, 1, &b);
        if (r >= 0)
                r = ref_input_optional(g, n, 2, &c);
        if (r < 0)
                return r;
        r = ref_check_dtype(n, a, CVOPT_DTYPE_FLOAT32, "input");
        if (r >= 0)
                r = ref_check_dtype(n, b, CVOPT_DTYPE_FLOAT32, "input");
        if (r >= 0 && c)
                r = ref_check_dtype(n, c, CVOPT_DTYPE_FLOAT32, "input");
        if (r < 0)
                return r;
        r = ref_fused_activation_parse(n, &act);
        if (r < 0)
                return r;
        r = gemm_params(n, a, b, c, &p);
        if (r < 0)
                return r;
        return ref_set_output(g, n, 0, CVOPT_DTYPE_FLOAT32, 2, (int64_t[]) { (int64_t) p.m, (int64_t) p.n });
}

int ref_gemm_run(const CvoptNode *n, const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        const CvoptTensor *a = inputs[0], *b = inputs[1], *c = n->n_inputs > 2 ? inputs[2] : NULL;
        CvoptTensor *y = outputs[0];
        RefActivation act;
        GemmParams p;
        float *out = y->data;
        int r;

        r = ref_fused_activation_parse(n, &act);
        if (r < 0)
                return r;
        r = gemm_params(n, a, b, c, &p);
        if (r < 0)
                return r;
        r = ref_check_output_shape(n, y, CVOPT_DTYPE_FLOAT32, 2, (int64_t[]) { (int64_t) p.m, (int64_t) p.n });
        if (r < 0)
                return r;
        if (c && p.beta != 0) {
                const float *cv = c->data;
                size_t c_row = c->ndim == 2 && c->dims[0] != 1 ? (size_t) c->dims[c->ndim - 1] : 0;
                size_t c_col = c->ndim >= 1 && c->dims[c->ndim - 1] != 1 ? 1 : 0;

                for (size_t i = 0; i < p.m; i++)
                        for (size_t j = 0; j < p.n; j++)
                                out[i * p.n + j] = p.beta * cv[i * c_row + j * c_col];
        }
        r = ref_sgemm(p.m, p.n, p.k, p.alpha, a->data, p.trans_a ? 1 : p.k, p.trans_a ? p.m : 1, b->data,
                      p.trans_b ? 1 : p.n, p.trans_b ? p.k : 1, out, p.n, c && p.beta != 0);
        if (r < 0)
                return r;
        ref_activation_apply(&act, out, p.m * p.n);
        return 0;
}

/* MatMul: numpy matmul semantics. 1-D A gets a leading 1 (removed from the
 * output), 1-D B a trailing 1 (removed); batch dims broadcast. */

typedef struct MatMulShape {
        size_t m, n, k;
        uint32_t batch_ndim;
        int64_t batch[CVOPT_MAX_DIMS];
        uint32_t out_ndim;
        int64_t out[CVOPT_MAX_DIMS];
} MatMulShape;

static int matmul_shape(const CvoptNode *n, const CvoptTensor *a, const CvoptTensor *b, MatMulShape *ret) {
        MatMulShape s = { 0 };
        uint32_t a_batch, b_batch;
        int64_t k_b;

        if (a->ndim == 0 || b->ndim == 0)
                return ref_fail(-CVOPT_E_SHAPE, n, "MatMul operands must have at least 1 dim");
        s.m = a->ndim == 1 ? 1 : (size_t) a->dims[a->ndim - 2];
        s.k = (size_t) a->dims[a->ndim - 1];
        k_b = b->ndim == 1 ? b->dims[0] : b->dims[b->ndim - 2];
        s.n = b->ndim == 1 ? 1 : (size_t) b->dims[b->ndim - 1];
        if ((int64_t) s.k != k_b)
                return ref_fail(-CVOPT_E_SHAPE, n, "inner dimensions differ (%zu vs %lld)", s.k, (long long) k_b);
        a_batch = a->ndim > 2 ? a->ndim - 2 : 0;
        b_batch = b->ndim > 2 ? b->ndim - 2 : 0;
        s.batch_ndim = MAX(a_batch, b_batch);
        for (uint32_t i = 0; i < s.batch_ndim; i++) {
                int64_t da = i + a_batch >= s.batch_ndim ? a->dims[i + a_batch - s.batch_ndim] : 1;
                int64_t db = i + b_batch >= s.batch_ndim ? b->dims[i + b_batch - s.batch_ndim] : 1;

                if (da != db && da != 1 && db != 1)
                        return ref_fail(-CVOPT_E_SHAPE, n, "batch dims do not broadcast (%lld vs %lld)",
                                        (long long) da, (long long) db);
                s.batch[i] = da == 1 ? db : da;
        }
        memcpy(s.out, s.batch, s.batch_ndim * sizeof(int64_t));
        s.out_ndim = s.batch_ndim;
        if (a->ndim > 1)
                s.out[s.out_ndim++] = (int64_t) s.m;
        if (b->ndim > 1)
                s.out[s.out_ndim++] = (int64_t) s.n;
        *ret = s;
        return 0;
}

int ref_matmul_infer(CvoptGraph *g, CvoptNode *n) {
        CvoptTensor *a, *b;
        RefActivation act;
        MatMulShape s;
        int r;

        r = ref_check_arity(n, 2, 2, 1, 1);
        if (r >= 0)
                r = ref_input(g, n, 0, &a);
        if (r >= 0)
                r = ref_input(g, n, 1, &b);
        if (r >= 0)
                r = ref_check_dtype(n, a, CVOPT_DTYPE_FLOAT32, "input");
        if (r >= 0)
                r = ref_check_dtype(n, b, CVOPT_DTYPE_FLOAT32, "input");
        if (r >= 0)
                r = ref_fused_activation_parse(n, &act);
        if (r >= 0)
                r = matmul_shape(n, a, b, &s);
        if (r < 0)
                return r;
        return ref_set_output(g, n, 0, CVOPT_DTYPE_FLOAT32, s.out_ndim, s.out);
}

/* Offset, in matrices, of batch index (given as a flat index over the
 * broadcast batch dims) into t, whose own batch dims may be fewer or 1. */
static size_t matmul_batch_offset(const CvoptTensor *t, const MatMulShape *s, size_t flat) {
        uint32_t t_batch = t->ndim > 2 ? t->ndim - 2 : 0;
        size_t offset = 0, stride = 1;

        for (uint32_t i = s->batch_ndim; i-- > 0;) {
                size_t index = flat % (size_t) s->batch[i];

                flat /= (size_t) s->batch[i];
                if (i + t_batch >= s->batch_ndim) {
                        size_t d = (size_t) t->dims[i + t_batch - s->batch_ndim];

                        if (d != 1)
                                offset += index * stride;
                        stride *= d;
                }
        }
        return offset;
}

int ref_matmul_run(const CvoptNode *n, const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        const CvoptTensor *a = inputs[0], *b = inputs[1];
        CvoptTensor *y = outputs[0];
        RefActivation act;
        size_t batches;
        MatMulShape s;
        int r;

        r = ref_fused_activation_parse(n, &act);
        if (r >= 0)
                r = matmul_shape(n, a, b, &s);
        if (r >= 0)
                r = ref_check_output_shape(n, y, CVOPT_DTYPE_FLOAT32, s.out_ndim, s.out);
        if (r < 0)
                return r;
        batches = ref_dims_product(s.batch, 0, s.batch_ndim);
        for (size_t i = 0; i < batches; i++) {
                const float *pa = (const float *) a->data + matmul_batch_offset(a, &s, i) * s.m * s.k;
                const float *pb = (const float *) b->data + matmul_batch_offset(b, &s, i) * s.k * s.n;
                float *py = (float *) y->data + i * s.m * s.n;

                r = ref_sgemm(s.m, s.n, s.k, 1.0f, pa, s.k, 1, pb, s.n, 1, py, s.n, false);
                if (r < 0)
                        return r;
        }
        ref_activation_apply(&act, y->data, batches * s.m * s.n);
        return 0;
}

/* SPDX-License-Identifier: MIT */
/* GPTQ must beat plain rounding on the layer's output error, which is what
 * it optimizes; and its factorization must really invert H. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "macro.h"
#include "quant/gptq.h"
#include "quant/quantize.h"

static uint64_t state_rng = 12345;
static double uniform(void) {
        state_rng = state_rng * 6364136223846793005ull + 1442695040888963407ull;
        return (double) (state_rng >> 11) / (double) (1ull << 53);
}
static double gaussian(void) {
        return sqrt(-2.0 * log(uniform() + 1e-300)) * cos(2 * M_PI * uniform());
}

static void test_inverse_cholesky(void **state) {
        const int64_t n = 37;
        double a[37 * 37], h[37 * 37], u[37 * 37];
        (void) state;

        for (int64_t i = 0; i < n * n; i++)
                a[i] = gaussian();
        for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < n; j++) {
                        double v = i == j ? 0.5 : 0;
                        for (int64_t k = 0; k < n; k++)
                                v += a[i * n + k] * a[j * n + k];
                        h[i * n + j] = v;
                }
        memcpy(u, h, sizeof(h));
        assert_int_equal(gptq_inverse_cholesky_upper(u, n), 0);
        for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < i; j++)
                        assert_true(u[i * n + j] == 0);
        /* (U^T U) H = I */
        for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < n; j++) {
                        double v = 0;
                        for (int64_t k = 0; k < n; k++) {
                                double hinv = 0;
                                for (int64_t m = 0; m < n; m++)
                                        hinv += u[m * n + i] * u[m * n + k];
                                v += hinv * h[k * n + j];
                        }
                        assert_true(fabs(v - (i == j)) < 1e-8);
                }
        /* Not positive definite: refused. */
        memset(u, 0, sizeof(u));
        assert_int_equal(gptq_inverse_cholesky_upper(u, n), -EDOM);
}

static double output_error(const float *w, const float *q, const float *x, int64_t channels, int64_t depth,
                           int64_t samples) {
        double e = 0;
        for (int64_t s = 0; s < samples; s++)
                for (int64_t c = 0; c < channels; c++) {
                        double d = 0;
                        for (int64_t k = 0; k < depth; k++)
                                d += ((double) w[c * depth + k] - q[c * depth + k]) * x[s * depth + k];
                        e += d * d;
                }
        return e;
}

static void check_gptq_beats_rounding(int64_t depth, int64_t block, unsigned bits) {
        const int64_t channels = 12, samples = 400;
        float *w = malloc((size_t) (channels * depth) * sizeof(float));
        float *gq = malloc((size_t) (channels * depth) * sizeof(float));
        float *rq = malloc((size_t) (channels * depth) * sizeof(float));
        float *x = malloc((size_t) (samples * depth) * sizeof(float));
        int8_t *q8 = malloc((size_t) (channels * depth));
        float scale[12];
        GptqHessian h = { .depth = depth, .block = block };

        /* Correlated inputs (a random walk across features, like image
         * patches), which is where error compensation pays. */
        for (int64_t s = 0; s < samples; s++) {
                double v = gaussian();
                for (int64_t k = 0; k < depth; k++) {
                        v = 0.9 * v + 0.45 * gaussian();
                        x[s * depth + k] = (float) v;
                }
        }
        for (int64_t i = 0; i < channels * depth; i++)
                w[i] = (float) gaussian();
        h.blocks = calloc((size_t) DIV_ROUND_UP(depth, block), sizeof(double *));
        for (int64_t b = 0; b * block < depth; b++) {
                int64_t m = MIN(block, depth - b * block);
                h.blocks[b] = calloc((size_t) (m * m), sizeof(double));
                for (int64_t s = 0; s < samples; s++)
                        for (int64_t i = 0; i < m; i++)
                                for (int64_t j = i; j < m; j++)
                                        h.blocks[b][i * m + j] += (double) x[s * depth + b * block + i] * x[s * depth + b * block + j];
        }
        h.samples = (uint64_t) samples;

        quantize_weights_per_channel(w, channels, depth, bits, q8, scale);
        for (int64_t i = 0; i < channels * depth; i++)
                rq[i] = (float) q8[i] * scale[i / depth];
        memcpy(gq, w, (size_t) (channels * depth) * sizeof(float));
        assert_int_equal(gptq_quantize(&h, gq, channels, bits), 0);
        /* GPTQ's result lies on the same grid. */
        for (int64_t i = 0; i < channels * depth; i++) {
                double steps = gq[i] / scale[i / depth];
                assert_true(fabs(steps - round(steps)) < 1e-3);
                assert_true(fabs(steps) <= (1 << (bits - 1)) - 1 + 1e-3);
        }
        double e_round = output_error(w, rq, x, channels, depth, samples);
        double e_gptq = output_error(w, gq, x, channels, depth, samples);
        print_message("depth %lld block %lld bits %u: output error rounding %.1f, GPTQ %.1f\n", (long long) depth,
                      (long long) block, bits, e_round, e_gptq);
        assert_true(e_gptq < 0.7 * e_round);

        gptq_hessian_done(&h);
        free(w);
        free(gq);
        free(rq);
        free(x);
        free(q8);
}

static void test_gptq_beats_rounding(void **state) {
        (void) state;
        check_gptq_beats_rounding(96, 96, 4);
        check_gptq_beats_rounding(96, 96, 8);
        check_gptq_beats_rounding(200, 64, 4); /* block-diagonal approximation */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_inverse_cholesky),
                cmocka_unit_test(test_gptq_beats_rounding),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

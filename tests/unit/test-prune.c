/* SPDX-License-Identifier: MIT */
/* Pruning: OBS (SparseGPT) must beat magnitude pruning on the layer output
 * error it minimizes, at 50% unstructured and at 2:4; N:M masks must have
 * the structure they promise; and a spec string parses as documented. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "macro.h"
#include "prune/prune.h"
#include "quant/gptq.h"

static uint64_t rng_state = 777;
static double uniform(void) {
        rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
        return (double) (rng_state >> 11) / (double) (1ull << 53);
}
static double gaussian(void) {
        return sqrt(-2.0 * log(uniform() + 1e-300)) * cos(2 * M_PI * uniform());
}

enum { CHANNELS = 16, DEPTH = 128, SAMPLES = 500 };

static double output_error(const float *w, const float *q, const float *x) {
        double e = 0;

        for (int s = 0; s < SAMPLES; s++)
                for (int c = 0; c < CHANNELS; c++) {
                        double d = 0;

                        for (int k = 0; k < DEPTH; k++)
                                d += ((double) w[c * DEPTH + k] - q[c * DEPTH + k]) * x[s * DEPTH + k];
                        e += d * d;
                }
        return e;
}

static void check_obs_beats_magnitude(int n_keep, int m_group, double sparsity) {
        static float w[CHANNELS * DEPTH], obs[CHANNELS * DEPTH], mag[CHANNELS * DEPTH], x[SAMPLES * DEPTH];
        static uint8_t mask[CHANNELS * DEPTH];
        GptqHessian h = { .depth = DEPTH, .block = DEPTH };

        for (int s = 0; s < SAMPLES; s++) {
                double v = gaussian();
                for (int k = 0; k < DEPTH; k++) {
                        v = 0.85 * v + 0.5 * gaussian();
                        x[s * DEPTH + k] = (float) v;
                }
        }
        for (int i = 0; i < CHANNELS * DEPTH; i++)
                w[i] = (float) gaussian();
        h.blocks = calloc(1, sizeof(double *));
        h.blocks[0] = calloc(DEPTH * DEPTH, sizeof(double));
        assert_non_null(h.blocks[0]);
        for (int s = 0; s < SAMPLES; s++)
                for (int i = 0; i < DEPTH; i++)
                        for (int j = i; j < DEPTH; j++)
                                h.blocks[0][i * DEPTH + j] += (double) x[s * DEPTH + i] * x[s * DEPTH + j];
        h.samples = SAMPLES;

        /* OBS: the mask chosen during the pass, the rest compensated. */
        memcpy(obs, w, sizeof(w));
        memset(mask, 0, sizeof(mask));
        ObsPrune prune = { .adaptive = true, .sparsity = sparsity, .n_keep = n_keep, .m_group = m_group };
        assert_int_equal(obs_solve(&h, obs, CHANNELS, 0, &prune, mask), 0);

        /* Magnitude at the same structure and count, no compensation. */
        memcpy(mag, w, sizeof(w));
        for (int c = 0; c < CHANNELS; c++) {
                if (n_keep) {
                        for (int g = 0; g < DEPTH; g += m_group)
                                for (int drop = 0; drop < m_group - n_keep; drop++) {
                                        int best = -1;
                                        for (int k = g; k < g + m_group; k++)
                                                if (mag[c * DEPTH + k] != 0 &&
                                                    (best < 0 || fabsf(mag[c * DEPTH + k]) < fabsf(mag[c * DEPTH + best])))
                                                        best = k;
                                        mag[c * DEPTH + best] = 0;
                                }
                } else
                        for (int drop = 0; drop < (int) (sparsity * DEPTH); drop++) {
                                int best = -1;
                                for (int k = 0; k < DEPTH; k++)
                                        if (mag[c * DEPTH + k] != 0 &&
                                            (best < 0 || fabsf(mag[c * DEPTH + k]) < fabsf(mag[c * DEPTH + best])))
                                                best = k;
                                mag[c * DEPTH + best] = 0;
                        }
        }

        int zeros_obs = 0, zeros_mag = 0;
        for (int i = 0; i < CHANNELS * DEPTH; i++) {
                zeros_obs += obs[i] == 0;
                zeros_mag += mag[i] == 0;
                /* Every masked weight is exactly 0. */
                if (mask[i])
                        assert_true(obs[i] == 0);
        }
        assert_true(abs(zeros_obs - zeros_mag) <= CHANNELS);
        if (n_keep)
                for (int c = 0; c < CHANNELS; c++)
                        for (int g = 0; g < DEPTH; g += m_group) {
                                int nonzero = 0;
                                for (int k = g; k < g + m_group; k++)
                                        nonzero += obs[c * DEPTH + k] != 0;
                                assert_true(nonzero <= n_keep);
                        }
        double e_obs = output_error(w, obs, x), e_mag = output_error(w, mag, x);
        print_message("%s: output error magnitude %.1f, OBS %.1f\n", n_keep ? "2:4" : "50%", e_mag, e_obs);
        assert_true(e_obs < 0.6 * e_mag);
        gptq_hessian_done(&h);
}

static void test_obs_beats_magnitude_unstructured(void **state) {
        (void) state;
        check_obs_beats_magnitude(0, 0, 0.5);
}

static void test_obs_beats_magnitude_2_4(void **state) {
        (void) state;
        check_obs_beats_magnitude(2, 4, 0.5);
}

static void test_spec_parse(void **state) {
        PruneSpec s;
        char name[64];
        (void) state;

        assert_int_equal(prune_spec_parse("obs:0.5", &s), 0);
        assert_int_equal(s.method, PRUNE_OBS);
        assert_float_equal(s.amount, 0.5, 1e-12);
        assert_int_equal(prune_spec_parse("magnitude:2:4", &s), 0);
        assert_int_equal(s.n_keep, 2);
        assert_int_equal(s.m_group, 4);
        assert_string_equal(prune_spec_name(&s, name, sizeof(name)), "magnitude 2:4");
        assert_int_equal(prune_spec_parse("magnitude:0.3:global", &s), 0);
        assert_true(s.global);
        assert_int_equal(prune_spec_parse("channel:0.25", &s), 0);
        assert_int_equal(s.method, PRUNE_CHANNEL);
        assert_int_equal(prune_spec_parse("channel:2:4", &s), -EINVAL);
        assert_int_equal(prune_spec_parse("obs:1.5", &s), -EINVAL);
        assert_int_equal(prune_spec_parse("obs:0.5:global", &s), -EINVAL);
        assert_int_equal(prune_spec_parse("random:0.5", &s), -EINVAL);
        assert_int_equal(prune_spec_parse("obs", &s), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_obs_beats_magnitude_unstructured),
                cmocka_unit_test(test_obs_beats_magnitude_2_4),
                cmocka_unit_test(test_spec_parse),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/* cvoptd's latency histograms: the percentiles status/stats/metrics report. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "telemetry.h"

static void test_empty(void **state) {
        Histogram h;
        (void) state;
        memset(&h, 0, sizeof h);
        assert_int_equal(histogram_quantile(&h, 0.5), 0);
        assert_int_equal(histogram_quantile(&h, 0.99), 0);
}

static void test_small_values_are_exact(void **state) {
        Histogram h;
        (void) state;
        memset(&h, 0, sizeof h);
        for (uint64_t v = 0; v < 8; v++)
                histogram_add(&h, v);
        assert_int_equal(histogram_quantile(&h, 0.0), 0);
        assert_int_equal(histogram_quantile(&h, 0.5), 3);
        assert_int_equal(histogram_quantile(&h, 1.0), 7);
}

/* Uniform 1..10000 us: every percentile within one bucket (12.5%) above
 * the true value, never below it, never above the maximum. */
static void test_uniform_percentiles_within_bucket_error(void **state) {
        Histogram h;
        (void) state;
        memset(&h, 0, sizeof h);
        for (uint64_t v = 1; v <= 10000; v++)
                histogram_add(&h, v);
        static const double qs[] = { 0.5, 0.9, 0.99, 0.999 };
        for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
                double truth = qs[i] * 10000;
                uint64_t got = histogram_quantile(&h, qs[i]);
                assert_true((double) got >= truth);
                assert_true((double) got <= truth * 1.125 + 1);
        }
        assert_int_equal(histogram_quantile(&h, 1.0), 10000);
        assert_int_equal(h.count, 10000);
        assert_int_equal(h.sum, 10000ull * 10001 / 2);
}

/* One slow frame in a hundred shows in p99, not in p50. */
static void test_outlier_shows_in_p99_only(void **state) {
        Histogram h;
        (void) state;
        memset(&h, 0, sizeof h);
        for (int i = 0; i < 98; i++)
                histogram_add(&h, 500);
        histogram_add(&h, 40000);
        histogram_add(&h, 40000);
        assert_true(histogram_quantile(&h, 0.5) >= 500 && histogram_quantile(&h, 0.5) < 563);
        assert_true(histogram_quantile(&h, 0.99) >= 40000 && histogram_quantile(&h, 0.99) <= 40000);
}

static void test_huge_values_do_not_overflow(void **state) {
        Histogram h;
        (void) state;
        memset(&h, 0, sizeof h);
        histogram_add(&h, UINT64_MAX / 4);
        histogram_add(&h, 1);
        assert_int_equal(histogram_quantile(&h, 1.0), UINT64_MAX / 4);
        assert_int_equal(histogram_quantile(&h, 0.5), 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_empty),
                cmocka_unit_test(test_small_values_are_exact),
                cmocka_unit_test(test_uniform_percentiles_within_bucket_error),
                cmocka_unit_test(test_outlier_shows_in_p99_only),
                cmocka_unit_test(test_huge_values_do_not_overflow),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

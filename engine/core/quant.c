/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>

#include "cvopt/quant.h"

int cvopt_quantize_multiplier(double real, int32_t *ret_multiplier, int32_t *ret_shift) {
        int exponent;
        double fraction;
        int64_t m;
        int shift;

        if (!(real >= 0) || !isfinite(real))
                return -EINVAL;
        if (real == 0) {
                *ret_multiplier = 0;
                *ret_shift = CVOPT_SHIFT_MIN;
                return 0;
        }
        fraction = frexp(real, &exponent); /* real = fraction * 2^exponent, fraction in [0.5, 1) */
        m = llround(fraction * (double) (1ll << 31));
        if (m == (1ll << 31)) {
                m /= 2;
                exponent++;
        }
        shift = 31 - exponent;
        if (shift < CVOPT_SHIFT_MIN)
                return -ERANGE;
        if (shift > CVOPT_SHIFT_MAX) {
                *ret_multiplier = 0;
                *ret_shift = CVOPT_SHIFT_MIN;
                return 0;
        }
        *ret_multiplier = (int32_t) m;
        *ret_shift = shift;
        return 0;
}

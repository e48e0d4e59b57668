/* SPDX-License-Identifier: MIT */
/* Element-wise int8 operators and the float-island borders, as
 * engine/cpu/q-eltwise.c. One work-item per element; count is the number
 * of elements (the grid is rounded up to the work-group size). */

/* Quantize: q = clamp(rint(x * inv_scale) + zp, 0, 255); rint rounds half
 * to even, and NaN fails both comparisons and becomes 0, as on the CPU. */
__kernel void q_quantize(__global const float *x, __global uchar *y, float inv_scale, float zero_point, int count) {
        const int i = get_global_id(0);

        if (i >= count)
                return;
        const float v = rint(x[i] * inv_scale) + zero_point;
        y[i] = v >= 255.0f ? (uchar) 255 : v >= 0.0f ? (uchar) v : (uchar) 0;
}

__kernel void q_dequantize(__global const uchar *x, __global float *y, float scale, int zero_point, int count) {
        const int i = get_global_id(0);

        if (i < count)
                y[i] = (float) ((int) x[i] - zero_point) * scale;
}

/* QAdd: one rounding for the sum of both rescaled inputs. */
__kernel void q_add(__global const uchar *a, __global const uchar *b, __global uchar *y, int za, int zb, int zy,
                    int multiplier_a, int multiplier_b, int shift, int lo, int hi, int count) {
        const int i = get_global_id(0);

        if (i >= count)
                return;
        const long sum = ((long) a[i] - za) * multiplier_a + ((long) b[i] - zb) * multiplier_b;
        const long v = zy + ((sum + ((long) 1 << (shift - 1))) >> shift);
        y[i] = (uchar) clamp(v, (long) lo, (long) hi);
}

/* QConcat: copies one input [outer, inner] into the output [outer,
 * inner_out] at column offset, requantized to the output's scale. */
__kernel void q_concat(__global const uchar *x, __global uchar *y, int inner, int inner_out, int offset, int zx,
                       int zy, int multiplier, int shift, int lo, int hi, int count) {
        const int i = get_global_id(0);

        if (i >= count)
                return;
        const int o = i / inner, k = i % inner;
        y[(size_t) o * inner_out + offset + k] = (uchar) cl_requantize((int) x[i] - zx, multiplier, shift, zy, lo, hi);
}

__kernel void q_lut(__global const uchar *x, __global uchar *y, __global const uchar *lut, int count) {
        const int i = get_global_id(0);

        if (i < count)
                y[i] = lut[x[i]];
}

/* SPDX-License-Identifier: MIT */
/* Helpers of every kernel family: the int8 requantization of the numerics
 * contract (include/cvopt/quant.h), computed exactly as the CPU does it, in
 * 64-bit integers. No floating-point contraction anywhere: the float output
 * of a conv is one multiply, and must round like the CPU's. */
#pragma OPENCL FP_CONTRACT OFF

/* y = clamp(zp + ((acc * m + 2^(s-1)) >> s), lo, hi); >> on a signed long
 * is arithmetic (floors), as in C on every platform we build for. */
inline int cl_requantize(int acc, int multiplier, int shift, int zero_point, int lo, int hi) {
        long v = ((long) acc * (long) multiplier + ((long) 1 << (shift - 1))) >> shift;
        long y = (long) zero_point + v;
        return (int) clamp(y, (long) lo, (long) hi);
}

/* The store of an int8 conv/gemm output element: uint8 (optionally through
 * the fused activation table) or float for a last layer. */
inline void cl_store_q(__global uchar *yq, __global float *yf, size_t index, int acc, int c, __global const int *p,
                       __global const int *multiplier, __global const int *shift, __global const float *out_scale,
                       __global const uchar *lut) {
        int mode = p[P_MODE];

        if (mode == OUT_MODE_F32) {
                yf[index] = (float) acc * out_scale[c];
        } else if (mode == OUT_MODE_U8_LUT) {
                yq[index] = lut[cl_requantize(acc, multiplier[c], shift[c], p[P_Y_ZERO_POINT], 0, 255)];
        } else {
                yq[index] = (uchar) cl_requantize(acc, multiplier[c], shift[c], p[P_Y_ZERO_POINT], p[P_OUT_MIN],
                                                  p[P_OUT_MAX]);
        }
}

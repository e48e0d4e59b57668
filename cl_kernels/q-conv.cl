/* SPDX-License-Identifier: MIT */
/* int8 convolution and gemm: u8 activations x s8 weights accumulated in
 * int32 from the bias, then requantized (or scaled to float) by
 * cl_store_q. Integer sums are exact in any order, so these kernels tile
 * and reorder freely and still match engine/cpu/q-conv.c bit for bit. */

/* Convolution with on-the-fly im2col: a work-group computes TILE_OC
 * output channels (of one group) x TILE_P output pixels, staging a
 * TILE_K-deep slice of the unrolled input and of the weights in local
 * memory per step. Out-of-range rows and columns (tile remainders) are
 * staged as weight 0 and never stored. Grid: (pixels rounded up to TILE_P,
 * channels per group rounded up to TILE_OC, batch x groups). */
__kernel __attribute__((reqd_work_group_size(TILE_P, TILE_OC, 1)))
void q_conv_tiled(__global const uchar *x, __global const char *w, __global const int *bias, __global const int *p,
                  __global const int *multiplier, __global const int *shift, __global const float *out_scale,
                  __global const uchar *lut, __global uchar *yq, __global float *yf) {
        __local uchar xs[TILE_K][TILE_P];
        __local char ws[TILE_OC][TILE_K];
        const int lp = get_local_id(0), lc = get_local_id(1), lid = lc * TILE_P + lp;
        const int in_c = p[P_IN_C], in_h = p[P_IN_H], in_w = p[P_IN_W], out_w = p[P_OUT_W];
        const int kernel_w = p[P_KERNEL_W], window = p[P_KERNEL_H] * kernel_w;
        const int group_in = p[P_GROUP_IN], group_out = p[P_GROUP_OUT], depth = p[P_DEPTH];
        const int pixels = p[P_OUT_H] * out_w, groups = in_c / group_in;
        const int batch_group = get_global_id(2), nb = batch_group / groups, g = batch_group % groups;
        const int pixel0 = get_group_id(0) * TILE_P, oc0 = get_group_id(1) * TILE_OC;
        const uchar pad = (uchar) p[P_X_ZERO_POINT];
        __global const uchar *xb = x + ((size_t) nb * in_c + (size_t) g * group_in) * in_h * in_w;
        __global const char *wb = w + (size_t) g * group_out * depth;
        int acc = 0;

        for (int k0 = 0; k0 < depth; k0 += TILE_K) {
                for (int e = lid; e < TILE_K * TILE_P; e += TILE_P * TILE_OC) {
                        const int kk = e / TILE_P, pp = e % TILE_P, k = k0 + kk, px = pixel0 + pp;
                        uchar v = pad;

                        if (k < depth && px < pixels) {
                                const int c = k / window, r = k % window, ky = r / kernel_w, kx = r % kernel_w;
                                const int iy = (px / out_w) * p[P_STRIDE_H] - p[P_PAD_TOP] + ky * p[P_DILATION_H];
                                const int ix = (px % out_w) * p[P_STRIDE_W] - p[P_PAD_LEFT] + kx * p[P_DILATION_W];

                                if (iy >= 0 && iy < in_h && ix >= 0 && ix < in_w)
                                        v = xb[((size_t) c * in_h + iy) * in_w + ix];
                        }
                        xs[kk][pp] = v;
                }
                for (int e = lid; e < TILE_OC * TILE_K; e += TILE_P * TILE_OC) {
                        const int cc = e / TILE_K, kk = e % TILE_K, o = oc0 + cc, k = k0 + kk;

                        ws[cc][kk] = o < group_out && k < depth ? wb[(size_t) o * depth + k] : (char) 0;
                }
                barrier(CLK_LOCAL_MEM_FENCE);
                for (int kk = 0; kk < TILE_K; kk++)
                        acc += (int) xs[kk][lp] * (int) ws[lc][kk];
                barrier(CLK_LOCAL_MEM_FENCE);
        }

        const int pixel = pixel0 + lp, o = oc0 + lc;
        if (pixel < pixels && o < group_out) {
                const int oc = g * group_out + o;

                cl_store_q(yq, yf, ((size_t) nb * p[P_OUT_C] + oc) * pixels + pixel, acc + bias[oc], oc, p,
                           multiplier, shift, out_scale, lut);
        }
}

/* One work-item per output element: for depthwise and other grouped
 * convolutions with fewer output channels per group than a tile, where the
 * tiled kernel would leave most of its work-items idle. Grid: (pixels
 * rounded up to the work-group size, output channels, batch). */
__kernel void q_conv_direct(__global const uchar *x, __global const char *w, __global const int *bias,
                            __global const int *p, __global const int *multiplier, __global const int *shift,
                            __global const float *out_scale, __global const uchar *lut, __global uchar *yq,
                            __global float *yf) {
        const int pixel = get_global_id(0), oc = get_global_id(1), nb = get_global_id(2);
        const int in_c = p[P_IN_C], in_h = p[P_IN_H], in_w = p[P_IN_W], out_w = p[P_OUT_W];
        const int kernel_h = p[P_KERNEL_H], kernel_w = p[P_KERNEL_W];
        const int group_in = p[P_GROUP_IN], pixels = p[P_OUT_H] * out_w;

        if (pixel >= pixels)
                return;

        const int g = oc / p[P_GROUP_OUT], oy = pixel / out_w, ox = pixel % out_w;
        const int pad = p[P_X_ZERO_POINT];
        __global const char *wr = w + (size_t) oc * p[P_DEPTH];
        int acc = bias[oc];

        for (int c = 0; c < group_in; c++) {
                __global const uchar *plane = x + ((size_t) nb * in_c + (size_t) g * group_in + c) * in_h * in_w;

                for (int ky = 0; ky < kernel_h; ky++) {
                        const int iy = oy * p[P_STRIDE_H] - p[P_PAD_TOP] + ky * p[P_DILATION_H];

                        for (int kx = 0; kx < kernel_w; kx++) {
                                const int ix = ox * p[P_STRIDE_W] - p[P_PAD_LEFT] + kx * p[P_DILATION_W];
                                const int v = iy >= 0 && iy < in_h && ix >= 0 && ix < in_w ?
                                                      (int) plane[(size_t) iy * in_w + ix] : pad;

                                acc += v * (int) wr[(c * kernel_h + ky) * kernel_w + kx];
                        }
                }
        }
        cl_store_q(yq, yf, ((size_t) nb * p[P_OUT_C] + oc) * pixels + pixel, acc, oc, p, multiplier, shift, out_scale,
                   lut);
}

/* QGemm: X [M, K] x W [N, K]^T. A work-group computes GEMM_N outputs of
 * one row, staging GEMM_K input values at a time in local memory (the
 * classifier layers are M = 1 gemv: the input row is shared by every
 * work-item, the weights stream). Grid: (N rounded up to GEMM_N, M). */
__kernel __attribute__((reqd_work_group_size(GEMM_N, 1, 1)))
void q_gemm(__global const uchar *x, __global const char *w, __global const int *bias, __global const int *p,
            __global const int *multiplier, __global const int *shift, __global const float *out_scale,
            __global const uchar *lut, __global uchar *yq, __global float *yf) {
        __local uchar xs[GEMM_K];
        const int j = get_global_id(0), i = get_global_id(1), lid = get_local_id(0);
        const int n = p[P_OUT_C], depth = p[P_DEPTH];
        __global const uchar *xr = x + (size_t) i * depth;
        int acc = 0;

        for (int k0 = 0; k0 < depth; k0 += GEMM_K) {
                const int limit = min(GEMM_K, depth - k0);

                for (int e = lid; e < GEMM_K; e += GEMM_N)
                        xs[e] = e < limit ? xr[k0 + e] : (uchar) 0;
                barrier(CLK_LOCAL_MEM_FENCE);
                if (j < n) {
                        __global const char *wr = w + (size_t) j * depth + k0;

                        for (int kk = 0; kk < limit; kk++)
                                acc += (int) xs[kk] * (int) wr[kk];
                }
                barrier(CLK_LOCAL_MEM_FENCE);
        }
        if (j < n)
                cl_store_q(yq, yf, (size_t) i * n + j, acc + bias[j], j, p, multiplier, shift, out_scale, lut);
}

/* SPDX-License-Identifier: MIT */
/* int8 convolution and gemm: u8 activations x s8 weights accumulated in
 * int32 from the bias, then requantized (or scaled to float) by
 * cl_store_q. Integer sums are exact in any order, so these kernels tile
 * and reorder freely and still match engine/cpu/q-conv.c bit for bit. */

/* Convolution with on-the-fly im2col: a work-group computes Q_TILE_OC
 * output channels (of one group) x Q_TILE_P output pixels, staging a
 * TILE_K-deep slice of the unrolled input and of the weights in local
 * memory per step; each work-item keeps Q_OC_PER_ITEM x Q_PIX_PER_ITEM
 * accumulators (channels lc + 8i, pixels lp + 16j). Out-of-range rows and
 * columns (tile remainders) are staged as weight 0 and never stored.
 * Grid: (pixels rounded up to Q_TILE_P, / Q_PIX_PER_ITEM; channels per
 * group rounded up to Q_TILE_OC, / Q_OC_PER_ITEM; batch x groups). */
__kernel __attribute__((reqd_work_group_size(Q_ITEMS_P, Q_ITEMS_OC, 1)))
void q_conv_tiled(__global const uchar *x, __global const char *w, __global const int *bias, __global const int *p,
                  __global const int *multiplier, __global const int *shift, __global const float *out_scale,
                  __global const uchar *lut, __global uchar *yq, __global float *yf) {
        __local uchar xs[TILE_K][Q_TILE_P];
        __local char ws[Q_TILE_OC][TILE_K];
        /* The im2col index split in two tables, so that staging does no
         * division: each tile pixel's top-left input position, and each
         * depth step's channel plane offset and kernel offset. */
        __local int pixel_y[Q_TILE_P], pixel_x[Q_TILE_P];
        __local int k_plane[TILE_K], k_y[TILE_K], k_x[TILE_K];
        const int lp = get_local_id(0), lc = get_local_id(1), lid = lc * Q_ITEMS_P + lp;
        const int in_c = p[P_IN_C], in_h = p[P_IN_H], in_w = p[P_IN_W], out_w = p[P_OUT_W];
        const int kernel_w = p[P_KERNEL_W], window = p[P_KERNEL_H] * kernel_w;
        const int group_in = p[P_GROUP_IN], group_out = p[P_GROUP_OUT], depth = p[P_DEPTH];
        const int pixels = p[P_OUT_H] * out_w, groups = in_c / group_in;
        const int batch_group = get_global_id(2), nb = batch_group / groups, g = batch_group % groups;
        const int pixel0 = get_group_id(0) * Q_TILE_P, oc0 = get_group_id(1) * Q_TILE_OC;
        const uchar pad = (uchar) p[P_X_ZERO_POINT];
        __global const uchar *xb = x + ((size_t) nb * in_c + (size_t) g * group_in) * in_h * in_w;
        __global const char *wb = w + (size_t) g * group_out * depth;
        int acc[Q_OC_PER_ITEM][Q_PIX_PER_ITEM];

        for (int i = 0; i < Q_OC_PER_ITEM; i++)
                for (int j = 0; j < Q_PIX_PER_ITEM; j++)
                        acc[i][j] = 0;
        for (int e = lid; e < Q_TILE_P; e += Q_ITEMS_P * Q_ITEMS_OC) {
                const int px = pixel0 + e;

                /* A pixel past the end reads padding (it is never stored). */
                pixel_y[e] = px < pixels ? (px / out_w) * p[P_STRIDE_H] - p[P_PAD_TOP] : -in_h - (1 << 20);
                pixel_x[e] = px < pixels ? (px % out_w) * p[P_STRIDE_W] - p[P_PAD_LEFT] : 0;
        }
        for (int k0 = 0; k0 < depth; k0 += TILE_K) {
                for (int e = lid; e < TILE_K; e += Q_ITEMS_P * Q_ITEMS_OC) {
                        const int k = k0 + e, c = k / window, r = k % window;

                        /* Depth past the end: weight 0, so any byte will do. */
                        k_plane[e] = k < depth ? c * in_h * in_w : -1;
                        k_y[e] = (r / kernel_w) * p[P_DILATION_H];
                        k_x[e] = (r % kernel_w) * p[P_DILATION_W];
                }
                barrier(CLK_LOCAL_MEM_FENCE);
                for (int e = lid; e < TILE_K * Q_TILE_P; e += Q_ITEMS_P * Q_ITEMS_OC) {
                        const int kk = e / Q_TILE_P, pp = e % Q_TILE_P;
                        const int iy = pixel_y[pp] + k_y[kk], ix = pixel_x[pp] + k_x[kk];

                        xs[kk][pp] = k_plane[kk] >= 0 && iy >= 0 && iy < in_h && ix >= 0 && ix < in_w ?
                                             xb[(size_t) k_plane[kk] + (size_t) iy * in_w + ix] :
                                             pad;
                }
                for (int e = lid; e < Q_TILE_OC * TILE_K; e += Q_ITEMS_P * Q_ITEMS_OC) {
                        const int cc = e / TILE_K, kk = e % TILE_K, o = oc0 + cc, k = k0 + kk;

                        ws[cc][kk] = o < group_out && k < depth ? wb[(size_t) o * depth + k] : (char) 0;
                }
                barrier(CLK_LOCAL_MEM_FENCE);
                for (int kk = 0; kk < TILE_K; kk++) {
                        int wv[Q_OC_PER_ITEM];

                        for (int i = 0; i < Q_OC_PER_ITEM; i++)
                                wv[i] = ws[lc + i * Q_ITEMS_OC][kk];
                        for (int j = 0; j < Q_PIX_PER_ITEM; j++) {
                                const int xv = xs[kk][lp + j * Q_ITEMS_P];

                                for (int i = 0; i < Q_OC_PER_ITEM; i++)
                                        acc[i][j] += xv * wv[i];
                        }
                }
                barrier(CLK_LOCAL_MEM_FENCE);
        }

        for (int i = 0; i < Q_OC_PER_ITEM; i++) {
                const int o = oc0 + lc + i * Q_ITEMS_OC;

                if (o >= group_out)
                        continue;
                const int oc = g * group_out + o;
                for (int j = 0; j < Q_PIX_PER_ITEM; j++) {
                        const int pixel = pixel0 + lp + j * Q_ITEMS_P;

                        if (pixel < pixels)
                                cl_store_q(yq, yf, ((size_t) nb * p[P_OUT_C] + oc) * pixels + pixel, acc[i][j] + bias[oc],
                                           oc, p, multiplier, shift, out_scale, lut);
                }
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

/* SPDX-License-Identifier: MIT */
/* Float convolution and gemm, for float models and float islands. Sums
 * run in another order than the CPU reference's, so results agree within
 * a tolerance (docs/opencl.md), not bit for bit. */

/* act_params: (min, max, alpha, beta) of the activation, as the CPU's
 * ref_activation_apply reads them. */
inline float cl_activate(float v, int act, float4 a) {
        switch (act) {
        case ACT_RELU:
                return v < 0.0f ? 0.0f : v;
        case ACT_CLIP:
                v = v < a.x ? a.x : v;
                return v > a.y ? a.y : v;
        case ACT_LEAKY_RELU:
                return v < 0.0f ? v * a.z : v;
        case ACT_HARD_SWISH: {
                float h = v * (1.0f / 6.0f) + 0.5f;
                h = h < 0.0f ? 0.0f : h > 1.0f ? 1.0f : h;
                return v * h;
        }
        case ACT_SIGMOID:
                if (v >= 0.0f)
                        return 1.0f / (1.0f + exp(-v));
                return exp(v) / (1.0f + exp(v));
        case ACT_HARD_SIGMOID: {
                float h = a.z * v + a.w;
                return h < 0.0f ? 0.0f : h > 1.0f ? 1.0f : h;
        }
        case ACT_TANH:
                return tanh(v);
        default:
                return v;
        }
}

/* As q_conv_tiled, in float: TILE_OC channels x TILE_P pixels per
 * work-group, TILE_K-deep slices of input and weights in local memory.
 * Padding reads 0. */
__kernel __attribute__((reqd_work_group_size(TILE_P, TILE_OC, 1)))
void f_conv_tiled(__global const float *x, __global const float *w, __global const float *bias, __global const int *p,
                  int act, float4 act_params, __global float *y) {
        __local float xs[TILE_K][TILE_P];
        __local float ws[TILE_OC][TILE_K];
        const int lp = get_local_id(0), lc = get_local_id(1), lid = lc * TILE_P + lp;
        const int in_c = p[P_IN_C], in_h = p[P_IN_H], in_w = p[P_IN_W], out_w = p[P_OUT_W];
        const int kernel_w = p[P_KERNEL_W], window = p[P_KERNEL_H] * kernel_w;
        const int group_in = p[P_GROUP_IN], group_out = p[P_GROUP_OUT], depth = p[P_DEPTH];
        const int pixels = p[P_OUT_H] * out_w, groups = in_c / group_in;
        const int batch_group = get_global_id(2), nb = batch_group / groups, g = batch_group % groups;
        const int pixel0 = get_group_id(0) * TILE_P, oc0 = get_group_id(1) * TILE_OC;
        __global const float *xb = x + ((size_t) nb * in_c + (size_t) g * group_in) * in_h * in_w;
        __global const float *wb = w + (size_t) g * group_out * depth;
        float acc = 0.0f;

        for (int k0 = 0; k0 < depth; k0 += TILE_K) {
                for (int e = lid; e < TILE_K * TILE_P; e += TILE_P * TILE_OC) {
                        const int kk = e / TILE_P, pp = e % TILE_P, k = k0 + kk, px = pixel0 + pp;
                        float v = 0.0f;

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

                        ws[cc][kk] = o < group_out && k < depth ? wb[(size_t) o * depth + k] : 0.0f;
                }
                barrier(CLK_LOCAL_MEM_FENCE);
                for (int kk = 0; kk < TILE_K; kk++)
                        acc += xs[kk][lp] * ws[lc][kk];
                barrier(CLK_LOCAL_MEM_FENCE);
        }

        const int pixel = pixel0 + lp, o = oc0 + lc;
        if (pixel < pixels && o < group_out) {
                const int oc = g * group_out + o;

                y[((size_t) nb * p[P_OUT_C] + oc) * pixels + pixel] = cl_activate(acc + bias[oc], act, act_params);
        }
}

/* One work-item per output: depthwise and narrow groups. */
__kernel void f_conv_direct(__global const float *x, __global const float *w, __global const float *bias,
                            __global const int *p, int act, float4 act_params, __global float *y) {
        const int pixel = get_global_id(0), oc = get_global_id(1), nb = get_global_id(2);
        const int in_c = p[P_IN_C], in_h = p[P_IN_H], in_w = p[P_IN_W], out_w = p[P_OUT_W];
        const int kernel_h = p[P_KERNEL_H], kernel_w = p[P_KERNEL_W];
        const int group_in = p[P_GROUP_IN], pixels = p[P_OUT_H] * out_w;

        if (pixel >= pixels)
                return;

        const int g = oc / p[P_GROUP_OUT], oy = pixel / out_w, ox = pixel % out_w;
        __global const float *wr = w + (size_t) oc * p[P_DEPTH];
        float acc = 0.0f;

        for (int c = 0; c < group_in; c++) {
                __global const float *plane = x + ((size_t) nb * in_c + (size_t) g * group_in + c) * in_h * in_w;

                for (int ky = 0; ky < kernel_h; ky++) {
                        const int iy = oy * p[P_STRIDE_H] - p[P_PAD_TOP] + ky * p[P_DILATION_H];

                        if (iy < 0 || iy >= in_h)
                                continue;
                        for (int kx = 0; kx < kernel_w; kx++) {
                                const int ix = ox * p[P_STRIDE_W] - p[P_PAD_LEFT] + kx * p[P_DILATION_W];

                                if (ix >= 0 && ix < in_w)
                                        acc += plane[(size_t) iy * in_w + ix] * wr[(c * kernel_h + ky) * kernel_w + kx];
                        }
                }
        }
        y[((size_t) nb * p[P_OUT_C] + oc) * pixels + pixel] = cl_activate(acc + bias[oc], act, act_params);
}

/* Y[i, j] = act(alpha * sum_k A[i*a_row + k*a_col] * B[k*b_row + j*b_col]
 *               + beta * C[i*c_row + j*c_col]): Gemm with any transposes
 * and C broadcast, and 2-D MatMul (alpha 1, no C). One work-item per
 * output; the classifier heads this serves are small. Grid: (N rounded
 * up, M). */
__kernel void f_gemm(__global const float *a, __global const float *b, __global const float *c, int m, int n, int k,
                     int a_row, int a_col, int b_row, int b_col, int c_row, int c_col, int has_c, float alpha,
                     float beta, int act, float4 act_params, __global float *y) {
        const int j = get_global_id(0), i = get_global_id(1);

        if (j >= n || i >= m)
                return;
        float acc = 0.0f;
        for (int kk = 0; kk < k; kk++)
                acc += a[(size_t) i * a_row + (size_t) kk * a_col] * b[(size_t) kk * b_row + (size_t) j * b_col];
        float v = alpha * acc;
        if (has_c)
                v += beta * c[(size_t) i * c_row + (size_t) j * c_col];
        y[(size_t) i * n + j] = cl_activate(v, act, act_params);
}

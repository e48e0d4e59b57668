/* SPDX-License-Identifier: MIT */
/* int8 pools, as engine/cpu/q-pool.c: max pools compare bytes (input and
 * output share scale and zero point), average pools sum (x - zero_point)
 * and requantize with the multiplier chosen by how many elements the
 * window covered, so border windows divide exactly without a division. */

/* QMaxPool (P_MODE 1) and QAveragePool (P_MODE 0): one work-item per
 * output element, over (planes x out_h x out_w). */
__kernel void q_pool(__global const uchar *x, __global const int *p, __global const int *multiplier,
                     __global const int *shift, __global uchar *y, int total) {
        const int index = get_global_id(0);

        if (index >= total)
                return;

        const int in_h = p[P_IN_H], in_w = p[P_IN_W], out_h = p[P_OUT_H], out_w = p[P_OUT_W];
        const int ox = index % out_w, oy = (index / out_w) % out_h, plane = index / (out_w * out_h);
        const int zx = p[P_X_ZERO_POINT], count_pad = p[P_COUNT_PAD];
        __global const uchar *xp = x + (size_t) plane * in_h * in_w;
        int best = -1, sum = 0, count = 0;

        for (int kh = 0; kh < p[P_KERNEL_H]; kh++) {
                const int iy = oy * p[P_STRIDE_H] - p[P_PAD_TOP] + kh * p[P_DILATION_H];

                for (int kw = 0; kw < p[P_KERNEL_W]; kw++) {
                        const int ix = ox * p[P_STRIDE_W] - p[P_PAD_LEFT] + kw * p[P_DILATION_W];

                        if (iy < 0 || iy >= in_h || ix < 0 || ix >= in_w) {
                                /* Padding counts only inside the padded extent. */
                                if (count_pad && iy < in_h + p[P_PAD_BOTTOM] && ix < in_w + p[P_PAD_RIGHT])
                                        count++;
                                continue;
                        }
                        const int v = xp[(size_t) iy * in_w + ix];
                        best = max(best, v);
                        sum += v - zx;
                        count++;
                }
        }
        if (p[P_MODE] == 1)
                y[index] = (uchar) (best < 0 ? zx : best);
        else
                y[index] = (uchar) cl_requantize(sum, multiplier[count], shift[count], p[P_Y_ZERO_POINT], p[P_OUT_MIN],
                                                 p[P_OUT_MAX]);
}

/* QGlobalMaxPool (P_MODE 1) and QGlobalAveragePool (P_MODE 0): a
 * work-group of GLOBAL_POOL_GROUP items reduces one plane (an integer sum
 * and max: exact in any order). Grid: (planes x GLOBAL_POOL_GROUP). */
#define GLOBAL_POOL_GROUP 64
__kernel __attribute__((reqd_work_group_size(GLOBAL_POOL_GROUP, 1, 1)))
void q_global_pool(__global const uchar *x, __global const int *p, __global const int *multiplier,
                   __global const int *shift, __global uchar *y) {
        __local int sums[GLOBAL_POOL_GROUP], bests[GLOBAL_POOL_GROUP];
        const int plane = get_group_id(0), lid = get_local_id(0);
        const int size = p[P_IN_H] * p[P_IN_W], zx = p[P_X_ZERO_POINT];
        __global const uchar *xp = x + (size_t) plane * size;
        int best = 0, sum = 0;

        for (int i = lid; i < size; i += GLOBAL_POOL_GROUP) {
                best = max(best, (int) xp[i]);
                sum += (int) xp[i] - zx;
        }
        sums[lid] = sum;
        bests[lid] = best;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int step = GLOBAL_POOL_GROUP / 2; step > 0; step /= 2) {
                if (lid < step) {
                        sums[lid] += sums[lid + step];
                        bests[lid] = max(bests[lid], bests[lid + step]);
                }
                barrier(CLK_LOCAL_MEM_FENCE);
        }
        if (lid == 0)
                y[plane] = p[P_MODE] == 1 ? (uchar) bests[0] :
                                            (uchar) cl_requantize(sums[0], multiplier[0], shift[0], p[P_Y_ZERO_POINT],
                                                                  p[P_OUT_MIN], p[P_OUT_MAX]);
}

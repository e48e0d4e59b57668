/* SPDX-License-Identifier: MIT */
/* Float element-wise ops, pools and softmax, as engine/cpu/ref-*.c. */

__kernel void f_activation(__global const float *x, __global float *y, int act, float4 act_params, int count) {
        const int i = get_global_id(0);

        if (i < count)
                y[i] = cl_activate(x[i], act, act_params);
}

/* Y = A op B, B of A's shape (b_count == count) or one value (b_count 1). */
__kernel void f_binary(__global const float *a, __global const float *b, __global float *y, int op, int b_count,
                       int count) {
        const int i = get_global_id(0);

        if (i >= count)
                return;
        const float u = a[i], v = b[b_count == 1 ? 0 : i];
        y[i] = op == BINARY_ADD ? u + v : op == BINARY_SUB ? u - v : op == BINARY_MUL ? u * v : u / v;
}

/* Softmax over `length` values `inner` apart; one work-item per (outer,
 * inner) line. Subtracting the max keeps exp() from overflowing. */
__kernel void f_softmax(__global const float *x, __global float *y, int outer, int length, int inner) {
        const int line = get_global_id(0);

        if (line >= outer * inner)
                return;
        const size_t base = (size_t) (line / inner) * length * inner + line % inner;
        float max = -INFINITY, sum = 0.0f;

        for (int j = 0; j < length; j++)
                max = x[base + (size_t) j * inner] > max ? x[base + (size_t) j * inner] : max;
        for (int j = 0; j < length; j++) {
                const float e = exp(x[base + (size_t) j * inner] - max);

                y[base + (size_t) j * inner] = e;
                sum += e;
        }
        for (int j = 0; j < length; j++)
                y[base + (size_t) j * inner] /= sum;
}

/* MaxPool (P_MODE 1) / AveragePool (P_MODE 0), 2-D, one work-item per
 * output. Max lets NaN through, as the CPU does. */
__kernel void f_pool(__global const float *x, __global const int *p, __global float *y, int total) {
        const int index = get_global_id(0);

        if (index >= total)
                return;

        const int in_h = p[P_IN_H], in_w = p[P_IN_W], out_h = p[P_OUT_H], out_w = p[P_OUT_W];
        const int ox = index % out_w, oy = (index / out_w) % out_h, plane = index / (out_w * out_h);
        const int is_max = p[P_MODE] == 1;
        __global const float *xp = x + (size_t) plane * in_h * in_w;
        float acc = is_max ? -INFINITY : 0.0f;
        int valid = 0, rows = 0, cols = 0;

        for (int kh = 0; kh < p[P_KERNEL_H]; kh++) {
                const int iy = oy * p[P_STRIDE_H] - p[P_PAD_TOP] + kh * p[P_DILATION_H];

                rows += iy >= -p[P_PAD_TOP] && iy < in_h + p[P_PAD_BOTTOM];
                if (iy < 0 || iy >= in_h)
                        continue;
                for (int kw = 0; kw < p[P_KERNEL_W]; kw++) {
                        const int ix = ox * p[P_STRIDE_W] - p[P_PAD_LEFT] + kw * p[P_DILATION_W];

                        if (ix < 0 || ix >= in_w)
                                continue;
                        const float v = xp[(size_t) iy * in_w + ix];
                        acc = is_max ? (v > acc || isnan(v) ? v : acc) : acc + v;
                        valid++;
                }
        }
        for (int kw = 0; kw < p[P_KERNEL_W]; kw++) {
                const int ix = ox * p[P_STRIDE_W] - p[P_PAD_LEFT] + kw * p[P_DILATION_W];

                cols += ix >= -p[P_PAD_LEFT] && ix < in_w + p[P_PAD_RIGHT];
        }
        if (!is_max)
                acc = acc / (float) (p[P_COUNT_PAD] ? rows * cols : valid);
        y[index] = acc;
}

/* GlobalMaxPool (P_MODE 1) / GlobalAveragePool (P_MODE 0): one work-item
 * per plane. */
__kernel void f_global_pool(__global const float *x, __global const int *p, __global float *y, int planes) {
        const int plane = get_global_id(0);

        if (plane >= planes)
                return;
        const int size = p[P_IN_H] * p[P_IN_W];
        __global const float *xp = x + (size_t) plane * size;
        float acc = p[P_MODE] == 1 ? -INFINITY : 0.0f;

        for (int i = 0; i < size; i++)
                acc = p[P_MODE] == 1 ? (xp[i] > acc || isnan(xp[i]) ? xp[i] : acc) : acc + xp[i];
        y[plane] = p[P_MODE] == 1 ? acc : acc / (float) size;
}

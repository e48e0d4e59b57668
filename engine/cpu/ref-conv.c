/* SPDX-License-Identifier: MIT */
/* Conv (1-D to 3-D, grouped and depthwise, auto_pad) and the sliding-window
 * geometry it shares with the pooling operators. Dense convolutions run as
 * im2col + the blocked sgemm of ref-gemm.c (1x1 stride-1 unpadded ones
 * straight on the input); depthwise ones run a direct loop, where im2col
 * would copy 9x the input to do 1/C of a matrix product's work. */
#include <stdlib.h>

#include "ref-internal.h"

static int read_spatial_attr(const CvoptNode *n, const char *name, uint32_t spatial, int64_t default_value,
                             int64_t *values) {
        int64_t buf[CVOPT_MAX_DIMS];
        bool present;
        int count = ref_attr_ints(n, name, CVOPT_MAX_DIMS, buf, &present);

        if (count < 0)
                return count;
        if (!present) {
                for (uint32_t i = 0; i < spatial; i++)
                        values[i] = default_value;
                return 0;
        }
        if ((uint32_t) count != spatial)
                return ref_fail(-CVOPT_E_SHAPE, n, "attribute '%s' has %d values, expected %u", name, count, spatial);
        for (uint32_t i = 0; i < spatial; i++) {
                /* The bound keeps every later product of sizes, strides
                 * and dilations far from int64 overflow. */
                if (buf[i] < 1 || buf[i] > INT32_MAX)
                        return ref_fail(-CVOPT_E_UNSUPPORTED, n, "attribute '%s' value %lld is out of range", name,
                                        (long long) buf[i]);
                values[i] = buf[i];
        }
        return 0;
}

int ref_window_params(const CvoptNode *n, const CvoptTensor *x, const int64_t *kernel, bool allow_ceil,
                      bool allow_dilations, RefWindow *ret) {
        int64_t stride[3], dilation[3], pads[6] = { 0 }, ceil_mode = 0;
        RefWindow w = { 0 };
        const char *auto_pad;
        uint32_t spatial;
        bool has_pads;
        int r, count;

        if (x->ndim < 3 || x->ndim > 5)
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "input '%s' has %u dims; 1 to 3 spatial dims are supported",
                                x->name, x->ndim);
        spatial = x->ndim - 2;
        r = read_spatial_attr(n, "strides", spatial, 1, stride);
        if (r < 0)
                return r;
        if (allow_dilations)
                r = read_spatial_attr(n, "dilations", spatial, 1, dilation);
        else if (cvopt_node_attr(n, "dilations"))
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "attribute 'dilations' is not supported");
        else
                for (uint32_t i = 0; i < spatial; i++)
                        dilation[i] = 1;
        if (r < 0)
                return r;
        if (allow_ceil) {
                r = ref_attr_int(n, "ceil_mode", 0, &ceil_mode);
                if (r < 0)
                        return r;
                if (ceil_mode != 0 && ceil_mode != 1)
                        return ref_fail(-CVOPT_E_UNSUPPORTED, n, "ceil_mode %lld", (long long) ceil_mode);
        }
        r = ref_attr_string(n, "auto_pad", "NOTSET", &auto_pad);
        if (r < 0)
                return r;
        count = ref_attr_ints(n, "pads", 6, pads, &has_pads);
        if (count < 0)
                return count;
        if (has_pads && (uint32_t) count != 2 * spatial)
                return ref_fail(-CVOPT_E_SHAPE, n, "attribute 'pads' has %d values, expected %u", count, 2 * spatial);
        if (has_pads && !streq(auto_pad, "NOTSET"))
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "'pads' together with auto_pad %s", auto_pad);
        for (int i = 0; i < count; i++)
                if (pads[i] < 0)
                        return ref_fail(-CVOPT_E_UNSUPPORTED, n, "negative pad %lld", (long long) pads[i]);
        if (!streq(auto_pad, "NOTSET") && !streq(auto_pad, "SAME_UPPER") && !streq(auto_pad, "SAME_LOWER") &&
            !streq(auto_pad, "VALID"))
                return ref_fail(-CVOPT_E_UNSUPPORTED, n, "auto_pad '%s'", auto_pad);

        /* Spatial dims go to the END of the 3-slot arrays; the leading
         * unused slots describe a window of size 1 over a dim of size 1. */
        w.spatial = spatial;
        for (uint32_t s = 0; s < 3; s++) {
                w.in[s] = w.kernel[s] = w.stride[s] = w.dilation[s] = w.out[s] = 1;
                w.pad_begin[s] = w.pad_end[s] = 0;
        }
        for (uint32_t i = 0; i < spatial; i++) {
                uint32_t s = 3 - spatial + i;
                int64_t in = x->dims[2 + i], k = kernel[i], extent, span;

                if (k < 1 || k > INT32_MAX)
                        return ref_fail(-CVOPT_E_SHAPE, n, "kernel size %lld", (long long) k);
                if (in > INT32_MAX)
                        return ref_fail(-CVOPT_E_SHAPE, n, "input size %lld too large", (long long) in);
                if (__builtin_mul_overflow(k - 1, dilation[i], &extent) || extent > INT32_MAX)
                        return ref_fail(-CVOPT_E_SHAPE, n, "kernel extent too large");
                extent += 1;
                w.in[s] = in;
                w.kernel[s] = k;
                w.stride[s] = stride[i];
                w.dilation[s] = dilation[i];
                if (streq(auto_pad, "SAME_UPPER") || streq(auto_pad, "SAME_LOWER")) {
                        int64_t out = (in + stride[i] - 1) / stride[i];
                        int64_t total = MAX((out - 1) * stride[i] + extent - in, (int64_t) 0);

                        /* SAME_UPPER puts the odd pad at the end, SAME_LOWER
                         * at the beginning. */
                        w.pad_begin[s] = streq(auto_pad, "SAME_UPPER") ? total / 2 : total - total / 2;
                        w.pad_end[s] = total - w.pad_begin[s];
                        w.out[s] = out;
                        continue;
                }
                if (streq(auto_pad, "NOTSET")) {
                        w.pad_begin[s] = pads[i];
                        w.pad_end[s] = pads[i + spatial];
                }
                if (w.pad_begin[s] > INT32_MAX || w.pad_end[s] > INT32_MAX || in > INT32_MAX)
                        return ref_fail(-CVOPT_E_SHAPE, n, "pads or input too large");
                span = in + w.pad_begin[s] + w.pad_end[s] - extent;
                if (span < 0)
                        return ref_fail(-CVOPT_E_SHAPE, n,
                                        "kernel extent %lld exceeds padded input %lld in spatial dim %u",
                                        (long long) extent, (long long) (in + w.pad_begin[s] + w.pad_end[s]), i);
                if (ceil_mode) {
                        w.out[s] = (span + stride[i] - 1) / stride[i] + 1;
                        /* As in PyTorch and ONNX's reference: the last window
                         * must start inside the input or the leading pad. */
                        if ((w.out[s] - 1) * stride[i] >= in + w.pad_begin[s])
                                w.out[s]--;
                } else
                        w.out[s] = span / stride[i] + 1;
        }
        *ret = w;
        return 0;
}

typedef struct ConvParams {
        RefWindow window;
        size_t batch, channels, out_channels, group;
        size_t channels_per_group, out_per_group;
        size_t kernel_size; /* product of the kernel dims */
} ConvParams;

static int conv_params(const CvoptNode *n, const CvoptTensor *x, const CvoptTensor *w, const CvoptTensor *b,
                       ConvParams *ret) {
        int64_t kernel_attr[CVOPT_MAX_DIMS], group;
        ConvParams p = { 0 };
        bool has_kernel;
        int count, r;

        if (x->ndim != w->ndim)
                return ref_fail(-CVOPT_E_SHAPE, n, "input '%s' has %u dims but weight '%s' has %u", x->name, x->ndim,
                                w->name, w->ndim);
        r = ref_attr_int(n, "group", 1, &group);
        if (r < 0)
                return r;
        if (group < 1 || group > x->dims[1] || x->dims[1] % group != 0)
                return ref_fail(-CVOPT_E_SHAPE, n, "group %lld does not divide the %lld input channels",
                                (long long) group, (long long) x->dims[1]);
        if (w->dims[1] * group != x->dims[1])
                return ref_fail(-CVOPT_E_SHAPE, n,
                                "weight '%s' expects %lld input channels per group, input has %lld channels in %lld groups",
                                w->name, (long long) w->dims[1], (long long) x->dims[1], (long long) group);
        if (w->dims[0] < 1 || w->dims[0] % group != 0)
                return ref_fail(-CVOPT_E_SHAPE, n, "group %lld does not divide the %lld output channels",
                                (long long) group, (long long) w->dims[0]);
        count = ref_attr_ints(n, "kernel_shape", CVOPT_MAX_DIMS, kernel_attr, &has_kernel);
        if (count < 0)
                return count;
        if (has_kernel) {
                if ((uint32_t) count != w->ndim - 2)
                        return ref_fail(-CVOPT_E_SHAPE, n, "kernel_shape has %d values for %u spatial dims", count,
                                        w->ndim - 2);
                for (int i = 0; i < count; i++)
                        if (kernel_attr[i] != w->dims[2 + i])
                                return ref_fail(-CVOPT_E_SHAPE, n, "kernel_shape disagrees with weight '%s'",
                                                w->name);
        }
        r = ref_window_params(n, x, w->dims + 2, false, true, &p.window);
        if (r < 0)
                return r;
        if (b && (b->ndim != 1 || b->dims[0] != w->dims[0]))
                return ref_fail(-CVOPT_E_SHAPE, n, "bias '%s' must have %lld values", b->name,
                                (long long) w->dims[0]);
        p.batch = (size_t) x->dims[0];
        p.channels = (size_t) x->dims[1];
        p.out_channels = (size_t) w->dims[0];
        p.group = (size_t) group;
        p.channels_per_group = p.channels / p.group;
        p.out_per_group = p.out_channels / p.group;
        p.kernel_size = ref_dims_product(p.window.kernel, 0, 3);
        *ret = p;
        return 0;
}

static void conv_output_dims(const ConvParams *p, int64_t *dims) {
        dims[0] = (int64_t) p->batch;
        dims[1] = (int64_t) p->out_channels;
        for (uint32_t i = 0; i < p->window.spatial; i++)
                dims[2 + i] = p->window.out[3 - p->window.spatial + i];
}

int ref_conv_infer(CvoptGraph *g, CvoptNode *n) {
        int64_t dims[CVOPT_MAX_DIMS];
        CvoptTensor *x, *w, *b;
        RefActivation act;
        ConvParams p;
        int r;

        r = ref_check_arity(n, 2, 3, 1, 1);
        if (r >= 0)
                r = ref_input(g, n, 0, &x);
        if (r >= 0)
                r = ref_input(g, n, 1, &w);
        if (r >= 0)
                r = ref_input_optional(g, n, 2, &b);
        if (r >= 0)
                r = ref_check_dtype(n, x, CVOPT_DTYPE_FLOAT32, "input");
        if (r >= 0)
                r = ref_check_dtype(n, w, CVOPT_DTYPE_FLOAT32, "weight");
        if (r >= 0 && b)
                r = ref_check_dtype(n, b, CVOPT_DTYPE_FLOAT32, "bias");
        if (r >= 0)
                r = ref_fused_activation_parse(n, &act);
        if (r >= 0)
                r = conv_params(n, x, w, b, &p);
        if (r < 0)
                return r;
        conv_output_dims(&p, dims);
        return ref_set_output(g, n, 0, CVOPT_DTYPE_FLOAT32, x->ndim, dims);
}

/* Range [*lo, *hi) of output positions o whose input position
 * o * stride + offset lies in [0, in). */
static void valid_range(int64_t out, int64_t in, int64_t stride, int64_t offset, int64_t *lo, int64_t *hi) {
        int64_t l = offset < 0 ? (-offset + stride - 1) / stride : 0;
        int64_t h = in - 1 - offset < 0 ? 0 : (in - 1 - offset) / stride + 1;

        h = MIN(h, out);
        l = MIN(l, h);
        *lo = l;
        *hi = h;
}

/* Unfolds the channels of one group of one image into a
 * (channels * kernel_size) x (output pixels) matrix. */
static void im2col(const RefWindow *wd, size_t channels, const float *x, float *col) {
        const int64_t *in = wd->in, *k = wd->kernel, *s = wd->stride, *d = wd->dilation, *pb = wd->pad_begin,
                      *out = wd->out;
        size_t plane = (size_t) (in[0] * in[1] * in[2]);

        for (size_t c = 0; c < channels; c++) {
                const float *xc = x + c * plane;

                for (int64_t kd = 0; kd < k[0]; kd++)
                        for (int64_t kh = 0; kh < k[1]; kh++)
                                for (int64_t kw = 0; kw < k[2]; kw++) {
                                        int64_t off_w = kw * d[2] - pb[2], lo, hi;

                                        valid_range(out[2], in[2], s[2], off_w, &lo, &hi);
                                        for (int64_t od = 0; od < out[0]; od++) {
                                                int64_t id = od * s[0] + kd * d[0] - pb[0];

                                                for (int64_t oh = 0; oh < out[1]; oh++) {
                                                        int64_t ih = oh * s[1] + kh * d[1] - pb[1];
                                                        float *dst = col;

                                                        col += out[2];
                                                        if (id < 0 || id >= in[0] || ih < 0 || ih >= in[1]) {
                                                                memset(dst, 0, (size_t) out[2] * sizeof(float));
                                                                continue;
                                                        }
                                                        const float *src = xc + (id * in[1] + ih) * in[2] + off_w;

                                                        for (int64_t ow = 0; ow < lo; ow++)
                                                                dst[ow] = 0;
                                                        if (s[2] == 1)
                                                                memcpy(dst + lo, src + lo, (size_t) (hi - lo) * sizeof(float));
                                                        else
                                                                for (int64_t ow = lo; ow < hi; ow++)
                                                                        dst[ow] = src[ow * s[2]];
                                                        for (int64_t ow = hi; ow < out[2]; ow++)
                                                                dst[ow] = 0;
                                                }
                                        }
                                }
        }
}

/* One input channel x to one output plane y (already holding the bias):
 * the direct loop used when each group has a single input channel. */
static void conv_depthwise_channel(const RefWindow *wd, const float *x, const float *weights, float *y) {
        const int64_t *in = wd->in, *k = wd->kernel, *s = wd->stride, *d = wd->dilation, *pb = wd->pad_begin,
                      *out = wd->out;

        for (int64_t kd = 0; kd < k[0]; kd++)
                for (int64_t kh = 0; kh < k[1]; kh++)
                        for (int64_t kw = 0; kw < k[2]; kw++) {
                                float wv = *weights++;
                                int64_t off_w = kw * d[2] - pb[2], lo, hi;

                                valid_range(out[2], in[2], s[2], off_w, &lo, &hi);
                                for (int64_t od = 0; od < out[0]; od++) {
                                        int64_t id = od * s[0] + kd * d[0] - pb[0];

                                        if (id < 0 || id >= in[0])
                                                continue;
                                        for (int64_t oh = 0; oh < out[1]; oh++) {
                                                int64_t ih = oh * s[1] + kh * d[1] - pb[1];

                                                if (ih < 0 || ih >= in[1])
                                                        continue;
                                                const float *restrict src = x + (id * in[1] + ih) * in[2] + off_w;
                                                float *restrict dst = y + (od * out[1] + oh) * out[2];

                                                if (s[2] == 1)
                                                        ref_axpy((size_t) (hi - lo), wv, src + lo, dst + lo);
                                                else
                                                        for (int64_t ow = lo; ow < hi; ow++)
                                                                dst[ow] += wv * src[ow * s[2]];
                                        }
                                }
                        }
}

/* 1-D and 2-D depthwise convolution on a zero-padded copy of the input
 * plane, arranged so that each kernel tap is ONE multiply-add loop over the
 * whole output plane, contiguous and free of bounds checks:
 * - the padded plane is split into stride_h x stride_w sub-planes (rows
 *   q, q + sh, q + 2sh... and columns p, p + sw...), each of pitch P; the
 *   inputs that one tap reads for consecutive outputs then sit next to each
 *   other in one sub-plane, row after row with the same pitch P;
 * - the output is accumulated in a buffer of the same pitch P (the P - OW
 *   extra columns per row are computed and dropped).
 * With stride 1 there is one sub-plane. On 14x14 planes this is ~3x faster
 * than row-by-row loops, whose short trips are mostly loop overhead. */
typedef struct DepthwiseScratch {
        size_t sub_rows, pitch;     /* of each sub-plane */
        size_t stride_h, stride_w;  /* sub-planes: stride_h * stride_w */
        size_t *tap_offsets;        /* where each kernel tap starts reading in[] */
        float *in, *out;
} DepthwiseScratch;

static bool depthwise_padded_applies(const RefWindow *wd) {
        return wd->in[0] == 1 && wd->kernel[0] == 1 && wd->out[0] == 1 && wd->out[1] > 0 && wd->out[2] > 0;
}

static float *depthwise_sub_plane(const DepthwiseScratch *s, size_t q, size_t p) {
        return s->in + (q * s->stride_w + p) * s->sub_rows * s->pitch;
}

/* Copies plane x into the sub-planes, zero elsewhere. */
static void depthwise_fill(const RefWindow *wd, const DepthwiseScratch *s, const float *x) {
        const int64_t *in = wd->in, *pb = wd->pad_begin;

        memset(s->in, 0, s->stride_h * s->stride_w * s->sub_rows * s->pitch * sizeof(float));
        for (size_t p = 0; p < s->stride_w; p++) {
                /* Entry i of column phase p is padded column i * stride_w + p,
                 * input column i * stride_w + offset. */
                int64_t offset = (int64_t) p - pb[2], lo, hi;
                size_t q = (size_t) pb[1] % s->stride_h, sub_row = (size_t) pb[1] / s->stride_h;

                valid_range((int64_t) s->pitch, in[2], (int64_t) s->stride_w, offset, &lo, &hi);
                for (int64_t ih = 0; ih < in[1]; ih++) {
                        const float *src = x + ih * in[2];
                        float *dst;

                        /* Input rows past what the output uses are left out. */
                        if (sub_row >= s->sub_rows)
                                break;
                        dst = depthwise_sub_plane(s, q, p) + sub_row * s->pitch;
                        if (s->stride_w == 1)
                                memcpy(dst + lo, src + lo + offset, (size_t) (hi - lo) * sizeof(float));
                        else
                                for (int64_t i = lo; i < hi; i++)
                                        dst[i] = src[i * (int64_t) s->stride_w + offset];
                        /* Next padded row: the next row phase, wrapping to
                         * the next sub-plane row. */
                        if (++q == s->stride_h) {
                                q = 0;
                                sub_row++;
                        }
                }
        }
}

static void conv_depthwise_channel_padded(const RefWindow *wd, const DepthwiseScratch *s, const float *x,
                                          const float *weights, float *y) {
        const int64_t *k = wd->kernel, *out = wd->out;
        size_t pitch = s->pitch, span = (size_t) (out[1] - 1) * pitch + (size_t) out[2];

        depthwise_fill(wd, s, x);
        for (int64_t oh = 0; oh < out[1]; oh++)
                memcpy(s->out + (size_t) oh * pitch, y + oh * out[2], (size_t) out[2] * sizeof(float));
        for (int64_t tap = 0; tap < k[1] * k[2]; tap++)
                ref_axpy(span, weights[tap], s->in + s->tap_offsets[tap], s->out);
        for (int64_t oh = 0; oh < out[1]; oh++)
                memcpy(y + oh * out[2], s->out + (size_t) oh * pitch, (size_t) out[2] * sizeof(float));
}

static int depthwise_scratch_new(const RefWindow *wd, DepthwiseScratch *s) {
        const int64_t *k = wd->kernel, *d = wd->dilation;
        size_t rows, width, in_floats, out_floats;

        /* The padded rows and columns the taps reach. Bounded by the int32
         * limits ref_window_params() puts on sizes, strides and dilations. */
        rows = (size_t) ((wd->out[1] - 1) * wd->stride[1] + (wd->kernel[1] - 1) * wd->dilation[1] + 1);
        width = (size_t) ((wd->out[2] - 1) * wd->stride[2] + (wd->kernel[2] - 1) * wd->dilation[2] + 1);
        s->stride_h = (size_t) wd->stride[1];
        s->stride_w = (size_t) wd->stride[2];
        s->sub_rows = DIV_ROUND_UP(rows, s->stride_h);
        s->pitch = DIV_ROUND_UP(width, s->stride_w);
        if (size_mul_overflow(s->sub_rows, s->pitch, &in_floats) ||
            size_mul_overflow(in_floats, s->stride_h * s->stride_w, &in_floats) ||
            size_mul_overflow((size_t) wd->out[1], s->pitch, &out_floats) ||
            in_floats > SIZE_MAX / sizeof(float) || out_floats > SIZE_MAX / sizeof(float))
                return -ENOMEM;
        s->in = malloc(MAX(in_floats, (size_t) 1) * sizeof(float));
        s->out = malloc(MAX(out_floats, (size_t) 1) * sizeof(float));
        s->tap_offsets = calloc((size_t) (k[1] * k[2]), sizeof(size_t));
        if (!s->in || !s->out || !s->tap_offsets)
                return -ENOMEM;
        for (int64_t kh = 0; kh < k[1]; kh++)
                for (int64_t kw = 0; kw < k[2]; kw++) {
                        size_t tap_row = (size_t) (kh * d[1]), tap_col = (size_t) (kw * d[2]);

                        s->tap_offsets[kh * k[2] + kw] =
                                (size_t) (depthwise_sub_plane(s, tap_row % s->stride_h, tap_col % s->stride_w) - s->in) +
                                tap_row / s->stride_h * s->pitch + tap_col / s->stride_w;
                }
        return 0;
}

static void depthwise_scratch_done(DepthwiseScratch *s) {
        free(s->tap_offsets);
        free(s->in);
        free(s->out);
}

int ref_conv_run(const CvoptNode *n, const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        const CvoptTensor *x = inputs[0], *w = inputs[1], *b = n->n_inputs > 2 ? inputs[2] : NULL;
        CvoptTensor *y = outputs[0];
        _cleanup_(depthwise_scratch_done) DepthwiseScratch scratch = { 0 };
        _cleanup_free_ float *col = NULL;
        int64_t dims[CVOPT_MAX_DIMS];
        size_t in_plane, out_plane, rows;
        RefActivation act;
        ConvParams p;
        bool direct_gemm;
        int r;

        r = ref_fused_activation_parse(n, &act);
        if (r >= 0)
                r = conv_params(n, x, w, b, &p);
        if (r < 0)
                return r;
        conv_output_dims(&p, dims);
        r = ref_check_output_shape(n, y, CVOPT_DTYPE_FLOAT32, x->ndim, dims);
        if (r < 0)
                return r;

        in_plane = ref_dims_product(p.window.in, 0, 3);
        out_plane = ref_dims_product(p.window.out, 0, 3);
        rows = p.channels_per_group * p.kernel_size;
        direct_gemm = p.kernel_size == 1;
        for (uint32_t s = 0; s < 3; s++)
                direct_gemm = direct_gemm && p.window.stride[s] == 1 && p.window.pad_begin[s] == 0 &&
                              p.window.pad_end[s] == 0;
        if (!direct_gemm && p.channels_per_group == 1 && depthwise_padded_applies(&p.window)) {
                r = depthwise_scratch_new(&p.window, &scratch);
                if (r < 0)
                        return ref_fail(r, n, "out of memory for depthwise scratch");
        }
        if (!direct_gemm && p.channels_per_group > 1) {
                size_t bytes;

                if (size_mul_overflow(rows, out_plane, &bytes) || size_mul_overflow(bytes, sizeof(float), &bytes))
                        return ref_fail(-CVOPT_E_SHAPE, n, "im2col buffer too large");
                col = malloc(MAX(bytes, (size_t) 1));
                if (!col)
                        return -ENOMEM;
        }

        for (size_t img = 0; img < p.batch; img++) {
                const float *xi = (const float *) x->data + img * p.channels * in_plane;
                float *yi = (float *) y->data + img * p.out_channels * out_plane;

                /* The bias goes in first; the product accumulates onto it. */
                for (size_t m = 0; m < p.out_channels; m++) {
                        float bias = b ? ((const float *) b->data)[m] : 0.0f;

                        REF_BLOCKED_LOOP(i, out_plane, yi[m * out_plane + i] = bias);
                }
                for (size_t grp = 0; grp < p.group; grp++) {
                        const float *xg = xi + grp * p.channels_per_group * in_plane;
                        const float *wg = (const float *) w->data + grp * p.out_per_group * rows;
                        float *yg = yi + grp * p.out_per_group * out_plane;

                        if (p.channels_per_group == 1 && !direct_gemm) {
                                for (size_t m = 0; m < p.out_per_group; m++)
                                        if (scratch.in)
                                                conv_depthwise_channel_padded(&p.window, &scratch, xg,
                                                                              wg + m * p.kernel_size,
                                                                              yg + m * out_plane);
                                        else
                                                conv_depthwise_channel(&p.window, xg, wg + m * p.kernel_size,
                                                                       yg + m * out_plane);
                                continue;
                        }
                        if (!direct_gemm)
                                im2col(&p.window, p.channels_per_group, xg, col);
                        r = ref_sgemm(p.out_per_group, out_plane, rows, 1.0f, wg, rows, 1, direct_gemm ? xg : col,
                                      out_plane, 1, yg, out_plane, true);
                        if (r < 0)
                                return r;
                }
        }
        ref_activation_apply(&act, y->data, ref_count(y));
        return 0;
}

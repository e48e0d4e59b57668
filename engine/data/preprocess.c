/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <errno.h>
#include <math.h>

#include "cvopt/errors.h"
#include "cvopt/image.h"
#include "macro.h"

/* Resampling is separable: for each output column (and row) a short list
 * of contiguous source columns (rows) with weights, computed once per
 * plan. An output row is the weighted sum of its source rows (vertical
 * pass, over the referenced columns only), then each output pixel the
 * weighted sum of its source columns (horizontal pass). */
typedef struct AxisTaps {
        /* Output indices [out_begin, out_end) show the image; the others
         * are letterbox padding. */
        uint32_t out_begin, out_end;
        /* Source indices [src_begin, src_end) are read by some tap. */
        uint32_t src_begin, src_end;
        uint32_t max_taps;
        uint32_t *first;  /* per shown output index: first source index */
        uint32_t *count;  /* per shown output index: number of taps */
        float *weights;   /* [i * max_taps + k] */
} AxisTaps;

struct CvoptResizePlan {
        CvoptInputSpec spec;
        uint32_t channels;
        uint32_t src_width, src_height;
        AxisTaps x, y;
        /* The last two source rows fetched (referenced columns, C floats
         * each) and their row numbers (UINT32_MAX: empty). Consecutive
         * output rows share source rows when upscaling or shrinking a
         * little; two slots serve the two taps of bilinear without asking
         * the source again. */
        float *src_rows[2];
        uint32_t src_row_y[2];
        uint32_t src_row_next; /* slot to replace next */
        float *sum_row;   /* the vertical pass's result, same layout */
        float *out_row;   /* one output row, shown columns, C floats each */
};

/* Beyond this shrink factor bilinear interpolation skips source pixels
 * entirely (each output reads 2 of `step` pixels), so the axis switches
 * to area averaging. At exactly 2x bilinear still reads every pixel once
 * with weight 1/2, which is the area average. */
#define AREA_AVERAGE_MIN_STEP 2.0

static void axis_taps_done(AxisTaps *a) {
        free(a->first);
        free(a->count);
        free(a->weights);
        *a = (AxisTaps) {};
}

/* Output index o (out_begin <= o < out_end) covers source coordinates
 * [src_start + (o - out_begin) * step, ... + step), pixel i covering
 * [i, i + 1). */
static int axis_taps_build(AxisTaps *a, uint32_t src_len, double src_start, double step, uint32_t out_begin,
                           uint32_t out_end) {
        bool area = step > AREA_AVERAGE_MIN_STEP;
        uint32_t n = out_end - out_begin;

        *a = (AxisTaps) { .out_begin = out_begin, .out_end = out_end, .src_begin = UINT32_MAX };
        /* Area: a box of width step touches at most ceil(step) + 1 pixels. */
        a->max_taps = area ? (uint32_t) ceil(step) + 1 : 2;
        a->first = calloc(n, sizeof(uint32_t));
        a->count = calloc(n, sizeof(uint32_t));
        a->weights = calloc((size_t) n * a->max_taps, sizeof(float));
        if (!a->first || !a->count || !a->weights)
                return -ENOMEM;

        for (uint32_t i = 0; i < n; i++) {
                float *w = a->weights + (size_t) i * a->max_taps;
                uint32_t first, count = 0;

                if (area) {
                        double lo = src_start + i * step, hi = lo + step;
                        lo = CLAMP(lo, 0.0, (double) src_len);
                        hi = CLAMP(hi, 0.0, (double) src_len);
                        if (hi - lo <= 0.0) {
                                /* Only reachable through rounding at the
                                 * edge: fall back to the nearest pixel. */
                                first = lo >= src_len ? src_len - 1 : (uint32_t) lo;
                                w[count++] = 1.0f;
                        } else {
                                first = (uint32_t) floor(lo);
                                for (uint32_t s = first; s < src_len && s < hi && count < a->max_taps; s++) {
                                        double cover = MIN(hi, (double) s + 1) - MAX(lo, (double) s);
                                        if (cover <= 0.0) {
                                                if (count == 0)
                                                        first++;
                                                continue;
                                        }
                                        w[count++] = (float) (cover / (hi - lo));
                                }
                        }
                } else {
                        /* Pixel-centre sampling; at step 1 with start 0
                         * u is exactly i: one tap of weight 1. */
                        double u = src_start + (i + 0.5) * step - 0.5, f;
                        u = CLAMP(u, 0.0, (double) (src_len - 1));
                        first = (uint32_t) floor(u);
                        f = u - first;
                        if (first >= src_len - 1) {
                                first = src_len - 1;
                                f = 0.0;
                        }
                        w[count++] = (float) (1.0 - f);
                        if (f > 0.0)
                                w[count++] = (float) f;
                }
                assert(count >= 1 && first + count <= src_len);
                a->first[i] = first;
                a->count[i] = count;
                a->src_begin = MIN(a->src_begin, first);
                a->src_end = MAX(a->src_end, first + count);
        }
        return 0;
}

int cvopt_input_spec_check(const CvoptInputSpec *spec) {
        uint32_t channels;

        if (!spec)
                return cvopt_error_set(-EINVAL, "no input spec");
        if (spec->width == 0 || spec->height == 0 || spec->width > CVOPT_IMAGE_MAX_DIMENSION ||
            spec->height > CVOPT_IMAGE_MAX_DIMENSION)
                return cvopt_error_set(-EINVAL, "input size %ux%u out of range 1..%u", spec->width,
                                       spec->height, CVOPT_IMAGE_MAX_DIMENSION);
        if (spec->color != CVOPT_COLOR_GRAY && spec->color != CVOPT_COLOR_RGB && spec->color != CVOPT_COLOR_BGR)
                return cvopt_error_set(-EINVAL, "input colour %d unknown", (int) spec->color);
        if (spec->resize != CVOPT_RESIZE_STRETCH && spec->resize != CVOPT_RESIZE_CENTER_CROP &&
            spec->resize != CVOPT_RESIZE_LETTERBOX)
                return cvopt_error_set(-EINVAL, "input resize policy %d unknown", (int) spec->resize);
        channels = cvopt_color_channels(spec->color);
        for (uint32_t c = 0; c < channels; c++) {
                if (!isfinite(spec->mean[c]))
                        return cvopt_error_set(-EINVAL, "input mean[%u] is not finite", c);
                if (!isfinite(spec->std[c]) || !(spec->std[c] > 0.0f))
                        return cvopt_error_set(-EINVAL, "input std[%u] = %g, must be > 0", c,
                                               (double) spec->std[c]);
        }
        return 0;
}

CvoptResizePlan *cvopt_resize_plan_free(CvoptResizePlan *plan) {
        if (!plan)
                return NULL;
        axis_taps_done(&plan->x);
        axis_taps_done(&plan->y);
        free(plan->src_rows[0]);
        free(plan->src_rows[1]);
        free(plan->sum_row);
        free(plan->out_row);
        free(plan);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptResizePlan *, cvopt_resize_plan_free);

int cvopt_resize_plan_new(const CvoptInputSpec *spec, uint32_t src_width, uint32_t src_height,
                          CvoptResizePlan **ret_plan) {
        _cleanup_(cvopt_resize_plan_freep) CvoptResizePlan *plan = NULL;
        uint32_t out_w, out_h, x_begin = 0, x_end, y_begin = 0, y_end;
        double x_start = 0.0, y_start = 0.0, x_step, y_step;
        /* The axis that limits the scale: width when
         * out_w / src_w <= out_h / src_h, compared exactly in integers. */
        bool width_limits;
        size_t n;
        int r;

        r = cvopt_input_spec_check(spec);
        if (r < 0)
                return r;
        if (src_width == 0 || src_height == 0 || src_width > CVOPT_IMAGE_MAX_DIMENSION ||
            src_height > CVOPT_IMAGE_MAX_DIMENSION)
                return cvopt_error_set(-EINVAL, "source size %ux%u out of range 1..%u", src_width, src_height,
                                       CVOPT_IMAGE_MAX_DIMENSION);

        out_w = x_end = spec->width;
        out_h = y_end = spec->height;
        width_limits = (uint64_t) out_w * src_height <= (uint64_t) out_h * src_width;
        x_step = (double) src_width / out_w;
        y_step = (double) src_height / out_h;

        switch (spec->resize) {
        case CVOPT_RESIZE_STRETCH:
                break;
        case CVOPT_RESIZE_CENTER_CROP:
                /* The short side (relative to the output) fills the
                 * output; the other axis uses the same step and is
                 * centred, its excess cropped. */
                if (width_limits) {
                        x_step = y_step;
                        x_start = (src_width - out_w * x_step) / 2;
                } else {
                        y_step = x_step;
                        y_start = (src_height - out_h * y_step) / 2;
                }
                break;
        case CVOPT_RESIZE_LETTERBOX:
                /* The long side fills the output; the other axis shows the
                 * whole image over a centred band of rounded size. */
                if (width_limits) {
                        uint32_t shown = (uint32_t) lround(src_height / x_step);
                        shown = CLAMP(shown, 1u, out_h);
                        y_begin = (out_h - shown) / 2;
                        y_end = y_begin + shown;
                        y_step = (double) src_height / shown;
                } else {
                        uint32_t shown = (uint32_t) lround(src_width / y_step);
                        shown = CLAMP(shown, 1u, out_w);
                        x_begin = (out_w - shown) / 2;
                        x_end = x_begin + shown;
                        x_step = (double) src_width / shown;
                }
                break;
        }

        plan = calloc(1, sizeof(*plan));
        if (!plan)
                return -ENOMEM;
        plan->spec = *spec;
        plan->channels = cvopt_color_channels(spec->color);
        plan->src_width = src_width;
        plan->src_height = src_height;
        r = axis_taps_build(&plan->x, src_width, x_start, x_step, x_begin, x_end);
        if (r < 0)
                return r;
        r = axis_taps_build(&plan->y, src_height, y_start, y_step, y_begin, y_end);
        if (r < 0)
                return r;

        n = (size_t) (plan->x.src_end - plan->x.src_begin) * plan->channels;
        plan->src_rows[0] = calloc(n, sizeof(float));
        plan->src_rows[1] = calloc(n, sizeof(float));
        plan->sum_row = calloc(n, sizeof(float));
        plan->out_row = calloc((size_t) (x_end - x_begin) * plan->channels, sizeof(float));
        if (!plan->src_rows[0] || !plan->src_rows[1] || !plan->sum_row || !plan->out_row)
                return -ENOMEM;

        *ret_plan = TAKE_PTR(plan);
        return 0;
}

/* Source row y, from the two-row cache or from the source. */
static int plan_source_row(CvoptResizePlan *plan, uint32_t y, CvoptPixelSourceFunc source, void *source_userdata,
                           const float **ret_row) {
        uint32_t slot;
        int r;

        for (slot = 0; slot < 2; slot++)
                if (plan->src_row_y[slot] == y) {
                        *ret_row = plan->src_rows[slot];
                        return 0;
                }
        slot = plan->src_row_next;
        plan->src_row_y[slot] = UINT32_MAX;
        r = source(source_userdata, y, plan->x.src_begin, plan->x.src_end, plan->src_rows[slot]);
        if (r < 0)
                return r;
        plan->src_row_y[slot] = y;
        plan->src_row_next = slot ^ 1;
        *ret_row = plan->src_rows[slot];
        return 0;
}

/* sum = w * src (first) or sum += w * src. restrict lets the compiler
 * vectorize: without it, it must assume sum may alias the weights and
 * reload them per element (this loop was a third of cvoptd's CPU time). */
static void accumulate_row(float *restrict sum, const float *restrict src, float w, size_t n, bool first) {
        if (first)
                for (size_t i = 0; i < n; i++)
                        sum[i] = w * src[i];
        else
                for (size_t i = 0; i < n; i++)
                        sum[i] += w * src[i];
}

int cvopt_resize_plan_run(CvoptResizePlan *plan, CvoptPixelSourceFunc source, void *source_userdata,
                          CvoptRowWriterFunc writer, void *writer_userdata) {
        const AxisTaps *ax = &plan->x, *ay = &plan->y;
        uint32_t channels = plan->channels;
        size_t n_src = (size_t) (ax->src_end - ax->src_begin) * channels;
        int r;

        /* Each run reads a new frame: nothing cached survives it. */
        plan->src_row_y[0] = plan->src_row_y[1] = UINT32_MAX;
        plan->src_row_next = 0;

        for (uint32_t oy = 0; oy < plan->spec.height; oy++) {
                const float *wy;
                uint32_t j;

                if (oy < ay->out_begin || oy >= ay->out_end) {
                        r = writer(writer_userdata, oy, 0, 0, NULL);
                        if (r < 0)
                                return r;
                        continue;
                }

                /* Vertical pass. With one tap of weight 1 (the identity
                 * case), 1 * p == p exactly. */
                j = oy - ay->out_begin;
                wy = ay->weights + (size_t) j * ay->max_taps;
                for (uint32_t k = 0; k < ay->count[j]; k++) {
                        const float *src;
                        r = plan_source_row(plan, ay->first[j] + k, source, source_userdata, &src);
                        if (r < 0)
                                return r;
                        accumulate_row(plan->sum_row, src, wy[k], n_src, k == 0);
                }

                /* Horizontal pass. */
                for (uint32_t i = 0; i < ax->out_end - ax->out_begin; i++) {
                        const float *wx = ax->weights + (size_t) i * ax->max_taps;
                        const float *in = plan->sum_row + (size_t) (ax->first[i] - ax->src_begin) * channels;
                        float *out = plan->out_row + (size_t) i * channels;

                        if (channels == 3) {
                                /* The three channels in one pass over the
                                 * taps: a third of the loop overhead. */
                                float r0 = 0.0f, g0 = 0.0f, b0 = 0.0f;
                                for (uint32_t k = 0; k < ax->count[i]; k++, in += 3) {
                                        r0 += wx[k] * in[0];
                                        g0 += wx[k] * in[1];
                                        b0 += wx[k] * in[2];
                                }
                                out[0] = r0;
                                out[1] = g0;
                                out[2] = b0;
                        } else {
                                float v = 0.0f;
                                for (uint32_t k = 0; k < ax->count[i]; k++)
                                        v += wx[k] * in[k];
                                out[0] = v;
                        }
                }
                r = writer(writer_userdata, oy, ax->out_begin, ax->out_end, plan->out_row);
                if (r < 0)
                        return r;
        }
        return 0;
}

int cvopt_pixel_source_image(void *userdata, uint32_t y, uint32_t x_begin, uint32_t x_end, float *ret_row) {
        const CvoptPixelSourceImage *s = userdata;
        const CvoptImage *img = s->image;
        const uint8_t *p;

        if (y >= img->height || x_begin > x_end || x_end > img->width)
                return cvopt_error_set(-EINVAL, "pixel row %u columns %u..%u outside a %ux%u image", y, x_begin,
                                       x_end, img->width, img->height);
        p = img->pixels + ((size_t) y * img->width + x_begin) * img->channels;

        /* One loop per conversion, no branch per pixel: this runs for
         * every pixel of every camera frame the daemon replays. */
        if (img->channels == 1 && s->color == CVOPT_COLOR_GRAY)
                for (uint32_t x = x_begin; x < x_end; x++)
                        *ret_row++ = *p++;
        else if (img->channels == 1)
                for (uint32_t x = x_begin; x < x_end; x++, ret_row += 3) {
                        float v = *p++;
                        ret_row[0] = ret_row[1] = ret_row[2] = v;
                }
        else if (s->color == CVOPT_COLOR_GRAY)
                /* BT.601 luma. */
                for (uint32_t x = x_begin; x < x_end; x++, p += 3)
                        *ret_row++ = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
        else if (s->color == CVOPT_COLOR_BGR)
                for (uint32_t x = x_begin; x < x_end; x++, p += 3, ret_row += 3) {
                        ret_row[0] = p[2];
                        ret_row[1] = p[1];
                        ret_row[2] = p[0];
                }
        else
                for (size_t i = 0; i < (size_t) (x_end - x_begin) * 3; i++)
                        *ret_row++ = *p++;
        return 0;
}

int cvopt_row_writer_float(void *userdata, uint32_t y, uint32_t x_begin, uint32_t x_end, const float *row) {
        const CvoptRowWriterFloat *w = userdata;
        const CvoptInputSpec *spec = w->spec;
        uint32_t channels = cvopt_color_channels(spec->color), width = spec->width;
        size_t plane = (size_t) width * spec->height;

        if (y >= spec->height || x_begin > x_end || x_end > width || (!row && x_end > x_begin))
                return cvopt_error_set(-EINVAL, "output row %u columns %u..%u outside %ux%u", y, x_begin, x_end,
                                       width, spec->height);

        for (uint32_t c = 0; c < channels; c++) {
                float *out = w->values + c * plane + (size_t) y * width;
                float mean = spec->mean[c], std = spec->std[c];

                for (uint32_t x = 0; x < x_begin; x++)
                        out[x] = 0.0f;
                for (uint32_t x = x_begin; x < x_end; x++)
                        out[x] = (row[(size_t) (x - x_begin) * channels + c] / 255.0f - mean) / std;
                for (uint32_t x = x_end; x < width; x++)
                        out[x] = 0.0f;
        }
        return 0;
}

static int8_t quantize_int8(float v, float scale, int32_t zero_point) {
        /* nearbyintf rounds half to even in the default rounding mode,
         * as QuantizeLinear specifies. */
        float q = nearbyintf(v / scale) + (float) zero_point;
        return (int8_t) CLAMP(q, -128.0f, 127.0f);
}

int cvopt_row_writer_int8(void *userdata, uint32_t y, uint32_t x_begin, uint32_t x_end, const float *row) {
        const CvoptRowWriterInt8 *w = userdata;
        const CvoptInputSpec *spec = w->spec;
        uint32_t channels = cvopt_color_channels(spec->color), width = spec->width;
        size_t plane = (size_t) width * spec->height;
        int8_t pad;

        if (y >= spec->height || x_begin > x_end || x_end > width || (!row && x_end > x_begin))
                return cvopt_error_set(-EINVAL, "output row %u columns %u..%u outside %ux%u", y, x_begin, x_end,
                                       width, spec->height);
        if (!(w->scale > 0.0f) || !isfinite(w->scale))
                return cvopt_error_set(-EINVAL, "input quantization scale %g must be > 0", (double) w->scale);

        pad = quantize_int8(0.0f, w->scale, w->zero_point);
        for (uint32_t c = 0; c < channels; c++) {
                int8_t *out = w->values + c * plane + (size_t) y * width;
                float mean = spec->mean[c], std = spec->std[c];

                for (uint32_t x = 0; x < x_begin; x++)
                        out[x] = pad;
                for (uint32_t x = x_begin; x < x_end; x++) {
                        float v = (row[(size_t) (x - x_begin) * channels + c] / 255.0f - mean) / std;
                        out[x] = quantize_int8(v, w->scale, w->zero_point);
                }
                for (uint32_t x = x_end; x < width; x++)
                        out[x] = pad;
        }
        return 0;
}

int cvopt_preprocess_image(const CvoptInputSpec *spec, const CvoptImage *img, float *ret_values) {
        _cleanup_(cvopt_resize_plan_freep) CvoptResizePlan *plan = NULL;
        CvoptPixelSourceImage source;
        CvoptRowWriterFloat writer;
        int r;

        if (!img || !img->pixels || (img->channels != 1 && img->channels != 3))
                return cvopt_error_set(-EINVAL, "invalid image to preprocess");
        if (!ret_values)
                return cvopt_error_set(-EINVAL, "no output buffer");
        r = cvopt_resize_plan_new(spec, img->width, img->height, &plan);
        if (r < 0)
                return r;
        source = (CvoptPixelSourceImage) { .image = img, .color = spec->color };
        writer = (CvoptRowWriterFloat) { .spec = spec, .values = ret_values };
        return cvopt_resize_plan_run(plan, cvopt_pixel_source_image, &source, cvopt_row_writer_float, &writer);
}

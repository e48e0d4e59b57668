/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <turbojpeg.h>

#include "cvopt/errors.h"
#include "preprocess.h"

struct Preprocessor {
        CvoptInputSpec spec;
        CvoptResizePlan *plan;
        uint32_t plan_width, plan_height;
        tjhandle jpeg;
        uint8_t *jpeg_pixels;
        size_t jpeg_pixels_size;
};

typedef struct FramePixels {
        const Frame *frame;
        CvoptColor color;
} FramePixels;

int preprocessor_new(const CvoptInputSpec *spec, Preprocessor **ret) {
        int r = cvopt_input_spec_check(spec);
        if (r < 0)
                return r;
        Preprocessor *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->spec = *spec;
        *ret = p;
        return 0;
}

Preprocessor *preprocessor_free(Preprocessor *p) {
        if (!p)
                return NULL;
        cvopt_resize_plan_free(p->plan);
        if (p->jpeg)
                tjDestroy(p->jpeg);
        free(p->jpeg_pixels);
        free(p);
        return NULL;
}

static int plan_for(Preprocessor *p, uint32_t w, uint32_t h) {
        if (p->plan && p->plan_width == w && p->plan_height == h)
                return 0;
        p->plan = cvopt_resize_plan_free(p->plan);
        int r = cvopt_resize_plan_new(&p->spec, w, h, &p->plan);
        if (r < 0)
                return r;
        p->plan_width = w;
        p->plan_height = h;
        return 0;
}

static inline float clamp255(float v) {
        return v < 0.f ? 0.f : v > 255.f ? 255.f : v;
}

/* BT.601 YCbCr to the model's colour. Limited range (the V4L2 default
 * for YUV formats) stretches 16..235 / 16..240 to 0..255 first. The luma
 * of BT.601 is exactly the gray value preprocessing computes from RGB, so
 * a gray model reads Y directly. */
static inline void yuv_emit(const FramePixels *fp, float Y, float U, float V, float *out) {
        if (!fp->frame->full_range) {
                Y = (Y - 16.f) * (255.f / 219.f);
                U = (U - 128.f) * (255.f / 224.f) + 128.f;
                V = (V - 128.f) * (255.f / 224.f) + 128.f;
        }
        if (fp->color == CVOPT_COLOR_GRAY) {
                out[0] = clamp255(Y);
                return;
        }
        float R = clamp255(Y + 1.402f * (V - 128.f));
        float G = clamp255(Y - 0.344136f * (U - 128.f) - 0.714136f * (V - 128.f));
        float B = clamp255(Y + 1.772f * (U - 128.f));
        if (fp->color == CVOPT_COLOR_BGR) {
                out[0] = B, out[1] = G, out[2] = R;
        } else {
                out[0] = R, out[1] = G, out[2] = B;
        }
}

static int pixels_yuyv(void *userdata, uint32_t y, uint32_t x_begin, uint32_t x_end, float *row) {
        const FramePixels *fp = userdata;
        const uint8_t *line = fp->frame->data + (size_t) y * fp->frame->bytes_per_line;
        uint32_t C = cvopt_color_channels(fp->color);
        /* The common case for gray models: luma is every other byte. Two
         * plain loops the compiler vectorizes (the general path below
         * branches per pixel). */
        if (fp->color == CVOPT_COLOR_GRAY) {
                if (fp->frame->full_range)
                        for (uint32_t x = x_begin; x < x_end; x++)
                                row[x - x_begin] = line[(size_t) x * 2];
                else
                        for (uint32_t x = x_begin; x < x_end; x++)
                                row[x - x_begin] = clamp255((line[(size_t) x * 2] - 16.f) * (255.f / 219.f));
                return 0;
        }
        for (uint32_t x = x_begin; x < x_end; x++) {
                const uint8_t *pair = line + (size_t) (x & ~1u) * 2;
                yuv_emit(fp, pair[(x & 1) * 2], pair[1], pair[3], row + (size_t) (x - x_begin) * C);
        }
        return 0;
}

static int pixels_nv12(void *userdata, uint32_t y, uint32_t x_begin, uint32_t x_end, float *row) {
        const FramePixels *fp = userdata;
        const Frame *f = fp->frame;
        const uint8_t *luma = f->data + (size_t) y * f->bytes_per_line;
        const uint8_t *chroma = f->data + (size_t) f->bytes_per_line * f->height + (size_t) (y / 2) * f->bytes_per_line;
        uint32_t C = cvopt_color_channels(fp->color);
        for (uint32_t x = x_begin; x < x_end; x++)
                yuv_emit(fp, luma[x], chroma[x & ~1u], chroma[(x & ~1u) + 1], row + (size_t) (x - x_begin) * C);
        return 0;
}

static int pixels_grey(void *userdata, uint32_t y, uint32_t x_begin, uint32_t x_end, float *row) {
        const FramePixels *fp = userdata;
        const uint8_t *line = fp->frame->data + (size_t) y * fp->frame->bytes_per_line;
        uint32_t C = cvopt_color_channels(fp->color);
        for (uint32_t x = x_begin; x < x_end; x++)
                for (uint32_t c = 0; c < C; c++)
                        row[(size_t) (x - x_begin) * C + c] = line[x];
        return 0;
}

static int pixels_rgb24(void *userdata, uint32_t y, uint32_t x_begin, uint32_t x_end, float *row) {
        const FramePixels *fp = userdata;
        const uint8_t *line = fp->frame->data + (size_t) y * fp->frame->bytes_per_line;
        for (uint32_t x = x_begin; x < x_end; x++) {
                const uint8_t *p = line + (size_t) x * 3;
                float *o = row + (size_t) (x - x_begin) * cvopt_color_channels(fp->color);
                if (fp->color == CVOPT_COLOR_GRAY)
                        o[0] = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
                else if (fp->color == CVOPT_COLOR_BGR)
                        o[0] = p[2], o[1] = p[1], o[2] = p[0];
                else
                        o[0] = p[0], o[1] = p[1], o[2] = p[2];
        }
        return 0;
}

/* Checks that the frame holds every byte the pixel source will read. */
static int frame_check(const Frame *f) {
        uint64_t min_line, need;
        switch (f->format) {
        case CAMERA_FORMAT_YUYV: min_line = (uint64_t) f->width * 2; break;
        case CAMERA_FORMAT_RGB24: min_line = (uint64_t) f->width * 3; break;
        case CAMERA_FORMAT_GREY:
        case CAMERA_FORMAT_NV12: min_line = f->width; break;
        default: return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "frame format %s", camera_format_name(f->format));
        }
        if (f->width == 0 || f->height == 0 || (f->format == CAMERA_FORMAT_YUYV && f->width % 2) ||
            (f->format == CAMERA_FORMAT_NV12 && (f->width % 2 || f->height % 2)))
                return cvopt_error_set(-CVOPT_E_DATA, "frame size %ux%u invalid for %s", f->width, f->height,
                                       camera_format_name(f->format));
        if (f->bytes_per_line < min_line)
                return cvopt_error_set(-CVOPT_E_DATA, "frame line of %u bytes, need %llu", f->bytes_per_line,
                                       (unsigned long long) min_line);
        need = (uint64_t) f->bytes_per_line * f->height;
        if (f->format == CAMERA_FORMAT_NV12)
                need += (uint64_t) f->bytes_per_line * (f->height / 2);
        if (f->bytes_used < need)
                return cvopt_error_set(-CVOPT_E_DATA, "short frame: %u bytes, need %llu", f->bytes_used,
                                       (unsigned long long) need);
        return 0;
}

/* Decodes a JPEG frame at the smallest libturbojpeg scale (1/8 .. 1) whose
 * size still covers the model input, so a 640x480 frame for a 28x28 model
 * is decoded at 80x60: ~60x less work than a full decode. */
static int decode_mjpeg(Preprocessor *p, const Frame *f, CvoptImage *ret_view) {
        int w, h, subsamp, colorspace, n_factors;
        if (!p->jpeg && !(p->jpeg = tjInitDecompress()))
                return -ENOMEM;
        if (f->bytes_used < 4 || tjDecompressHeader3(p->jpeg, f->data, f->bytes_used, &w, &h, &subsamp, &colorspace) < 0)
                return cvopt_error_set(-CVOPT_E_DATA, "bad JPEG frame: %s", tjGetErrorStr2(p->jpeg));
        if (w <= 0 || h <= 0 || (uint32_t) w > CVOPT_IMAGE_MAX_DIMENSION || (uint32_t) h > CVOPT_IMAGE_MAX_DIMENSION)
                return cvopt_error_set(-CVOPT_E_DATA, "JPEG frame of %dx%d", w, h);
        tjscalingfactor *factors = tjGetScalingFactors(&n_factors);
        tjscalingfactor best = { 1, 1 };
        int best_w = w, best_h = h;
        for (int i = 0; factors && i < n_factors; i++) {
                if (factors[i].num > factors[i].denom)
                        continue;
                int sw = TJSCALED(w, factors[i]), sh = TJSCALED(h, factors[i]);
                if ((uint32_t) sw >= p->spec.width && (uint32_t) sh >= p->spec.height &&
                    (int64_t) sw * sh < (int64_t) best_w * best_h)
                        best = factors[i], best_w = sw, best_h = sh;
        }
        int channels = p->spec.color == CVOPT_COLOR_GRAY ? 1 : 3;
        size_t size = (size_t) best_w * best_h * channels;
        if (size > p->jpeg_pixels_size) {
                uint8_t *n = realloc(p->jpeg_pixels, size);
                if (!n)
                        return -ENOMEM;
                p->jpeg_pixels = n;
                p->jpeg_pixels_size = size;
        }
        if (tjDecompress2(p->jpeg, f->data, f->bytes_used, p->jpeg_pixels, best_w, 0, best_h,
                          channels == 1 ? TJPF_GRAY : TJPF_RGB, TJFLAG_FASTDCT) < 0 &&
            tjGetErrorCode(p->jpeg) == TJERR_FATAL)
                return cvopt_error_set(-CVOPT_E_DATA, "bad JPEG frame: %s", tjGetErrorStr2(p->jpeg));
        (void) best;
        *ret_view = (CvoptImage) { .width = best_w, .height = best_h, .channels = channels, .pixels = p->jpeg_pixels };
        return 0;
}

int preprocess_image_float(Preprocessor *p, const CvoptImage *img, float *values) {
        int r = plan_for(p, img->width, img->height);
        if (r < 0)
                return r;
        CvoptPixelSourceImage src = { .image = img, .color = p->spec.color };
        CvoptRowWriterFloat writer = { .spec = &p->spec, .values = values };
        return cvopt_resize_plan_run(p->plan, cvopt_pixel_source_image, &src, cvopt_row_writer_float, &writer);
}

int preprocess_frame_float(Preprocessor *p, const Frame *f, float *values) {
        CvoptPixelSourceFunc source;
        int r;

        if (f->format == CAMERA_FORMAT_MJPEG) {
                CvoptImage view;
                r = decode_mjpeg(p, f, &view);
                if (r < 0)
                        return r;
                return preprocess_image_float(p, &view, values);
        }
        r = frame_check(f);
        if (r < 0)
                return r;
        switch (f->format) {
        case CAMERA_FORMAT_YUYV: source = pixels_yuyv; break;
        case CAMERA_FORMAT_NV12: source = pixels_nv12; break;
        case CAMERA_FORMAT_GREY: source = pixels_grey; break;
        case CAMERA_FORMAT_RGB24: source = pixels_rgb24; break;
        default: return -CVOPT_E_UNSUPPORTED;
        }
        r = plan_for(p, f->width, f->height);
        if (r < 0)
                return r;
        FramePixels fp = { .frame = f, .color = p->spec.color };
        CvoptRowWriterFloat writer = { .spec = &p->spec, .values = values };
        return cvopt_resize_plan_run(p->plan, source, &fp, cvopt_row_writer_float, &writer);
}

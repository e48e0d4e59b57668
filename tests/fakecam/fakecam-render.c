/* SPDX-License-Identifier: MIT */
/* The fake camera's frames: a dataset item stretched (nearest neighbour)
 * to the negotiated size and written in the negotiated pixel format, with
 * the colour conventions listed in fakecam.c's header. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "fakecam-render.h"

/* Line and image sizes of a format, as the driver reports them. */
void frame_geometry(uint32_t fourcc, uint32_t w, uint32_t h, uint32_t line_pad, uint32_t *ret_bytes_per_line,
                    uint32_t *ret_size_image) {
        uint32_t bpl;
        switch (fourcc) {
        case V4L2_PIX_FMT_YUYV: bpl = w * 2 + line_pad; break;
        case V4L2_PIX_FMT_NV12:
        case V4L2_PIX_FMT_GREY: bpl = w + line_pad; break;
        case V4L2_PIX_FMT_RGB24: bpl = w * 3 + line_pad; break;
        default:
                /* Compressed: no lines; room for any JPEG of quality 90. */
                *ret_bytes_per_line = 0;
                *ret_size_image = w * h * 2;
                return;
        }
        *ret_bytes_per_line = bpl;
        *ret_size_image = fourcc == V4L2_PIX_FMT_NV12 ? bpl * h + bpl * (h / 2) : bpl * h;
}

/* The item's pixel under frame pixel (x, y): a nearest-neighbour stretch. */
static inline void item_rgb(const FrameLayout *f, const CvoptImage *img, uint32_t x, uint32_t y,
                            uint8_t ret_rgb[static 3]) {
        uint32_t sx = (uint32_t) ((uint64_t) x * img->width / f->width);
        uint32_t sy = (uint32_t) ((uint64_t) y * img->height / f->height);
        const uint8_t *p = img->pixels + ((size_t) sy * img->width + sx) * img->channels;
        ret_rgb[0] = p[0];
        ret_rgb[1] = img->channels == 3 ? p[1] : p[0];
        ret_rgb[2] = img->channels == 3 ? p[2] : p[0];
}

/* BT.601 luma, the gray value preprocessing computes from RGB. */
static inline float luma(const uint8_t rgb[static 3]) {
        return 0.299f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2];
}

static inline uint8_t round_byte(float v) {
        return v <= 0.f ? 0 : v >= 255.f ? 255 : (uint8_t) (v + 0.5f);
}

/* A line's padding is set to 0xff: a reader that took it for pixels would
 * see a white column, and misclassify. */
static void fill_line_pad(const FrameLayout *f, uint8_t *plane, uint32_t lines) {
        uint32_t used = f->bytes_per_line - f->line_pad;
        for (uint32_t y = 0; y < lines && f->line_pad > 0; y++)
                memset(plane + (size_t) y * f->bytes_per_line + used, 0xff, f->line_pad);
}

static uint32_t render_mjpeg(const FrameLayout *f, const CvoptImage *img, uint8_t *mem, size_t length) {
        uint32_t W = f->width, H = f->height;
        uint8_t *rgb = malloc((size_t) W * H * 3);
        if (!rgb)
                abort();
        for (uint32_t y = 0; y < H; y++)
                for (uint32_t x = 0; x < W; x++)
                        item_rgb(f, img, x, y, rgb + ((size_t) y * W + x) * 3);
        tjhandle tj = tjInitCompress();
        unsigned long size = length;
        unsigned char *dst = mem;
        int r = tjCompress2(tj, rgb, (int) W, 0, (int) H, TJPF_RGB, &dst, &size, TJSAMP_422, 90, TJFLAG_NOREALLOC);
        tjDestroy(tj);
        free(rgb);
        if (r < 0) {
                fprintf(stderr, "fakecam: JPEG encoding failed\n");
                abort();
        }
        return (uint32_t) size;
}

/* Limited range (16..235 luma, 16..240 chroma), as most NV12 sources
 * (ISPs, video decoders) deliver it and as V4L2 assumes for YUV by
 * default: the daemon's limited-range path runs on a real format. Chroma
 * is the average over each 2x2 block, as a decent scaler would make it. */
static uint32_t render_nv12(const FrameLayout *f, const CvoptImage *img, uint8_t *mem) {
        uint32_t W = f->width, H = f->height, bpl = f->bytes_per_line;
        uint8_t *luma_plane = mem, *chroma_plane = mem + (size_t) bpl * H;

        for (uint32_t y = 0; y < H; y += 2)
                for (uint32_t x = 0; x < W; x += 2) {
                        float sum_b_minus_y = 0.f, sum_r_minus_y = 0.f;
                        for (uint32_t dy = 0; dy < 2; dy++)
                                for (uint32_t dx = 0; dx < 2; dx++) {
                                        uint8_t rgb[3];
                                        item_rgb(f, img, x + dx, y + dy, rgb);
                                        float Y = luma(rgb);
                                        luma_plane[(size_t) (y + dy) * bpl + x + dx] = round_byte(16.f + Y * (219.f / 255.f));
                                        sum_b_minus_y += rgb[2] - Y;
                                        sum_r_minus_y += rgb[0] - Y;
                                }
                        uint8_t *uv = chroma_plane + (size_t) (y / 2) * bpl + x;
                        uv[0] = round_byte(128.f + sum_b_minus_y / 4.f / 1.772f * (224.f / 255.f));
                        uv[1] = round_byte(128.f + sum_r_minus_y / 4.f / 1.402f * (224.f / 255.f));
                }
        fill_line_pad(f, luma_plane, H);
        fill_line_pad(f, chroma_plane, H / 2);
        return bpl * H + bpl * (H / 2);
}

/* The packed formats: YUYV (full range, U = V = 128 for gray), GREY and
 * RGB24. */
static uint32_t render_packed(const FrameLayout *f, const CvoptImage *img, uint8_t *mem) {
        uint32_t W = f->width, H = f->height, bpl = f->bytes_per_line;

        for (uint32_t y = 0; y < H; y++) {
                uint8_t *line = mem + (size_t) y * bpl;
                for (uint32_t x = 0; x < W; x++) {
                        uint8_t rgb[3];
                        item_rgb(f, img, x, y, rgb);
                        uint8_t R = rgb[0], G = rgb[1], B = rgb[2];
                        switch (f->fourcc) {
                        case V4L2_PIX_FMT_YUYV: {
                                float Y = 0.299f * R + 0.587f * G + 0.114f * B;
                                uint8_t *o = line + (size_t) x * 2;
                                o[0] = (uint8_t) (Y + 0.5f);
                                o[1] = (uint8_t) ((x & 1) ? ((R - Y) / 1.402f + 128.5f) : ((B - Y) / 1.772f + 128.5f));
                                break;
                        }
                        case V4L2_PIX_FMT_GREY:
                                line[x] = round_byte(luma(rgb));
                                break;
                        case V4L2_PIX_FMT_RGB24: {
                                uint8_t *o = line + (size_t) x * 3;
                                o[0] = R, o[1] = G, o[2] = B;
                                break;
                        }
                        default:
                                abort();
                        }
                }
        }
        fill_line_pad(f, mem, H);
        return bpl * H;
}

uint32_t frame_render(const FrameLayout *f, const CvoptImage *img, uint8_t *mem, size_t length) {
        switch (f->fourcc) {
        case V4L2_PIX_FMT_MJPEG:
                return render_mjpeg(f, img, mem, length);
        case V4L2_PIX_FMT_NV12:
                return render_nv12(f, img, mem);
        default:
                return render_packed(f, img, mem);
        }
}

/* SPDX-License-Identifier: MIT */
#pragma once

/* Scalar int8 reference operators: the oracle for every int8 backend.
 * Attribute conventions are in docs/quantization.md. */

#include "cvopt/graph.h"
#include "cvopt/quant.h"
#include "ref-ops.h"

/* NULL unless op is a quantized operator (cvopt_op_is_quantized). */
const RefOp *q_op_lookup(CvoptOp op);

/* Geometry of a 2-D sliding window (conv or pool) over an NCHW input,
 * read from a node's kernel_shape/pads/strides/dilations/ceil_mode. */
typedef struct QWindow {
        int64_t kernel_h, kernel_w;
        int64_t pad_top, pad_left, pad_bottom, pad_right;
        int64_t stride_h, stride_w;
        int64_t dilation_h, dilation_w;
        int64_t out_h, out_w;
} QWindow;

/* Fills w for input height/width in_h, in_w; kernel from kernel_shape or,
 * when absent, kernel_h/kernel_w given (conv weights). */
int q_window_init(const CvoptNode *n, int64_t in_h, int64_t in_w, int64_t kernel_h, int64_t kernel_w,
                  bool ceil_mode, QWindow *ret_window);

/* Requantization parameters of a node: per-channel multiplier/shift
 * arrays (count entries, or one broadcast to all) and the output clamp. */
typedef struct QRequantParams {
        const int64_t *multiplier;
        const int64_t *shift;
        uint32_t count;
        int32_t out_min, out_max;
        const int64_t *lut; /* 256 entries or NULL */
        const float *out_scale; /* float output: per-channel scale, or NULL */
        uint32_t out_scale_count;
} QRequantParams;

/* Checks t is a uint8 activation with per-tensor scale and zero point. */
int q_check_activation(const CvoptNode *n, const CvoptTensor *t, const char *what);
int32_t q_zero_point(const CvoptTensor *t);
int q_copy_dims(CvoptTensor *out, uint32_t ndim, const int64_t *dims);

int q_requant_params(const CvoptNode *n, uint32_t channels, bool float_output, QRequantParams *ret);

/* Writes the output of channel c for accumulator acc at out[index]: u8
 * through requantization (and the fused activation table, if any), or f32
 * through the per-channel scale. */
static inline void q_store(const QRequantParams *p, const CvoptTensor *y, uint32_t c, int32_t acc,
                           void *out, size_t index) {
        if (p->out_scale) {
                ((float *) out)[index] = (float) acc * p->out_scale[p->out_scale_count == 1 ? 0 : c];
                return;
        }
        uint32_t k = p->count == 1 ? 0 : c;
        int32_t zero_point = y->quant.count ? y->quant.zero_point[0] : 0;
        uint8_t v = cvopt_requantize(acc, (int32_t) p->multiplier[k], (int32_t) p->shift[k], zero_point,
                                 p->lut ? 0 : p->out_min, p->lut ? 255 : p->out_max);
        ((uint8_t *) out)[index] = p->lut ? (uint8_t) p->lut[v] : v;
}

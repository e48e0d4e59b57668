/* SPDX-License-Identifier: MIT */
#pragma once

#include "quantize.h"

typedef struct Builder {
        const CvoptGraph *f; /* the float graph */
        const CalibrationStats *stats;
        const QuantizeOptions *options;
        CvoptGraph *q; /* the graph being built */
        int32_t *as_float; /* f tensor -> q tensor holding its float value, or -1 */
        int32_t *as_quant; /* f tensor -> q tensor holding its uint8 value, or -1 */
        float *scale;      /* f tensor -> chosen activation scale (0: not chosen yet) */
        int32_t *zero_point;
        QuantizeReport *report;
        uint32_t n_float_nodes[_CVOPT_OP_MAX];
} Builder;

int builder_activation_quant(Builder *b, int32_t ft, float *ret_scale, int32_t *ret_zero_point);
int builder_set_quant(CvoptTensor *t, float scale, int32_t zero_point);
int builder_add_tensor(Builder *b, int32_t ft, const char *suffix, CvoptDType dtype, int32_t *ret);
int builder_float_version(Builder *b, int32_t ft, int32_t *ret);
int builder_quant_version(Builder *b, int32_t ft, int32_t *ret);
int builder_quant_output(Builder *b, int32_t ft, int32_t same_as, int32_t *ret);
int builder_copy_attrs(const CvoptNode *from, CvoptNode *to);

/* 1: emitted quantized; 0: the caller emits it in float; < 0: error. */
int builder_emit_quantized(Builder *b, uint32_t node_index);

int quantize_emit_layer(Builder *b, uint32_t node_index);
int quantize_resolve_pads(const CvoptNode *n, const CvoptTensor *x, int64_t kernel_h, int64_t kernel_w,
                          int64_t ret_pads[4]);

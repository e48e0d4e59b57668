/* SPDX-License-Identifier: MIT */
/* Layout of the integer parameter block each conv/pool/gemm kernel reads
 * (one small int buffer per node, written once in prepare_node). This file
 * is both embedded at the top of the OpenCL program and included by the
 * host code (engine/opencl), so the two cannot disagree. Plain #defines
 * only: it must be valid C and OpenCL C. */
#ifndef CVOPT_CL_LAYOUT_H
#define CVOPT_CL_LAYOUT_H

#define P_BATCH 0
#define P_IN_C 1
#define P_IN_H 2
#define P_IN_W 3
#define P_OUT_C 4
#define P_OUT_H 5
#define P_OUT_W 6
#define P_KERNEL_H 7
#define P_KERNEL_W 8
#define P_STRIDE_H 9
#define P_STRIDE_W 10
#define P_PAD_TOP 11
#define P_PAD_LEFT 12
#define P_DILATION_H 13
#define P_DILATION_W 14
#define P_GROUP_IN 15  /* input channels per group */
#define P_GROUP_OUT 16 /* output channels per group */
#define P_DEPTH 17     /* GROUP_IN * KERNEL_H * KERNEL_W, or K of a gemm */
#define P_X_ZERO_POINT 18
#define P_Y_ZERO_POINT 19
#define P_OUT_MIN 20
#define P_OUT_MAX 21
#define P_MODE 22 /* OUT_MODE_* for int8 ops, ACT_* for float ones */
#define P_PAD_BOTTOM 23
#define P_PAD_RIGHT 24
#define P_COUNT_PAD 25 /* pools: count_include_pad */
#define P_ROWS 26      /* gemm: M */
#define P_COUNT 27

/* Where an int8 conv/gemm writes its result. */
#define OUT_MODE_U8 0
#define OUT_MODE_U8_LUT 1 /* requantize to 0..255, then the fused table */
#define OUT_MODE_F32 2    /* (float) acc * out_scale[c] */

/* Float activations, fused or standalone (engine/cpu/ref-ops.c). */
#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_CLIP 2
#define ACT_LEAKY_RELU 3
#define ACT_HARD_SWISH 4
#define ACT_SIGMOID 5
#define ACT_HARD_SIGMOID 6
#define ACT_TANH 7

/* Element-wise binary float ops. */
#define BINARY_ADD 0
#define BINARY_SUB 1
#define BINARY_MUL 2
#define BINARY_DIV 3

/* Tiles of the int8 and float convolution: a work-group computes
 * TILE_OC output channels x TILE_P output pixels, walking the depth in
 * steps of TILE_K through local memory. 16 x 8 = 128 work-items fits every
 * device's minimum work-group size (OpenCL 1.2 guarantees 1 only, but every
 * GPU and PoCL allow 256); TILE_K = 32 keeps both tiles (1.5 KiB for int8,
 * 5 KiB for float) far below the 32 KiB of local memory OpenCL guarantees. */
#define TILE_P 16
#define TILE_OC 8
#define TILE_K 32

/* The int8 convolution blocks registers on top of that: a 16 x 8
 * work-group where each item accumulates Q_OC_PER_ITEM channels x
 * Q_PIX_PER_ITEM pixels, so a group covers 16 channels x 64 pixels and
 * every staged byte is reused 4 or 2 times from registers instead of once
 * (on PoCL, also 8x fewer trips around the barrier loops per MAC). */
#define Q_ITEMS_P 16
#define Q_ITEMS_OC 8
#define Q_PIX_PER_ITEM 4
#define Q_OC_PER_ITEM 2
#define Q_TILE_P (Q_ITEMS_P * Q_PIX_PER_ITEM)
#define Q_TILE_OC (Q_ITEMS_OC * Q_OC_PER_ITEM)

/* The gemm/gemv work-group: GEMM_N output columns share one staged chunk
 * of GEMM_K input values. */
#define GEMM_N 64
#define GEMM_K 256

#endif

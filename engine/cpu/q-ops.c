/* SPDX-License-Identifier: MIT */
#include "q-ops.h"

extern const RefOp q_op_conv, q_op_gemm, q_op_pool, q_op_global_pool, q_op_quantize, q_op_dequantize, q_op_add,
        q_op_concat, q_op_lut;

const RefOp *q_op_lookup(CvoptOp op) {
        switch (op) {
        case CVOPT_OP_QUANTIZE:
                return &q_op_quantize;
        case CVOPT_OP_DEQUANTIZE:
                return &q_op_dequantize;
        case CVOPT_OP_QCONV:
                return &q_op_conv;
        case CVOPT_OP_QGEMM:
                return &q_op_gemm;
        case CVOPT_OP_QADD:
                return &q_op_add;
        case CVOPT_OP_QCONCAT:
                return &q_op_concat;
        case CVOPT_OP_QAVERAGE_POOL:
        case CVOPT_OP_QMAX_POOL:
                return &q_op_pool;
        case CVOPT_OP_QGLOBAL_AVERAGE_POOL:
        case CVOPT_OP_QGLOBAL_MAX_POOL:
                return &q_op_global_pool;
        case CVOPT_OP_QLUT:
                return &q_op_lut;
        default:
                return NULL;
        }
}

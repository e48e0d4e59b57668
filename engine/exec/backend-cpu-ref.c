/* SPDX-License-Identifier: MIT */
/* The CPU reference backend: a thin wrapper around engine/cpu's scalar
 * reference operators. It keeps no state, so its context is NULL. */
#include "cpu/ref-ops.h"
#include "cvopt/errors.h"
#include "exec/backend.h"
#include "macro.h"

static int cpu_ref_init(const CvoptGraph *g, const CvoptSessionOptions *options, void **ret_ctx) {
        (void) g;
        (void) options;
        *ret_ctx = NULL;
        return 0;
}

static void cpu_ref_done(void *ctx) {
        (void) ctx;
}

static bool cpu_ref_supports_op(void *ctx, const CvoptGraph *g, const CvoptNode *n) {
        const RefOp *ref = ref_op_lookup(n->op);

        (void) ctx;
        (void) g;
        return ref && ref->run;
}

static int cpu_ref_run_node(void *ctx, const CvoptGraph *g, const CvoptNode *n, uint32_t node_index,
                            const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        const RefOp *ref = ref_op_lookup(n->op);

        (void) ctx;
        (void) g;
        (void) node_index;
        if (!ref || !ref->run)
                return -CVOPT_E_UNSUPPORTED;
        return ref->run(n, inputs, outputs);
}

const Backend backend_cpu_ref = {
        .name = "cpu-ref",
        .init = cpu_ref_init,
        .done = cpu_ref_done,
        .supports_op = cpu_ref_supports_op,
        .prepare_node = NULL,
        .run_node = cpu_ref_run_node,
};

/* SPDX-License-Identifier: MIT */
/* Work-group size tuning for the kernels whose local size is free (direct
 * convolutions, pools): the best size differs between GPUs (a multiple of
 * the SIMD width, limited by registers) and PoCL (where a work-group is a
 * loop the compiler vectorizes), and cannot be known without measuring.
 * The result is cached on disk per device, driver, kernel source, kernel
 * and problem size, so only a session's first start on a machine pays. */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "cvopt/errors.h"
#include "macro.h"
#include "opencl/cl-backend.h"
#include "opencl/cl-cache.h"

/* Candidates: powers of two from 16 (below that GPUs idle lanes) to 256
 * (the largest size every device we target allows). Each is timed over
 * TUNE_RUNS launches, keeping the best, to skip one-off scheduling noise. */
static const size_t candidates[] = { 16, 32, 64, 128, 256 };
#define TUNE_RUNS 3

static uint64_t tune_key(const ClContext *c, const ClLaunch *l, const char *kernel_name, size_t items) {
        uint64_t key = c->rt->program_key;

        key = cl_hash(key, kernel_name, strlen(kernel_name) + 1);
        key = cl_hash(key, &l->work_dim, sizeof(l->work_dim));
        key = cl_hash(key, &items, sizeof(items));
        for (cl_uint d = 1; d < l->work_dim; d++)
                key = cl_hash(key, &l->global[d], sizeof(l->global[d]));
        return key;
}

static void launch_set_local(ClLaunch *l, size_t items, size_t local) {
        l->local[0] = local;
        l->global[0] = cl_round_up(MAX(items, 1u), local);
        for (cl_uint d = 1; d < l->work_dim; d++)
                l->local[d] = 1;
}

/* Device nanoseconds of the best of TUNE_RUNS launches; 0 on failure. */
static uint64_t launch_time_nsec(ClContext *c, const ClLaunch *l) {
        uint64_t best = 0;

        for (int run = 0; run < TUNE_RUNS; run++) {
                cl_event event = NULL;
                cl_ulong start = 0, end = 0;

                if (clEnqueueNDRangeKernel(c->rt->queue, l->kernel, l->work_dim, NULL, l->global, l->local, 0, NULL,
                                           &event) != CL_SUCCESS)
                        return 0;
                clWaitForEvents(1, &event);
                clGetEventProfilingInfo(event, CL_PROFILING_COMMAND_START, sizeof(start), &start, NULL);
                clGetEventProfilingInfo(event, CL_PROFILING_COMMAND_END, sizeof(end), &end, NULL);
                clReleaseEvent(event);
                if (end <= start)
                        return 0;
                if (best == 0 || end - start < best)
                        best = end - start;
        }
        return best;
}

int cl_node_tune_last(ClContext *c, ClNode *node, size_t items) {
        ClLaunch *l = &node->launches[node->n_launches - 1];
        char kernel_name[64] = "";
        size_t kernel_max = 0, best_local = 0;
        uint64_t best_nsec = 0, key;
        _cleanup_free_ void *cached = NULL;
        size_t cached_size = 0;
        uint32_t value;

        assert(node->n_launches > 0);
        clGetKernelInfo(l->kernel, CL_KERNEL_FUNCTION_NAME, sizeof(kernel_name) - 1, kernel_name, NULL);
        if (clGetKernelWorkGroupInfo(l->kernel, c->rt->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof(kernel_max),
                                     &kernel_max, NULL) != CL_SUCCESS)
                kernel_max = 64;
        kernel_max = MIN(kernel_max, c->rt->max_work_group_size);
        key = tune_key(c, l, kernel_name, items);

        /* A cached size is used only if this device still allows it. */
        if (cl_cache_load(c->rt->cache_dir, "wg", key, &cached, &cached_size) == 0 && cached_size == sizeof(value)) {
                memcpy(&value, cached, sizeof(value));
                for (size_t i = 0; i < ELEMENTSOF(candidates); i++)
                        if (candidates[i] == value && value <= kernel_max) {
                                launch_set_local(l, items, value);
                                return 0;
                        }
                cl_cache_remove(c->rt->cache_dir, "wg", key);
        }
        for (size_t i = 0; i < ELEMENTSOF(candidates) && candidates[i] <= kernel_max; i++) {
                uint64_t nsec;

                launch_set_local(l, items, candidates[i]);
                nsec = launch_time_nsec(c, l);
                if (nsec > 0 && (best_nsec == 0 || nsec < best_nsec)) {
                        best_nsec = nsec;
                        best_local = candidates[i];
                }
        }
        if (best_local == 0) {
                /* Nothing measurable (a device without timers): the driver's
                 * choice, which is never invalid. */
                l->global[0] = MAX(items, 1u);
                l->local[0] = 0;
                return 0;
        }
        launch_set_local(l, items, best_local);
        value = (uint32_t) best_local;
        (void) cl_cache_store(c->rt->cache_dir, "wg", key, &value, sizeof(value));
        return 0;
}

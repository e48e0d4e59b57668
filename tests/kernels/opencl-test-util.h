/* SPDX-License-Identifier: MIT */
#pragma once

/* Helpers of the OpenCL kernel and fallback tests: graph building, a
 * private kernel cache directory, and running one graph on two backends.
 * Include after <cmocka.h>. */

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cvopt/cvopt.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptGraph *, cvopt_graph_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptSession *, cvopt_session_free);

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static inline uint32_t rng(void) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return (uint32_t) (rng_state >> 11);
}

static inline void set_quant(CvoptTensor *t, float scale, int32_t zero_point) {
        t->quant.axis = -1;
        t->quant.count = 1;
        t->quant.scale = malloc(sizeof(float));
        t->quant.zero_point = malloc(sizeof(int32_t));
        assert_non_null(t->quant.scale);
        assert_non_null(t->quant.zero_point);
        t->quant.scale[0] = scale;
        t->quant.zero_point[0] = zero_point;
}

/* An activation tensor; zero_point < 0: float32. */
static inline int32_t add_activation(CvoptGraph *g, const char *name, uint32_t ndim, const int64_t *dims, float scale,
                                     int32_t zero_point) {
        int32_t t;

        assert_int_equal(cvopt_graph_add_tensor(g, name, zero_point < 0 ? CVOPT_DTYPE_FLOAT32 : CVOPT_DTYPE_UINT8,
                                                ndim, dims, &t), 0);
        if (ndim == 0)
                g->tensors[t].has_shape = false;
        if (zero_point >= 0)
                set_quant(&g->tensors[t], scale, zero_point);
        return t;
}

static char cache_dir[256];

static inline int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        return remove(path);
}

/* Every test uses its own empty kernel cache, removed at the end. */
static inline int cache_setup(void **state) {
        (void) state;
        snprintf(cache_dir, sizeof(cache_dir), "/tmp/cvopt-cl-test-XXXXXX");
        if (!mkdtemp(cache_dir))
                return -1;
        setenv("CVOPT_CACHE_DIR", cache_dir, 1);
        return 0;
}

static inline int cache_teardown(void **state) {
        (void) state;
        unsetenv("CVOPT_CACHE_DIR");
        unsetenv("CVOPT_CL_FAULT");
        return nftw(cache_dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* Fills every input of both sessions with the same values: bytes over the
 * whole range with runs of 255, floats over [-8, 8) with exact halves
 * (rounding ties), and a NaN. */
static inline void fill_inputs(CvoptSession *a, CvoptSession *b) {
        for (uint32_t i = 0; i < cvopt_session_n_inputs(a); i++) {
                CvoptTensor *ta = cvopt_session_input(a, i), *tb = cvopt_session_input(b, i);
                size_t bytes = cvopt_tensor_bytes(ta);

                if (ta->dtype == CVOPT_DTYPE_FLOAT32)
                        for (size_t k = 0; k < bytes / sizeof(float); k++) {
                                float v = (float) ((int) (rng() % 4096) - 2048) / 256.0f;
                                if (k % 7 == 3)
                                        v = (float) ((int) (rng() % 64) - 32) * 0.5f * 0.02f;
                                if (k == 5)
                                        v = NAN;
                                ((float *) ta->data)[k] = ((float *) tb->data)[k] = v;
                        }
                else
                        for (size_t k = 0; k < bytes; k++) {
                                uint8_t v = (uint8_t) rng();
                                if (k % 97 < 5)
                                        v = 255;
                                ((uint8_t *) ta->data)[k] = ((uint8_t *) tb->data)[k] = v;
                        }
        }
}

/* SPDX-License-Identifier: MIT */
/* backend=auto: at session creation, run the model on the OpenCL device and
 * on the CPU from the same inputs, require identical outputs, and keep the
 * faster. A device that is absent, fails, or computes different numbers
 * leaves the session on the CPU, and cvopt_session_backend_reason() says
 * which of those happened (the daemon reports it as telemetry). */
#include <math.h>
#include <stdio.h>
#include <time.h>

#include "cvopt/engine.h"
#include "cvopt/errors.h"
#include "exec/backend.h"
#include "macro.h"

/* Three different inputs catch a device that is right by accident on one
 * (all-zero activations after a ReLU); five timed runs each, median, are
 * enough to tell a 10% difference on a quiet machine without making a
 * daemon's start noticeably slower. */
#define AUTO_CHECK_RUNS 3
#define AUTO_TIMED_RUNS 5

/* Float outputs of float kernels (a float model, or a float island before
 * the output) may differ in the last bits, since a device sums in another
 * order; int8 graphs' float outputs (one multiply of an exact integer) may
 * not. This is the relative tolerance of the former. */
#define AUTO_FLOAT_TOLERANCE 1e-4f

static uint64_t now_nsec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * UINT64_C(1000000000) + (uint64_t) ts.tv_nsec;
}

static bool graph_has_float_compute(const CvoptGraph *g) {
        for (uint32_t k = 0; k < g->n_nodes; k++)
                if (!cvopt_op_is_quantized(g->nodes[k].op))
                        switch (g->nodes[k].op) {
                        case CVOPT_OP_FLATTEN:
                        case CVOPT_OP_RESHAPE:
                        case CVOPT_OP_SQUEEZE:
                        case CVOPT_OP_UNSQUEEZE:
                        case CVOPT_OP_IDENTITY:
                        case CVOPT_OP_DROPOUT:
                                break;
                        default:
                                return true;
                        }
        return false;
}

static void fill_check_inputs(CvoptSession *a, CvoptSession *b, uint32_t seed) {
        uint32_t state = seed * 2654435761u + 1;

        for (uint32_t i = 0; i < cvopt_session_n_inputs(a); i++) {
                CvoptTensor *ta = cvopt_session_input(a, i), *tb = cvopt_session_input(b, i);
                size_t bytes = cvopt_tensor_bytes(ta);

                for (size_t k = 0; k < bytes; k += ta->dtype == CVOPT_DTYPE_FLOAT32 ? sizeof(float) : 1) {
                        state = state * 1664525u + 1013904223u;
                        if (ta->dtype == CVOPT_DTYPE_FLOAT32) {
                                /* Normalized-image range. */
                                float v = (float) (state >> 8) / (float) (1u << 24) * 4.0f - 2.0f;
                                memcpy((uint8_t *) ta->data + k, &v, sizeof(v));
                        } else
                                ((uint8_t *) ta->data)[k] = (uint8_t) (state >> 24);
                }
                memcpy(tb->data, ta->data, bytes);
        }
}

/* Index of the first differing element of output i, or -1. */
static int64_t output_difference(CvoptSession *a, CvoptSession *b, uint32_t i, bool float_tolerance) {
        const CvoptTensor *ta = cvopt_session_output(a, i), *tb = cvopt_session_output(b, i);
        size_t bytes = cvopt_tensor_bytes(ta);

        if (ta->dtype == CVOPT_DTYPE_FLOAT32 && float_tolerance) {
                const float *x = ta->data, *y = tb->data;

                for (size_t k = 0; k < bytes / sizeof(float); k++)
                        if (!(fabsf(x[k] - y[k]) <= AUTO_FLOAT_TOLERANCE * MAX(1.0f, fabsf(x[k]))))
                                return (int64_t) k;
                return -1;
        }
        for (size_t k = 0; k < bytes; k++)
                if (((const uint8_t *) ta->data)[k] != ((const uint8_t *) tb->data)[k])
                        return (int64_t) k;
        return -1;
}

static int median_run_nsec(CvoptSession *s, uint64_t *ret_nsec) {
        uint64_t times[AUTO_TIMED_RUNS];

        for (size_t i = 0; i < AUTO_TIMED_RUNS; i++) {
                uint64_t start = now_nsec();
                int r = cvopt_session_run(s);

                if (r < 0)
                        return r;
                times[i] = now_nsec() - start;
        }
        for (size_t i = 1; i < AUTO_TIMED_RUNS; i++)
                for (size_t j = i; j > 0 && times[j - 1] > times[j]; j--) {
                        uint64_t t = times[j];
                        times[j] = times[j - 1];
                        times[j - 1] = t;
                }
        *ret_nsec = times[AUTO_TIMED_RUNS / 2];
        return 0;
}

/* Compares and times; returns the session to keep (the other is freed)
 * with its reason set. */
static CvoptSession *auto_choose(const CvoptGraph *g, CvoptSession *cpu, CvoptSession *device) {
        const bool tolerance = graph_has_float_compute(g);
        uint64_t cpu_nsec = 0, device_nsec = 0;
        int r;

        for (uint32_t run = 0; run < AUTO_CHECK_RUNS; run++) {
                fill_check_inputs(cpu, device, run);
                r = cvopt_session_run(cpu);
                if (r < 0)
                        goto keep_cpu_error;
                r = cvopt_session_run(device);
                if (r < 0 || cvopt_session_n_fallbacks(device) > 0) {
                        session_set_backend_reason(cpu, "auto: %s failed on the check inputs (%s); using %s",
                                                   cvopt_session_backend_name(device),
                                                   r < 0 ? cvopt_error_detail() : cvopt_session_backend_reason(device),
                                                   cvopt_session_backend_name(cpu));
                        goto keep_cpu;
                }
                for (uint32_t i = 0; i < cvopt_session_n_outputs(cpu); i++) {
                        int64_t at = output_difference(cpu, device, i, tolerance);

                        if (at >= 0) {
                                session_set_backend_reason(cpu,
                                                           "auto: %s output '%s' differs from %s at element %lld "
                                                           "(check input %u); using %s",
                                                           cvopt_session_backend_name(device),
                                                           cvopt_session_output(cpu, i)->name,
                                                           cvopt_session_backend_name(cpu), (long long) at, run,
                                                           cvopt_session_backend_name(cpu));
                                goto keep_cpu;
                        }
                }
        }
        if (median_run_nsec(cpu, &cpu_nsec) < 0)
                goto keep_cpu_error;
        if (median_run_nsec(device, &device_nsec) < 0 || cvopt_session_n_fallbacks(device) > 0) {
                session_set_backend_reason(cpu, "auto: %s failed while timed; using %s",
                                           cvopt_session_backend_name(device), cvopt_session_backend_name(cpu));
                goto keep_cpu;
        }
        CvoptSession *keep = device_nsec < cpu_nsec ? device : cpu;
        session_set_backend_reason(keep, "auto: identical outputs; %s %.3f ms, %s %.3f ms per run: chose %s",
                                   cvopt_session_backend_name(device), (double) device_nsec / 1e6,
                                   cvopt_session_backend_name(cpu), (double) cpu_nsec / 1e6,
                                   cvopt_session_backend_name(keep));
        cvopt_session_free(keep == device ? cpu : device);
        return keep;

keep_cpu_error:
        session_set_backend_reason(cpu, "auto: check run failed: %s", cvopt_error_detail());
keep_cpu:
        cvopt_session_free(device);
        return cpu;
}

int session_new_auto(const CvoptGraph *g, const CvoptSessionOptions *options, CvoptSession **ret_session) {
        const Backend *device = backend_find("opencl"), *cpu = backend_find("cpu");
        CvoptSessionOptions check = options ? *options : (CvoptSessionOptions) { 0 };
        CvoptSession *cpu_session = NULL, *device_session = NULL, *keep;
        char reason[512];
        int r;

        /* The check runs random inputs: an observer must not see them. */
        check.observer = NULL;
        check.observer_userdata = NULL;
        r = session_new_with_backend(g, &check, cpu, &cpu_session);
        if (r < 0)
                return r;
        if (!device) {
                session_set_backend_reason(cpu_session, "auto: built without OpenCL; using %s", cpu->name);
                keep = cpu_session;
        } else {
                r = session_new_with_backend(g, &check, device, &device_session);
                if (r < 0) {
                        cvopt_session_free(cpu_session);
                        return r;
                }
                if (!streq(cvopt_session_backend_name(device_session), device->name)) {
                        /* The device failed at start-up: its reason says why. */
                        session_set_backend_reason(cpu_session, "auto: %s", cvopt_session_backend_reason(device_session));
                        cvopt_session_free(device_session);
                        keep = cpu_session;
                } else
                        keep = auto_choose(g, cpu_session, device_session);
        }
        if (!options || !options->observer) {
                *ret_session = keep;
                return 0;
        }
        /* Rebuild the chosen one with the caller's observer. */
        snprintf(reason, sizeof(reason), "%s", cvopt_session_backend_reason(keep) ?: "");
        const Backend *chosen = backend_find(cvopt_session_backend_name(keep));
        cvopt_session_free(keep);
        r = session_new_with_backend(g, options, chosen, &keep);
        if (r < 0)
                return r;
        session_set_backend_reason(keep, "%s", reason);
        *ret_session = keep;
        return 0;
}

/* SPDX-License-Identifier: MIT */
/* The OpenCL backend's three fallbacks, each driven by fault injection
 * (CVOPT_CL_FAULT) so that they run in CI: start-up (no platform, no
 * matching device, kernels that fail to build), run time (an enqueue, a
 * read-back or a finish that fails: the inference is redone on the CPU,
 * the device is retried after a backoff), and backend=auto (a device that
 * computes a wrong answer is not chosen). Each asserts that the result is
 * still right and that the fallback is reported. Plus the kernel cache:
 * reused when intact, discarded and rebuilt when corrupt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>

#include "opencl-test-util.h"
#include "opencl/cl-cache.h"
#include "opencl/cl-runtime.h"

/* QConv 3x3 8->16 on 12x12, then a 2x2 max pool: two OpenCL nodes, the
 * first one's output kept on the device. */
static CvoptGraph *make_net(void) {
        CvoptGraph *g;
        int8_t *w = malloc(16 * 8 * 9);
        int32_t *b = malloc(16 * sizeof(int32_t));
        int64_t mult[16], shift[16];
        int32_t ix, iw, ib, ic, iy, node;

        assert_int_equal(cvopt_graph_new(&g), 0);
        for (int i = 0; i < 16 * 8 * 9; i++)
                w[i] = (int8_t) ((int) (rng() % 255) - 127);
        for (int o = 0; o < 16; o++) {
                int32_t m, s;

                b[o] = (int32_t) (rng() % 20001) - 10000;
                assert_int_equal(cvopt_quantize_multiplier(0.5 / 72.0, &m, &s), 0);
                mult[o] = m;
                shift[o] = s;
        }
        ix = add_activation(g, "x", 4, (int64_t[]) { 1, 8, 12, 12 }, 0.02f, 7);
        assert_int_equal(cvopt_graph_add_constant(g, "w", CVOPT_DTYPE_INT8, 4, (int64_t[]) { 16, 8, 3, 3 }, w, true, &iw), 0);
        assert_int_equal(cvopt_graph_add_constant(g, "b", CVOPT_DTYPE_INT32, 1, (int64_t[]) { 16 }, b, true, &ib), 0);
        ic = add_activation(g, "c", 0, NULL, 0.05f, 3);
        iy = add_activation(g, "y", 0, NULL, 0.05f, 3);
        assert_int_equal(cvopt_graph_add_node(g, "conv", CVOPT_OP_QCONV, 3, (int32_t[]) { ix, iw, ib }, 1, &ic, &node), 0);
        assert_int_equal(cvopt_node_set_ints(&g->nodes[node], "pads", 4, (int64_t[]) { 1, 1, 1, 1 }), 0);
        assert_int_equal(cvopt_node_set_ints(&g->nodes[node], "multiplier", 16, mult), 0);
        assert_int_equal(cvopt_node_set_ints(&g->nodes[node], "shift", 16, shift), 0);
        assert_int_equal(cvopt_graph_add_node(g, "pool", CVOPT_OP_QMAX_POOL, 1, &ic, 1, &iy, &node), 0);
        assert_int_equal(cvopt_node_set_ints(&g->nodes[node], "kernel_shape", 2, (int64_t[]) { 2, 2 }), 0);
        assert_int_equal(cvopt_node_set_ints(&g->nodes[node], "strides", 2, (int64_t[]) { 2, 2 }), 0);
        assert_int_equal(cvopt_graph_set_inputs(g, 1, &ix), 0);
        assert_int_equal(cvopt_graph_set_outputs(g, 1, &iy), 0);
        assert_int_equal(cvopt_graph_infer_shapes(g), 0);
        return g;
}

/* Runs s and a reference session on new inputs; asserts equal outputs. */
static void run_and_check(CvoptSession *s, CvoptSession *ref) {
        fill_inputs(ref, s);
        assert_int_equal(cvopt_session_run(ref), 0);
        assert_int_equal(cvopt_session_run(s), 0);
        assert_memory_equal(cvopt_session_output(s, 0)->data, cvopt_session_output(ref, 0)->data,
                            cvopt_tensor_bytes(cvopt_session_output(ref, 0)));
}

static void expect_startup_fallback(const char *fault, const char *device, const char *reason_part) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_net();
        _cleanup_(cvopt_session_freep) CvoptSession *s = NULL, *ref = NULL;
        const char *reason;

        if (fault)
                setenv("CVOPT_CL_FAULT", fault, 1);
        assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "opencl", .opencl_device = device },
                                           &s), 0);
        unsetenv("CVOPT_CL_FAULT");
        assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "cpu-ref" }, &ref), 0);
        assert_string_not_equal(cvopt_session_backend_name(s), "opencl");
        reason = cvopt_session_backend_reason(s);
        assert_non_null(reason);
        if (!strstr(reason, reason_part))
                fail_msg("reason '%s' does not mention '%s'", reason, reason_part);
        run_and_check(s, ref);
        assert_false(cvopt_session_degraded(s));
}

static void test_startup_fallback(void **state) {
        (void) state;
        expect_startup_fallback("clGetPlatformIDs", NULL, "no OpenCL platform");
        expect_startup_fallback("clCreateContext", NULL, "clCreateContext");
        expect_startup_fallback("clBuildProgram", NULL, "building the OpenCL kernels");
        expect_startup_fallback(NULL, "no-such-device-anywhere", "no OpenCL device matches");
        expect_startup_fallback(NULL, "999", "OpenCL device 999 requested");
}

/* fault: a CL call failing from its after-th use on; the first run fails
 * in its second node and is redone on the CPU. */
static void expect_runtime_fallback(const char *fault) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_net();
        _cleanup_(cvopt_session_freep) CvoptSession *s = NULL, *ref = NULL;

        setenv("CVOPT_CL_FAULT", fault, 1);
        assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "opencl" }, &s), 0);
        unsetenv("CVOPT_CL_FAULT");
        assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "cpu-ref" }, &ref), 0);
        assert_string_equal(cvopt_session_backend_name(s), "opencl");
        assert_null(cvopt_session_backend_reason(s));

        /* Run 1 fails on the device: still the right answer, counted,
         * reported, and the backend is degraded. */
        run_and_check(s, ref);
        assert_int_equal(cvopt_session_n_fallbacks(s), 1);
        assert_true(cvopt_session_degraded(s));
        assert_non_null(strstr(cvopt_session_backend_reason(s), "degraded"));
        assert_string_equal(cvopt_session_node_backend_name(s, 0), "cpu-ref");
        /* The next 8 runs stay on the CPU without touching the device. */
        for (int i = 0; i < 8; i++) {
                run_and_check(s, ref);
                assert_string_equal(cvopt_session_node_backend_name(s, 1), "cpu-ref");
        }
        assert_false(cvopt_session_degraded(s));
        assert_int_equal(cvopt_session_n_fallbacks(s), 1);
        /* Then the device is retried: the fault was a single one (times-1),
         * so it serves again and the degradation is forgotten. */
        run_and_check(s, ref);
        assert_int_equal(cvopt_session_n_fallbacks(s), 1);
        assert_string_equal(cvopt_session_node_backend_name(s, 0), "opencl");
        assert_string_equal(cvopt_session_node_backend_name(s, 1), "opencl");
        assert_null(cvopt_session_backend_reason(s));
}

static void test_runtime_fallback(void **state) {
        (void) state;
        /* The second kernel launch of the first run (the pool). */
        expect_runtime_fallback("clEnqueueNDRangeKernel:after-1:times-1");
        /* The read-back of the graph output. */
        expect_runtime_fallback("clEnqueueReadBuffer:times-1");
        /* The input upload. */
        expect_runtime_fallback("clEnqueueWriteBuffer:times-1");
}

/* A device that keeps failing is retried after 8, then 16 runs. */
static void test_runtime_backoff(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_net();
        _cleanup_(cvopt_session_freep) CvoptSession *s = NULL, *ref = NULL;
        (void) state;

        setenv("CVOPT_CL_FAULT", "clEnqueueNDRangeKernel", 1);
        assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "opencl" }, &s), 0);
        unsetenv("CVOPT_CL_FAULT");
        assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "cpu-ref" }, &ref), 0);
        for (int run = 0; run < 1 + 8 + 1 + 16 + 1; run++)
                run_and_check(s, ref);
        /* Failures at runs 0, 9 and 26. */
        assert_int_equal(cvopt_session_n_fallbacks(s), 3);
        assert_true(cvopt_session_degraded(s));
}

static void test_auto(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_net();
        _cleanup_(cvopt_session_freep) CvoptSession *s = NULL, *ref = NULL;
        (void) state;

        assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "cpu-ref" }, &ref), 0);
        /* A correct device: either may win on speed, the reason says which. */
        assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "auto" }, &s), 0);
        assert_non_null(strstr(cvopt_session_backend_reason(s), "auto: identical outputs"));
        run_and_check(s, ref);
        s = cvopt_session_free(s);

        /* A device that computes a wrong byte without an error: never chosen. */
        setenv("CVOPT_CL_FAULT", "wrong-output", 1);
        assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "auto" }, &s), 0);
        unsetenv("CVOPT_CL_FAULT");
        assert_string_not_equal(cvopt_session_backend_name(s), "opencl");
        assert_non_null(strstr(cvopt_session_backend_reason(s), "differs"));
        run_and_check(s, ref);
        s = cvopt_session_free(s);

        /* No device at all. */
        setenv("CVOPT_CL_FAULT", "clGetPlatformIDs", 1);
        assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "auto" }, &s), 0);
        unsetenv("CVOPT_CL_FAULT");
        assert_string_not_equal(cvopt_session_backend_name(s), "opencl");
        assert_non_null(strstr(cvopt_session_backend_reason(s), "no OpenCL platform"));
        run_and_check(s, ref);
}

static int count_cache_files(void) {
        DIR *d = opendir(cache_dir);
        struct dirent *e;
        int n = 0;

        assert_non_null(d);
        while ((e = readdir(d)))
                n += e->d_name[0] != '.';
        closedir(d);
        return n;
}

/* Flips one byte of every entry (at offset, from the end when negative),
 * or truncates it. */
static void damage_cache(long offset, bool truncate_file) {
        DIR *d = opendir(cache_dir);
        struct dirent *e;

        assert_non_null(d);
        while ((e = readdir(d))) {
                char path[512];
                int fd;
                uint8_t byte;

                if (e->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "%s/%s", cache_dir, e->d_name);
                fd = open(path, O_RDWR);
                assert_true(fd >= 0);
                if (truncate_file)
                        assert_int_equal(ftruncate(fd, 40), 0);
                else {
                        off_t at = offset >= 0 ? offset : lseek(fd, 0, SEEK_END) + offset;
                        assert_int_equal(pread(fd, &byte, 1, at), 1);
                        byte ^= 0x5a;
                        assert_int_equal(pwrite(fd, &byte, 1, at), 1);
                }
                close(fd);
        }
        closedir(d);
}

static void open_runtime(bool expect_cached, bool expect_discarded) {
        ClRuntime *rt = NULL;

        assert_int_equal(cl_runtime_open(NULL, NULL, &rt), 0);
        assert_int_equal(rt->program_from_cache, expect_cached);
        assert_int_equal(rt->cache_entry_discarded, expect_discarded);
        cl_runtime_free(rt);
}

static void test_program_cache(void **state) {
        (void) state;
        assert_int_equal(count_cache_files(), 0);
        open_runtime(false, false); /* built, then stored */
        assert_int_equal(count_cache_files(), 1);
        open_runtime(true, false); /* loaded */
        damage_cache(-100, false); /* a flipped byte in the binary */
        open_runtime(false, true); /* detected, discarded, rebuilt */
        open_runtime(true, false);
        damage_cache(0, true); /* truncated */
        open_runtime(false, true);
        damage_cache(0, false); /* a wrong magic */
        open_runtime(false, true);
        open_runtime(true, false);
        assert_int_equal(count_cache_files(), 1);
}

/* Every entry in the cache directory loads (intact header and checksum). */
static void assert_cache_entries_valid(void) {
        DIR *d = opendir(cache_dir);
        struct dirent *e;

        assert_non_null(d);
        while ((e = readdir(d))) {
                char kind[16];
                unsigned long long key;
                void *data = NULL;
                size_t size = 0;

                if (e->d_name[0] == '.')
                        continue;
                assert_int_equal(sscanf(e->d_name, "%15[a-z]-%16llx.bin", kind, &key), 2);
                assert_int_equal(cl_cache_load(cache_dir, kind, key, &data, &size), 0);
                free(data);
        }
        closedir(d);
}

/* The pool's tuned work-group size is stored next to the program; both
 * survive corruption by being rebuilt, and results stay right. */
static void test_tuning_cache(void **state) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = make_net();
        _cleanup_(cvopt_session_freep) CvoptSession *ref = NULL;
        (void) state;

        assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "cpu-ref" }, &ref), 0);
        for (int round = 0; round < 3; round++) {
                _cleanup_(cvopt_session_freep) CvoptSession *s = NULL;

                assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = "opencl" }, &s), 0);
                assert_string_equal(cvopt_session_backend_name(s), "opencl");
                run_and_check(s, ref);
                assert_string_equal(cvopt_session_node_backend_name(s, 1), "opencl");
                assert_int_equal(count_cache_files(), 2); /* program + pool work-group size */
                assert_cache_entries_valid();
                if (round == 0)
                        damage_cache(-1, false);
                else
                        damage_cache(0, true);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_startup_fallback, cache_setup, cache_teardown),
                cmocka_unit_test_setup_teardown(test_runtime_fallback, cache_setup, cache_teardown),
                cmocka_unit_test_setup_teardown(test_runtime_backoff, cache_setup, cache_teardown),
                cmocka_unit_test_setup_teardown(test_auto, cache_setup, cache_teardown),
                cmocka_unit_test_setup_teardown(test_program_cache, cache_setup, cache_teardown),
                cmocka_unit_test_setup_teardown(test_tuning_cache, cache_setup, cache_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

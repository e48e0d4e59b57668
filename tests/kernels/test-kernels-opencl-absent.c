/* SPDX-License-Identifier: MIT */
/* A build without OpenCL (-Dopencl=disabled, or no ICD loader): asking
 * for "opencl" or "auto" still gives a working session, on the CPU, and
 * says why (suite 'kernels', built only when OpenCL is not). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "opencl-test-util.h"

static void expect_cpu(const char *backend, const char *reason_part) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *g = NULL;
        _cleanup_(cvopt_session_freep) CvoptSession *s = NULL;
        int32_t x, y, node;

        assert_int_equal(cvopt_graph_new(&g), 0);
        x = add_activation(g, "x", 2, (int64_t[]) { 1, 5 }, 0, -1);
        y = add_activation(g, "y", 0, NULL, 0, -1);
        assert_int_equal(cvopt_graph_add_node(g, "relu", CVOPT_OP_RELU, 1, &x, 1, &y, &node), 0);
        assert_int_equal(cvopt_graph_set_inputs(g, 1, &x), 0);
        assert_int_equal(cvopt_graph_set_outputs(g, 1, &y), 0);
        assert_int_equal(cvopt_graph_infer_shapes(g), 0);

        assert_int_equal(cvopt_session_new(g, &(CvoptSessionOptions) { .backend = backend }, &s), 0);
        assert_string_not_equal(cvopt_session_backend_name(s), "opencl");
        assert_non_null(cvopt_session_backend_reason(s));
        assert_non_null(strstr(cvopt_session_backend_reason(s), reason_part));
        for (int i = 0; i < 5; i++)
                ((float *) cvopt_session_input(s, 0)->data)[i] = (float) i - 2.0f;
        assert_int_equal(cvopt_session_run(s), 0);
        for (int i = 0; i < 5; i++)
                assert_true(((const float *) cvopt_session_output(s, 0)->data)[i] == MAX((float) i - 2.0f, 0.0f));
}

static void test_opencl_absent(void **state) {
        (void) state;
        expect_cpu("opencl", "not built with OpenCL");
        expect_cpu("auto", "built without OpenCL");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_opencl_absent),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/* A whole model through OpenCL and the CPU, image by image on the whole
 * Fashion-MNIST test set: every output (logits and labels) must be
 * identical, byte for byte (suite 'slow'). The model is the .cvm named by
 * CVOPT_TEST_MODEL, default models/fmnist-ref.cvm in the source tree
 * (made by `cvopt optimize` from the reference model); the test is skipped
 * when it is absent. No optimized model is committed: the slow 'optimize'
 * integration test runs this binary on the int8 model it writes.
 * CVOPT_TEST_LIMIT caps the image count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cvopt/cvopt.h"
#include "cvopt/dataset.h"
#include "cvopt/image.h"
#include "cvopt/model.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptSession *, cvopt_session_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptModel *, cvopt_model_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptDataset *, cvopt_dataset_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptImage *, cvopt_image_free);

static void test_model_identical_on_test_set(void **state) {
        const char *path = getenv("CVOPT_TEST_MODEL") ?: SOURCE_ROOT "/models/fmnist-ref.cvm";
        const char *limit_text = getenv("CVOPT_TEST_LIMIT");
        _cleanup_(cvopt_model_freep) CvoptModel *m = NULL;
        _cleanup_(cvopt_dataset_freep) CvoptDataset *ds = NULL;
        _cleanup_(cvopt_session_freep) CvoptSession *cpu = NULL, *cl = NULL;
        size_t count, same_label = 0;
        (void) state;

        if (access(path, R_OK) < 0)
                skip();
        assert_int_equal(cvopt_model_load(path, &m), 0);
        if (cvopt_dataset_open("fashion-mnist:test", &ds) < 0)
                skip();
        assert_int_equal(cvopt_session_new(m->graph, &(CvoptSessionOptions) { .backend = "cpu" }, &cpu), 0);
        assert_int_equal(cvopt_session_new(m->graph, &(CvoptSessionOptions) { .backend = "opencl" }, &cl), 0);
        assert_string_equal(cvopt_session_backend_name(cl), "opencl");
        count = cvopt_dataset_count(ds);
        if (limit_text)
                count = MIN(count, (size_t) strtoul(limit_text, NULL, 10));
        for (size_t i = 0; i < count; i++) {
                _cleanup_(cvopt_image_freep) CvoptImage *img = NULL;
                CvoptTensor *a = cvopt_session_input(cpu, 0), *b = cvopt_session_input(cl, 0);
                int label;

                assert_int_equal(cvopt_dataset_get(ds, i, &img, &label), 0);
                assert_int_equal(cvopt_preprocess_image(&m->input, img, a->data), 0);
                memcpy(b->data, a->data, cvopt_tensor_bytes(a));
                assert_int_equal(cvopt_session_run(cpu), 0);
                assert_int_equal(cvopt_session_run(cl), 0);
                for (uint32_t o = 0; o < cvopt_session_n_outputs(cpu); o++)
                        if (memcmp(cvopt_session_output(cpu, o)->data, cvopt_session_output(cl, o)->data,
                                   cvopt_tensor_bytes(cvopt_session_output(cpu, o))) != 0)
                                fail_msg("image %zu: output %u differs between cpu and opencl", i, o);
                same_label++;
        }
        assert_int_equal(cvopt_session_n_fallbacks(cl), 0);
        print_message("%zu images: identical outputs on %s and %s\n", same_label, cvopt_session_backend_name(cpu),
                      cvopt_session_device_name(cl));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_model_identical_on_test_set),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

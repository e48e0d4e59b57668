/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the ONNX importer: any bytes must either import into
 * a graph that passes validation or fail with a detail; never crash, hang
 * or leak (ASan+UBSan are on). Seeds: corpus/onnx/ (small node-test models
 * from libonnx-testdata). The same bytes are also tried as a TensorProto,
 * the other format the importer reads from files. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cvopt/cvopt.h"
#include "onnx-import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        CvoptModel *m = NULL;
        CvoptTensor *t = NULL;
        int r;

        r = onnx_import_buffer(data, size, "fuzz.onnx", &m);
        if (r >= 0) {
                /* A model we accept must be one the rest of the tool can trust. */
                assert(cvopt_graph_validate(m->graph) == 0);
                cvopt_model_free(m);
        } else {
                assert(m == NULL);
                assert(cvopt_error_detail()[0] != 0);
        }

        r = onnx_tensor_load_buffer(data, size, "fuzz.pb", &t);
        if (r >= 0) {
                assert(t->data && t->ndim <= CVOPT_MAX_DIMS);
                onnx_tensor_free(t);
        }
        return 0;
}

/* SPDX-License-Identifier: MIT */
/* The quantization pipeline on small hand-built graphs: data-movement ops
 * (Slice, Transpose, Reshape...) stay on the uint8 tensors between
 * quantized layers instead of being wrapped in Dequantize/Quantize, and
 * the int8 graph still computes what the float one does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "graph-builder.h"
#include "quant/pipeline.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptModel *, cvopt_model_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(QuantizeReport *, quantize_report_free);

static int feed_random(void *userdata, size_t sample, CvoptTensor *input) {
        int64_t count = cvopt_tensor_count(input);

        (void) userdata;
        rng_state = 1000u + (uint32_t) sample;
        for (int64_t i = 0; i < count; i++)
                ((float *) input->data)[i] = random_uniform(-2, 2);
        return 0;
}

static const CvoptNode *find_op(const CvoptGraph *g, CvoptOp op) {
        for (uint32_t k = 0; k < g->n_nodes; k++)
                if (g->nodes[k].op == op)
                        return &g->nodes[k];
        fail();
        abort();
}

/* x[1,4,6,6] -> conv 4->8 -> Relu -> Slice channels [2, 6) -> conv 4->3 -> y */
static CvoptModel *make_slice_model(void) {
        CvoptModel *m = NULL;
        int64_t x_dims[4] = { 1, 4, 6, 6 }, one[1] = { 1 };
        const int64_t starts[1] = { 2 }, ends[1] = { 6 }, axes[1] = { 1 };
        int32_t x, h, r, s, y, inputs[4];
        CvoptGraph *g;

        assert_int_equal(cvopt_model_new(&m), 0);
        g = m->graph;
        rng_state = 7;
        assert_int_equal(cvopt_graph_add_tensor(g, "x", CVOPT_DTYPE_FLOAT32, 4, x_dims, &x), 0);
        h = add_conv(g, "conv1", x, 4, 8, 3, "h");
        r = add_unary(g, "relu", CVOPT_OP_RELU, h, "r");
        inputs[0] = r;
        inputs[1] = add_constant_values(g, "starts", CVOPT_DTYPE_INT64, 1, one, starts);
        inputs[2] = add_constant_values(g, "ends", CVOPT_DTYPE_INT64, 1, one, ends);
        inputs[3] = add_constant_values(g, "axes", CVOPT_DTYPE_INT64, 1, one, axes);
        s = add_unshaped(g, "s");
        assert_int_equal(cvopt_graph_add_node(g, "slice", CVOPT_OP_SLICE, 4, inputs, 1, &s, NULL), 0);
        y = add_conv(g, "conv2", s, 4, 3, 3, "y");
        assert_int_equal(cvopt_graph_set_inputs(g, 1, &x), 0);
        assert_int_equal(cvopt_graph_set_outputs(g, 1, &y), 0);
        assert_int_equal(cvopt_graph_optimize(g), 0);
        return m;
}

static void test_slice_stays_quantized(void **state) {
        _cleanup_(cvopt_model_freep) CvoptModel *m = make_slice_model(), *q = NULL;
        _cleanup_(quantize_report_freep) QuantizeReport *report = NULL;
        _cleanup_(cvopt_session_freep) CvoptSession *sf = NULL, *sq = NULL;
        PipelineOptions options = { .quantize = { .calibration = CALIBRATION_MINMAX, .weight_bits = 8 } };
        const CvoptNode *slice;
        const CvoptTensor *yf, *yq;
        double max_err = 0, max_abs = 0;
        (void) state;

        assert_int_equal(pipeline_quantize(m, 64, feed_random, NULL, &options, &q, &report), 0);

        /* One Slice, on uint8 data, and no Dequantize feeding it. */
        assert_int_equal(count_op(q->graph, CVOPT_OP_SLICE), 1);
        slice = find_op(q->graph, CVOPT_OP_SLICE);
        assert_int_equal(q->graph->tensors[slice->inputs[0]].dtype, CVOPT_DTYPE_UINT8);
        assert_int_equal(q->graph->tensors[slice->outputs[0]].dtype, CVOPT_DTYPE_UINT8);
        assert_int_equal(count_op(q->graph, CVOPT_OP_QCONV), 2);

        /* The int8 graph agrees with the float one to a few quantization steps. */
        assert_int_equal(cvopt_session_new(m->graph, NULL, &sf), 0);
        assert_int_equal(cvopt_session_new(q->graph, NULL, &sq), 0);
        feed_random(NULL, 5000, cvopt_session_input(sf, 0));
        feed_random(NULL, 5000, cvopt_session_input(sq, 0));
        assert_int_equal(cvopt_session_run(sf), 0);
        assert_int_equal(cvopt_session_run(sq), 0);
        yf = cvopt_session_output(sf, 0);
        yq = cvopt_session_output(sq, 0);
        assert_int_equal(cvopt_tensor_count(yf), cvopt_tensor_count(yq));
        assert_int_equal(yq->dtype, CVOPT_DTYPE_FLOAT32);
        for (int64_t i = 0; i < cvopt_tensor_count(yf); i++) {
                double a = ((const float *) yf->data)[i], b = ((const float *) yq->data)[i];

                max_err = MAX(max_err, fabs(a - b));
                max_abs = MAX(max_abs, fabs(a));
        }
        if (!(max_err <= 0.05 * max_abs))
                fail_msg("int8 output off by %g of a %g range", max_err, max_abs);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_slice_stays_quantized),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}

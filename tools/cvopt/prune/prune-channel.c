/* SPDX-License-Identifier: MIT */
/* Structured pruning: whole output channels of a layer are removed, along
 * with the matching inputs of the one layer that reads them, and that
 * layer's weights are refit by least squares from its input statistics so
 * it reproduces its original output as well as the remaining channels
 * allow. The result is simply a smaller dense model: every kernel gets
 * faster, no sparse support needed.
 *
 * Channels are ranked by the output energy they feed into the consumer,
 * sum_r w_rc^T H_cc w_rc (H the consumer's input second moment): the
 * first-order reconstruction error of removing them. After the refit, the
 * consumer's bias takes the mean the removed inputs used to contribute,
 * and its per-channel output mean and spread are matched to the original
 * model on the calibration data ("statistics repair"). */
#include <math.h>

#include "macro.h"
#include "prune.h"
#include "quant/gptq.h"
#include "quant/quantize.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(GptqStats *, gptq_stats_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptGraph *, cvopt_graph_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptSession *, cvopt_session_free);

int prune_graph_channels(CvoptGraph *g, const PruneSpec *spec, const double *node_amount, size_t n_calibration,
                         CalibrationFeed feed, void *userdata, PruneResult *ret);

/* The node reading tensor t, if exactly one does and t is no graph output. */
static int sole_consumer(const CvoptGraph *g, int32_t t, uint32_t *ret) {
        int found = 0;

        for (uint32_t i = 0; i < g->n_outputs; i++)
                if (g->outputs[i] == t)
                        return -1;
        for (uint32_t k = 0; k < g->n_nodes; k++)
                for (uint32_t s = 0; s < g->nodes[k].n_inputs; s++)
                        if (g->nodes[k].inputs[s] == t) {
                                if (found++)
                                        return -1;
                                *ret = k;
                        }
        return found == 1 ? 0 : -1;
}

/* Follows producer k's output through per-channel ops (pools, element-wise
 * activations) to the weighted layer that reads it. spatial: how many of
 * the consumer's inputs each channel feeds (kernel area for a conv, H*W
 * after a Flatten, 1 for a Gemm reading a Gemm). */
static bool find_consumer(const CvoptGraph *g, uint32_t k, uint32_t *ret_consumer, int64_t *ret_spatial) {
        const CvoptNode *producer = &g->nodes[k];
        int32_t t = producer->outputs[0];
        int64_t spatial = 1;

        for (int hops = 0; hops < 16; hops++) {
                uint32_t c = 0;

                if (sole_consumer(g, t, &c) < 0)
                        return false;
                const CvoptNode *n = &g->nodes[c];
                switch (n->op) {
                case CVOPT_OP_MAX_POOL:
                case CVOPT_OP_AVERAGE_POOL:
                case CVOPT_OP_GLOBAL_AVERAGE_POOL:
                case CVOPT_OP_GLOBAL_MAX_POOL:
                case CVOPT_OP_RELU:
                case CVOPT_OP_CLIP:
                case CVOPT_OP_LEAKY_RELU:
                case CVOPT_OP_IDENTITY:
                case CVOPT_OP_DROPOUT:
                        if (n->inputs[0] != t)
                                return false;
                        t = n->outputs[0];
                        continue;
                case CVOPT_OP_FLATTEN: {
                        const CvoptTensor *x = &g->tensors[t];

                        if (n->inputs[0] != t || cvopt_node_get_int(n, "axis", 1) != 1 || x->ndim != 4)
                                return false;
                        spatial = x->dims[2] * x->dims[3];
                        t = n->outputs[0];
                        continue;
                }
                case CVOPT_OP_CONV: {
                        const CvoptTensor *w = cvopt_node_input(g, n, 1);

                        if (n->inputs[0] != t || cvopt_node_get_int(n, "group", 1) != 1 || !quantize_is_layer(g, n) ||
                            w->ndim != 4 || spatial != 1)
                                return false;
                        *ret_consumer = c;
                        *ret_spatial = w->dims[2] * w->dims[3];
                        return true;
                }
                case CVOPT_OP_GEMM:
                case CVOPT_OP_MATMUL:
                        if (n->inputs[0] != t || !quantize_is_layer(g, n))
                                return false;
                        *ret_consumer = c;
                        *ret_spatial = spatial;
                        return true;
                default:
                        return false;
                }
        }
        return false;
}

/* H[i][j] from the block-diagonal sums (0 across blocks), as a mean. */
static double hessian_at(const GptqHessian *h, int64_t i, int64_t j) {
        int64_t bi = i / h->block, bj = j / h->block, m;

        if (bi != bj)
                return 0;
        m = MIN(h->block, h->depth - bi * h->block);
        i -= bi * h->block;
        j -= bj * h->block;
        if (i > j) {
                int64_t t = i;
                i = j;
                j = t;
        }
        return h->blocks[bi][i * m + j] / (double) h->samples;
}

/* Solves A x = b for symmetric positive definite A (n x n, overwritten by
 * its Cholesky factor on the first call: factored says so). */
static int cholesky_factor(double *a, int64_t n) {
        for (int64_t j = 0; j < n; j++) {
                double d = a[j * n + j];

                for (int64_t k = 0; k < j; k++)
                        d -= a[j * n + k] * a[j * n + k];
                if (!(d > 0))
                        return -EDOM;
                d = sqrt(d);
                a[j * n + j] = d;
                for (int64_t i = j + 1; i < n; i++) {
                        double v = a[i * n + j];

                        for (int64_t k = 0; k < j; k++)
                                v -= a[i * n + k] * a[j * n + k];
                        a[i * n + j] = v / d;
                }
        }
        return 0;
}

static void cholesky_solve(const double *l, int64_t n, double *x) {
        for (int64_t i = 0; i < n; i++) {
                double v = x[i];

                for (int64_t k = 0; k < i; k++)
                        v -= l[i * n + k] * x[k];
                x[i] = v / l[i * n + i];
        }
        for (int64_t i = n - 1; i >= 0; i--) {
                double v = x[i];

                for (int64_t k = i + 1; k < n; k++)
                        v -= l[k * n + i] * x[k];
                x[i] = v / l[i * n + i];
        }
}

/* Least-squares refit of the consumer onto its kept inputs, block by
 * block of H: W'_S = W_B H_BS (H_SS + damping)^-1, and the bias takes the
 * mean of what the removed inputs contributed. w: [rows][depth], kept
 * inputs flagged in keep (n_kept of them); writes w_new [rows][n_kept]. */
static int refit(const GptqHessian *h, const float *w, int64_t rows, const uint8_t *keep, int64_t n_kept, float *w_new,
                 float *bias) {
        const int64_t depth = h->depth;
        int64_t offset = 0;

        for (int64_t b = 0; b * h->block < depth; b++) {
                const int64_t start = b * h->block, size = MIN(h->block, depth - start);
                _cleanup_free_ int64_t *kept = malloc((size_t) size * sizeof(int64_t));
                int64_t n = 0;
                double mean_diag = 0;

                if (!kept)
                        return -ENOMEM;
                for (int64_t i = 0; i < size; i++)
                        if (keep[start + i])
                                kept[n++] = start + i;
                _cleanup_free_ double *a = malloc((size_t) MAX(n * n, 1) * sizeof(double));
                _cleanup_free_ double *x = malloc((size_t) MAX(n, 1) * sizeof(double));
                if (!a || !x)
                        return -ENOMEM;
                for (int64_t i = 0; i < n; i++)
                        for (int64_t j = 0; j < n; j++)
                                a[i * n + j] = hessian_at(h, kept[i], kept[j]);
                for (int64_t i = 0; i < n; i++)
                        mean_diag += a[i * n + i];
                mean_diag = n ? mean_diag / (double) n : 1;
                /* The same 1% dampening as GPTQ: inputs that are (almost)
                 * always zero must not make the system singular. */
                for (int64_t i = 0; i < n; i++)
                        a[i * n + i] += 0.01 * (mean_diag > 0 ? mean_diag : 1);
                if (n && cholesky_factor(a, n) < 0)
                        return -EDOM;
                for (int64_t r = 0; r < rows; r++) {
                        const float *row = w + r * depth;
                        double before = 0, after = 0;

                        for (int64_t i = 0; i < n; i++) {
                                double v = 0;

                                for (int64_t j = start; j < start + size; j++)
                                        v += row[j] * hessian_at(h, kept[i], j);
                                x[i] = v;
                        }
                        if (n)
                                cholesky_solve(a, n, x);
                        for (int64_t j = start; j < start + size; j++)
                                before += row[j] * h->column_sum[j] / (double) h->samples;
                        for (int64_t i = 0; i < n; i++) {
                                after += x[i] * h->column_sum[kept[i]] / (double) h->samples;
                                w_new[r * n_kept + offset + i] = (float) x[i];
                        }
                        bias[r] += (float) (before - after);
                }
                offset += n;
        }
        return 0;
}

/* Replaces a layer's weights (and bias) with [channels][depth] values in
 * the tensor's own layout and new dims. */
static int replace_layer(CvoptGraph *g, uint32_t k, const float *w, int64_t channels, int64_t depth, const float *bias) {
        const CvoptNode *n = &g->nodes[k];
        CvoptTensor *b = cvopt_node_input(g, n, 2);
        int r;

        r = quantize_layer_replace_weights(g, k, w, channels, depth);
        if (r < 0)
                return r;
        if (b && n->op != CVOPT_OP_MATMUL) {
                float *bd = malloc((size_t) channels * sizeof(float));

                if (!bd)
                        return -ENOMEM;
                memcpy(bd, bias, (size_t) channels * sizeof(float));
                if (b->owns_data)
                        free(b->data);
                b->data = bd;
                b->owns_data = true;
                b->ndim = 1;
                b->dims[0] = channels;
        }
        return 0;
}

static int layer_bias(const CvoptGraph *g, uint32_t k, int64_t channels, float **ret) {
        const CvoptNode *n = &g->nodes[k];
        const CvoptTensor *b = n->op == CVOPT_OP_MATMUL ? NULL : cvopt_node_input(g, n, 2);
        float *bias = calloc((size_t) MAX(channels, 1), sizeof(float));

        if (!bias)
                return -ENOMEM;
        if (b) {
                int64_t count = cvopt_tensor_count(b);

                for (int64_t c = 0; c < channels; c++)
                        bias[c] = ((const float *) b->data)[count == 1 ? 0 : c];
        }
        *ret = bias;
        return 0;
}

/* Activation shapes downstream of a changed layer: forget them and infer
 * again from the inputs. */
static int reinfer_shapes(CvoptGraph *g) {
        for (uint32_t i = 0; i < g->n_tensors; i++) {
                bool is_input = false;

                for (uint32_t j = 0; j < g->n_inputs; j++)
                        is_input |= g->inputs[j] == (int32_t) i;
                if (!g->tensors[i].is_constant && !is_input)
                        g->tensors[i].has_shape = false;
        }
        return cvopt_graph_infer_shapes(g);
}

typedef struct ChannelStats {
        uint32_t node;
        uint32_t channels;
        double *sum, *sum_sq;
        uint64_t count;
} ChannelStats;

static void observe_channels(void *userdata, const CvoptGraph *g, uint32_t node_index, const CvoptTensor *const *inputs,
                             const CvoptTensor *const *outputs) {
        ChannelStats *s = userdata;
        const CvoptTensor *y = outputs[0];
        int64_t channels, inner;

        (void) g;
        (void) inputs;
        if (node_index != s->node || y->ndim < 2 || y->dims[1] != s->channels)
                return;
        channels = y->dims[1];
        inner = cvopt_tensor_count(y) / MAX(channels * y->dims[0], 1);
        for (int64_t o = 0; o < y->dims[0]; o++)
                for (int64_t c = 0; c < channels; c++) {
                        const float *p = (const float *) y->data + (o * channels + c) * inner;

                        for (int64_t i = 0; i < inner; i++) {
                                s->sum[c] += p[i];
                                s->sum_sq[c] += (double) p[i] * p[i];
                        }
                }
        s->count += (uint64_t) (y->dims[0] * inner);
}

/* Per-channel mean and standard deviation of node k's output before its
 * fused activation, over the calibration samples. */
static int channel_stats(const CvoptGraph *g, uint32_t k, uint32_t channels, size_t n_samples, CalibrationFeed feed,
                         void *userdata, double *ret_mean, double *ret_std) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *copy = NULL;
        _cleanup_(cvopt_session_freep) CvoptSession *session = NULL;
        _cleanup_free_ double *sum = calloc(channels, sizeof(double)), *sum_sq = calloc(channels, sizeof(double));
        ChannelStats s = { .node = k, .channels = channels, .sum = sum, .sum_sq = sum_sq };
        int r;

        if (!sum || !sum_sq)
                return -ENOMEM;
        r = cvopt_graph_clone(g, &copy);
        if (r < 0)
                return r;
        /* The statistics are of the linear output: without the activation. */
        cvopt_node_remove_attr(&copy->nodes[k], "activation");
        r = cvopt_session_new(copy, &(CvoptSessionOptions) { .observer = observe_channels, .observer_userdata = &s },
                              &session);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_samples; i++) {
                if ((r = feed(userdata, i, cvopt_session_input(session, 0))) < 0 || (r = cvopt_session_run(session)) < 0)
                        return r;
        }
        if (!s.count)
                return -CVOPT_E_DATA;
        for (uint32_t c = 0; c < channels; c++) {
                double mean = sum[c] / (double) s.count;

                ret_mean[c] = mean;
                ret_std[c] = sqrt(MAX(sum_sq[c] / (double) s.count - mean * mean, 0.0));
        }
        return 0;
}

/* Statistics repair: scale and shift each output channel of the consumer
 * so its mean and spread match the unpruned model's, folded into the
 * consumer's weights and bias. */
static int repair_statistics(const CvoptGraph *original, CvoptGraph *g, uint32_t consumer, size_t n_samples,
                             CalibrationFeed feed, void *userdata) {
        _cleanup_free_ float *w = NULL, *bias = NULL;
        int64_t channels, depth;
        int r;

        r = quantize_layer_weights(g, consumer, &w, &channels, &depth);
        if (r < 0)
                return r;
        _cleanup_free_ double *mean0 = calloc((size_t) channels, sizeof(double)), *std0 = calloc((size_t) channels, sizeof(double));
        _cleanup_free_ double *mean1 = calloc((size_t) channels, sizeof(double)), *std1 = calloc((size_t) channels, sizeof(double));
        if (!mean0 || !std0 || !mean1 || !std1)
                return -ENOMEM;
        if ((r = channel_stats(original, consumer, (uint32_t) channels, n_samples, feed, userdata, mean0, std0)) < 0 ||
            (r = channel_stats(g, consumer, (uint32_t) channels, n_samples, feed, userdata, mean1, std1)) < 0 ||
            (r = layer_bias(g, consumer, channels, &bias)) < 0)
                return r;
        for (int64_t c = 0; c < channels; c++) {
                /* A channel whose spread collapsed cannot be rescaled safely:
                 * only its mean is matched. */
                double a = std1[c] > 1e-6 * (std0[c] + 1e-12) ? std0[c] / std1[c] : 1.0;

                a = CLAMP(a, 0.5, 2.0);
                for (int64_t i = 0; i < depth; i++)
                        w[c * depth + i] = (float) (w[c * depth + i] * a);
                bias[c] = (float) (a * bias[c] + mean0[c] - a * mean1[c]);
        }
        return replace_layer(g, consumer, w, channels, depth, bias);
}

static double channel_importance(const GptqHessian *h, const float *w, int64_t rows, int64_t channel, int64_t spatial) {
        const int64_t first = channel * spatial;
        double e = 0;

        for (int64_t r = 0; r < rows; r++) {
                const float *row = w + r * h->depth;

                for (int64_t i = 0; i < spatial; i++)
                        for (int64_t j = 0; j < spatial; j++)
                                e += (double) row[first + i] * hessian_at(h, first + i, first + j) * row[first + j];
        }
        return e;
}

static int prune_one(CvoptGraph *g, const CvoptGraph *original, uint32_t k, double amount, size_t n_calibration,
                     CalibrationFeed feed, void *userdata, PruneLayer *ret) {
        _cleanup_(gptq_stats_freep) GptqStats *stats = NULL;
        _cleanup_free_ float *wp = NULL, *bp = NULL, *wc = NULL, *bc = NULL, *wp_new = NULL, *wc_new = NULL;
        _cleanup_free_ bool *want = calloc(MAX(g->n_nodes, 1u), sizeof(bool));
        _cleanup_free_ double *importance = NULL;
        _cleanup_free_ uint8_t *keep_channel = NULL, *keep_input = NULL;
        int64_t channels, depth, rows, consumer_depth, spatial, kept = 0;
        uint32_t consumer = 0;
        int r;

        if (!want)
                return -ENOMEM;
        if (!find_consumer(g, k, &consumer, &spatial))
                return 0;
        if ((r = quantize_layer_weights(g, k, &wp, &channels, &depth)) < 0 ||
            (r = quantize_layer_weights(g, consumer, &wc, &rows, &consumer_depth)) < 0)
                return r == -CVOPT_E_UNSUPPORTED ? 0 : r;
        if (consumer_depth != channels * spatial)
                return 0;
        want[consumer] = true;
        r = gptq_collect(g, want, n_calibration, feed, userdata, &stats);
        if (r < 0)
                return r;
        const GptqHessian *h = gptq_find(stats, consumer);
        if (!h || h->depth != consumer_depth || h->samples == 0)
                return 0;

        importance = calloc((size_t) channels, sizeof(double));
        keep_channel = malloc((size_t) channels);
        keep_input = calloc((size_t) consumer_depth, 1);
        if (!importance || !keep_channel || !keep_input)
                return -ENOMEM;
        memset(keep_channel, 1, (size_t) channels);
        for (int64_t c = 0; c < channels; c++)
                importance[c] = channel_importance(h, wc, rows, c, spatial);
        int64_t removed = MIN((int64_t) (amount * (double) channels), channels - 1);
        for (int64_t i = 0; i < removed; i++) {
                int64_t worst = -1;

                for (int64_t c = 0; c < channels; c++)
                        if (keep_channel[c] && (worst < 0 || importance[c] < importance[worst]))
                                worst = c;
                keep_channel[worst] = 0;
        }
        for (int64_t c = 0; c < channels; c++)
                if (keep_channel[c]) {
                        memset(keep_input + c * spatial, 1, (size_t) spatial);
                        kept++;
                }

        /* Producer: keep rows. Consumer: refit onto the kept inputs. */
        wp_new = malloc((size_t) (kept * depth) * sizeof(float));
        wc_new = malloc((size_t) MAX(rows * kept * spatial, 1) * sizeof(float));
        if (!wp_new || !wc_new)
                return -ENOMEM;
        if ((r = layer_bias(g, k, channels, &bp)) < 0 || (r = layer_bias(g, consumer, rows, &bc)) < 0)
                return r;
        int64_t j = 0;
        for (int64_t c = 0; c < channels; c++)
                if (keep_channel[c]) {
                        memcpy(wp_new + j * depth, wp + c * depth, (size_t) depth * sizeof(float));
                        bp[j] = bp[c];
                        j++;
                }
        r = refit(h, wc, rows, keep_input, kept * spatial, wc_new, bc);
        if (r < 0)
                return r;
        if ((r = replace_layer(g, k, wp_new, kept, depth, bp)) < 0 ||
            (r = replace_layer(g, consumer, wc_new, rows, kept * spatial, bc)) < 0 || (r = reinfer_shapes(g)) < 0)
                return r;
        r = repair_statistics(original, g, consumer, n_calibration, feed, userdata);
        if (r < 0)
                return r;
        *ret = (PruneLayer) { .node = k, .weights = (uint64_t) (kept * depth), .channels_before = (uint64_t) channels,
                              .channels_after = (uint64_t) kept };
        return 1;
}

int prune_graph_channels(CvoptGraph *g, const PruneSpec *spec, const double *node_amount, size_t n_calibration,
                         CalibrationFeed feed, void *userdata, PruneResult *ret) {
        _cleanup_(cvopt_graph_freep) CvoptGraph *original = NULL;
        PruneResult result = {};
        int32_t first = -1, last = -1;
        int r;

        r = cvopt_graph_clone(g, &original);
        if (r < 0)
                return r;
        result.layers = calloc(MAX(g->n_nodes, 1u), sizeof(PruneLayer));
        if (!result.layers)
                return -ENOMEM;
        for (uint32_t k = 0; k < g->n_nodes; k++)
                if (quantize_is_layer(g, &g->nodes[k])) {
                        if (first < 0)
                                first = (int32_t) k;
                        last = (int32_t) k;
                }
        for (uint32_t k = 0; k < g->n_nodes; k++) {
                double amount = node_amount && node_amount[k] >= 0 ? node_amount[k]
                                : ((int32_t) k == first || (int32_t) k == last) ? 0
                                                                                : spec->amount;

                if (!quantize_is_layer(g, &g->nodes[k]) || amount <= 0)
                        continue;
                r = prune_one(g, original, k, amount, n_calibration, feed, userdata, &result.layers[result.n_layers]);
                if (r < 0) {
                        prune_result_done(&result);
                        return cvopt_error_prefix(r, "channel pruning of node '%s'", g->nodes[k].name);
                }
                if (r > 0)
                        result.n_layers++;
        }
        *ret = result;
        return 0;
}

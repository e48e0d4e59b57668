/* SPDX-License-Identifier: MIT */
#include <math.h>

#include "gptq.h"
#include "macro.h"
#include "quantize.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptSession *, cvopt_session_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(GptqStats *, gptq_stats_free);

void gptq_hessian_done(GptqHessian *h) {
        int64_t n = h->block > 0 ? DIV_ROUND_UP(h->depth, h->block) : 0;

        for (int64_t b = 0; b < n; b++) {
                if (h->blocks)
                        free(h->blocks[b]);
                if (h->inverse)
                        free(h->inverse[b]);
        }
        free(h->blocks);
        free(h->inverse);
        free(h->column_sum);
        h->blocks = NULL;
        h->inverse = NULL;
        h->column_sum = NULL;
}

GptqStats *gptq_stats_free(GptqStats *s) {
        if (!s)
                return NULL;
        for (uint32_t i = 0; i < s->n_layers; i++)
                gptq_hessian_done(&s->layers[i]);
        free(s->layers);
        free(s);
        return NULL;
}

const GptqHessian *gptq_find(const GptqStats *s, uint32_t node) {
        for (uint32_t i = 0; s && i < s->n_layers; i++)
                if (s->layers[i].node == node)
                        return &s->layers[i];
        return NULL;
}

/* Adds x x^T (upper triangle) of one input vector to the blocks. */
static void hessian_add(GptqHessian *h, const float *x) {
        for (int64_t b = 0; b * h->block < h->depth; b++) {
                const int64_t start = b * h->block, size = MIN(h->block, h->depth - start);
                double *m = h->blocks[b];
                const float *v = x + start;

                for (int64_t i = 0; i < size; i++) {
                        const double xi = v[i];
                        double *row = m + i * size;

                        if (xi == 0)
                                continue; /* post-ReLU inputs are often 0: skip the row */
                        for (int64_t j = i; j < size; j++)
                                row[j] += xi * v[j];
                }
        }
        for (int64_t k = 0; k < h->depth; k++)
                h->column_sum[k] += x[k];
        h->samples++;
}

typedef struct Collector {
        GptqStats *stats;
        float *column; /* one im2col column */
        int64_t column_size;
} Collector;

static void observe(void *userdata, const CvoptGraph *g, uint32_t node_index, const CvoptTensor *const *inputs,
                    const CvoptTensor *const *outputs) {
        Collector *c = userdata;
        GptqHessian *h = (GptqHessian *) gptq_find(c->stats, node_index);
        const CvoptNode *n = &g->nodes[node_index];
        const CvoptTensor *x = inputs[0];
        const float *xd = x->data;

        (void) outputs;
        if (!h || x->dtype != CVOPT_DTYPE_FLOAT32)
                return;
        if (n->op != CVOPT_OP_CONV) {
                for (int64_t r = 0; r < x->dims[0]; r++)
                        hessian_add(h, xd + r * h->depth);
                return;
        }
        /* Conv: every output position reads one column of the unrolled
         * input; use the same window arithmetic as the kernels, with the
         * explicit pads the optimized graph carries. */
        const CvoptTensor *w = inputs[1];
        const CvoptAttr *pads = cvopt_node_attr(n, "pads"), *strides = cvopt_node_attr(n, "strides");
        const CvoptAttr *dilations = cvopt_node_attr(n, "dilations");
        const int64_t channels = x->dims[1], height = x->dims[2], width = x->dims[3];
        const int64_t kh = w->dims[2], kw = w->dims[3];
        const int64_t pt = pads && pads->count == 4 ? pads->ints[0] : 0, pl = pads && pads->count == 4 ? pads->ints[1] : 0;
        const int64_t sh = strides && strides->count == 2 ? strides->ints[0] : 1;
        const int64_t sw = strides && strides->count == 2 ? strides->ints[1] : 1;
        const int64_t dh = dilations && dilations->count == 2 ? dilations->ints[0] : 1;
        const int64_t dw = dilations && dilations->count == 2 ? dilations->ints[1] : 1;
        const CvoptTensor *y = outputs[0];
        const int64_t out_h = y->dims[2], out_w = y->dims[3];

        if (h->depth > c->column_size)
                return;
        for (int64_t oy = 0; oy < out_h; oy++)
                for (int64_t ox = 0; ox < out_w; ox++) {
                        for (int64_t ch = 0; ch < channels; ch++)
                                for (int64_t i = 0; i < kh; i++)
                                        for (int64_t j = 0; j < kw; j++) {
                                                int64_t iy = oy * sh - pt + i * dh, ix = ox * sw - pl + j * dw;
                                                bool inside = iy >= 0 && iy < height && ix >= 0 && ix < width;

                                                c->column[(ch * kh + i) * kw + j] =
                                                        inside ? xd[(ch * height + iy) * width + ix] : 0.0f;
                                        }
                        hessian_add(h, c->column);
                }
}

int gptq_collect(const CvoptGraph *g, const bool *want, size_t n_samples, CalibrationFeed feed, void *userdata,
                 GptqStats **ret_stats) {
        _cleanup_(gptq_stats_freep) GptqStats *stats = calloc(1, sizeof(GptqStats));
        _cleanup_(cvopt_session_freep) CvoptSession *session = NULL;
        _cleanup_free_ float *column = NULL;
        int64_t max_column = 0;
        Collector collector;
        int r;

        if (!stats)
                return -ENOMEM;
        stats->layers = calloc(MAX(g->n_nodes, 1u), sizeof(GptqHessian));
        if (!stats->layers)
                return -ENOMEM;
        for (uint32_t k = 0; k < g->n_nodes; k++) {
                const CvoptNode *n = &g->nodes[k];
                const CvoptTensor *w = cvopt_node_input(g, n, 1);
                GptqHessian *h;
                int64_t depth;

                if ((want && !want[k]) || !w || !w->is_constant || w->dtype != CVOPT_DTYPE_FLOAT32)
                        continue;
                if (n->op == CVOPT_OP_CONV && w->ndim == 4 && cvopt_node_get_int(n, "group", 1) == 1)
                        depth = w->dims[1] * w->dims[2] * w->dims[3];
                else if ((n->op == CVOPT_OP_GEMM && cvopt_node_get_int(n, "transA", 0) == 0) || n->op == CVOPT_OP_MATMUL) {
                        if (w->ndim != 2)
                                continue;
                        depth = n->op == CVOPT_OP_GEMM && cvopt_node_get_int(n, "transB", 0) ? w->dims[1] : w->dims[0];
                } else
                        continue;
                h = &stats->layers[stats->n_layers++];
                h->node = k;
                h->depth = depth;
                /* Equal blocks no larger than GPTQ_MAX_BLOCK. */
                h->block = DIV_ROUND_UP(depth, DIV_ROUND_UP(depth, GPTQ_MAX_BLOCK));
                h->blocks = calloc((size_t) DIV_ROUND_UP(depth, h->block), sizeof(double *));
                h->column_sum = calloc((size_t) depth, sizeof(double));
                if (!h->blocks || !h->column_sum)
                        return -ENOMEM;
                for (int64_t b = 0; b * h->block < depth; b++) {
                        int64_t size = MIN(h->block, depth - b * h->block);

                        h->blocks[b] = calloc((size_t) (size * size), sizeof(double));
                        if (!h->blocks[b])
                                return -ENOMEM;
                }
                if (n->op == CVOPT_OP_CONV)
                        max_column = MAX(max_column, depth);
        }
        column = calloc((size_t) MAX(max_column, 1), sizeof(float));
        if (!column)
                return -ENOMEM;
        collector = (Collector) { .stats = stats, .column = column, .column_size = 0 };
        r = cvopt_session_new(g, &(CvoptSessionOptions) { .observer = observe, .observer_userdata = &collector },
                              &session);
        if (r < 0)
                return r;
        for (size_t s = 0; s < n_samples; s++) {
                r = feed(userdata, s, cvopt_session_input(session, 0));
                if (r < 0)
                        return r;
                /* Columns of different conv layers differ in size; the
                 * observer checks against the layer's own depth. */
                collector.column_size = max_column;
                r = cvopt_session_run(session);
                if (r < 0)
                        return r;
        }
        *ret_stats = TAKE_PTR(stats);
        return 0;
}

int gptq_inverse_cholesky_upper(double *h, int64_t n) {
        _cleanup_free_ double *r = calloc((size_t) (n * n), sizeof(double));

        if (!r)
                return -ENOMEM;
        /* H = R R^T with R upper triangular: Cholesky run from the last
         * row/column backwards (the factor of the reversed matrix). */
        for (int64_t j = n - 1; j >= 0; j--) {
                double d = h[j * n + j];

                for (int64_t k = j + 1; k < n; k++)
                        d -= r[j * n + k] * r[j * n + k];
                if (!(d > 0))
                        return -EDOM;
                d = sqrt(d);
                r[j * n + j] = d;
                for (int64_t i = 0; i < j; i++) {
                        double v = h[i * n + j];

                        for (int64_t k = j + 1; k < n; k++)
                                v -= r[i * n + k] * r[j * n + k];
                        r[i * n + j] = v / d;
                }
        }
        /* H^-1 = R^-T R^-1, so U = R^-1 (upper triangular) satisfies
         * H^-1 = U^T U: invert R by back substitution, column by column. */
        memset(h, 0, (size_t) (n * n) * sizeof(double));
        for (int64_t j = 0; j < n; j++) {
                h[j * n + j] = 1.0 / r[j * n + j];
                for (int64_t i = j - 1; i >= 0; i--) {
                        double v = 0;

                        for (int64_t k = i + 1; k <= j; k++)
                                v += r[i * n + k] * h[k * n + j];
                        h[i * n + j] = -v / r[i * n + i];
                }
        }
        return 0;
}

/* Columns rounded together before their errors are pushed to the rest of
 * the block in one pass (GPTQ's "lazy batch" of 128). */
#define GPTQ_BATCH 128

/* GPTQ's dampening: 1% of the mean diagonal keeps H well conditioned. */
#define GPTQ_DAMP 0.01

/* Weights removed in batch [i1, i2) of a block. Unstructured: per row,
 * the `sparsity` fraction with the least w^2 / U_ii^2 (SparseGPT's OBS
 * saliency) within the batch; N:M: per row and group of m columns, the
 * m - n least salient. Fixed masks (mask already filled) are kept. */
static void obs_select(const ObsPrune *prune, const float *w, int64_t depth, int64_t start, int64_t channels,
                       const double *u, int64_t m, int64_t i1, int64_t i2, uint8_t *mask) {
        const int64_t width = i2 - i1;
        double saliency[GPTQ_BATCH];

        for (int64_t c = 0; c < channels; c++) {
                const float *row = w + c * depth + start;
                uint8_t *row_mask = mask + c * depth + start;

                for (int64_t i = i1; i < i2; i++) {
                        double d = u[i * m + i];
                        saliency[i - i1] = (double) row[i] * row[i] / (d * d);
                }
                if (prune->n_keep > 0) {
                        const int64_t group = prune->m_group;

                        for (int64_t g0 = i1; g0 < i2; g0 += group)
                                for (int64_t drop = 0; drop < group - prune->n_keep; drop++) {
                                        int64_t best = -1;

                                        for (int64_t i = g0; i < MIN(g0 + group, i2); i++)
                                                if (!row_mask[i] && (best < 0 || saliency[i - i1] < saliency[best - i1]))
                                                        best = i;
                                        if (best >= 0)
                                                row_mask[best] = 1;
                                }
                        continue;
                }
                /* Unstructured: prune the k least salient of this batch. */
                int64_t k = (int64_t) (prune->sparsity * (double) width + 0.5);
                for (int64_t j = 0; j < k; j++) {
                        int64_t best = -1;

                        for (int64_t i = i1; i < i2; i++)
                                if (!row_mask[i] && (best < 0 || saliency[i - i1] < saliency[best - i1]))
                                        best = i;
                        if (best >= 0)
                                row_mask[best] = 1;
                }
        }
}

/* One diagonal block of H: OBS updates for each column in turn — the
 * column is rounded to the grid (scale non-NULL) and/or zeroed where
 * pruned, and its error is spread over the columns not yet done. */
/* U of block b (see GptqHessian.inverse), computing it on first use. */
static int block_inverse(const GptqHessian *hc, int64_t b, const double **ret_u) {
        GptqHessian *h = (GptqHessian *) hc;
        const int64_t start = b * h->block, m = MIN(h->block, h->depth - start);
        double mean_diag = 0, *u;
        int r;

        if (!h->inverse) {
                h->inverse = calloc((size_t) DIV_ROUND_UP(h->depth, h->block), sizeof(double *));
                if (!h->inverse)
                        return -ENOMEM;
        }
        if (h->inverse[b]) {
                *ret_u = h->inverse[b];
                return 0;
        }
        u = malloc((size_t) (m * m) * sizeof(double));
        if (!u)
                return -ENOMEM;
        for (int64_t i = 0; i < m; i++)
                for (int64_t j = i; j < m; j++)
                        u[i * m + j] = u[j * m + i] = h->blocks[b][i * m + j];
        for (int64_t i = 0; i < m; i++)
                mean_diag += u[i * m + i];
        mean_diag /= (double) m;
        for (int64_t i = 0; i < m; i++) {
                if (u[i * m + i] == 0)
                        u[i * m + i] = 1;
                u[i * m + i] += GPTQ_DAMP * (mean_diag > 0 ? mean_diag : 1);
        }
        r = gptq_inverse_cholesky_upper(u, m);
        if (r < 0) {
                free(u);
                return r;
        }
        h->inverse[b] = u;
        *ret_u = u;
        return 0;
}

/* One diagonal block of H: OBS updates for each column in turn — the
 * column is rounded to the grid (scale non-NULL) and/or zeroed where
 * pruned, and its error is spread over the columns not yet done. */
static int obs_block(const GptqHessian *h, int64_t b, float *w, int64_t channels, const float *scale, int qmax,
                     const ObsPrune *prune, uint8_t *mask) {
        const int64_t start = b * h->block, m = MIN(h->block, h->depth - start);
        _cleanup_free_ double *err = malloc((size_t) (channels * GPTQ_BATCH) * sizeof(double));
        const double *u;
        int r;

        if (!err)
                return -ENOMEM;
        r = block_inverse(h, b, &u);
        if (r < 0)
                return r;
        /* An input that is always 0 carries no information: its weights may
         * be anything, 0 compresses best. */
        for (int64_t i = 0; i < m; i++)
                if (h->blocks[b][i * m + i] == 0)
                        for (int64_t c = 0; c < channels; c++)
                                w[c * h->depth + start + i] = 0;

        for (int64_t i1 = 0; i1 < m; i1 += GPTQ_BATCH) {
                const int64_t i2 = MIN(i1 + GPTQ_BATCH, m);

                if (prune && prune->adaptive)
                        obs_select(prune, w, h->depth, start, channels, u, m, i1, i2, mask);
                for (int64_t i = i1; i < i2; i++) {
                        const double d = u[i * m + i];

                        for (int64_t c = 0; c < channels; c++) {
                                float *row = w + c * h->depth + start;
                                const double v = row[i];
                                double q = scale ? (double) CLAMP(lround(v / scale[c]), -qmax, qmax) * scale[c] : v;

                                if (mask && mask[c * h->depth + start + i])
                                        q = 0;
                                const double e = (v - q) / d;

                                row[i] = (float) q;
                                err[c * GPTQ_BATCH + (i - i1)] = e;
                                for (int64_t j = i + 1; j < i2; j++)
                                        row[j] -= (float) (e * u[i * m + j]);
                        }
                }
                for (int64_t c = 0; c < channels; c++) {
                        float *row = w + c * h->depth + start;

                        for (int64_t i = i1; i < i2; i++) {
                                const double e = err[c * GPTQ_BATCH + (i - i1)];
                                const double *urow = u + i * m;

                                if (e == 0)
                                        continue;
                                for (int64_t j = i2; j < m; j++)
                                        row[j] -= (float) (e * urow[j]);
                        }
                }
        }
        return 0;
}

int gptq_quantize(const GptqHessian *h, float *w, int64_t channels, unsigned bits) {
        return obs_solve(h, w, channels, bits, NULL, NULL);
}

int obs_solve(const GptqHessian *h, float *w, int64_t channels, unsigned bits, const ObsPrune *prune, uint8_t *mask) {
        _cleanup_free_ int8_t *q = NULL;
        _cleanup_free_ float *scale = NULL;
        const int qmax = bits ? (1 << (bits - 1)) - 1 : 0;
        int r;

        if (h->samples == 0)
                return cvopt_error_set(-CVOPT_E_DATA, "GPTQ: no calibration inputs reached the layer");
        if (prune && prune->adaptive && !mask)
                return -EINVAL;
        if (bits) {
                q = malloc((size_t) (channels * h->depth));
                scale = malloc((size_t) channels * sizeof(float));
                if (!q || !scale)
                        return -ENOMEM;
                /* The grid is fixed by the original weights' ranges, as in GPTQ. */
                quantize_weights_per_channel(w, channels, h->depth, bits, q, scale);
        }
        for (int64_t b = 0; b * h->block < h->depth; b++) {
                r = obs_block(h, b, w, channels, scale, qmax, prune, mask);
                if (r < 0)
                        return cvopt_error_set(r, "GPTQ: layer input statistics are degenerate");
        }
        return 0;
}

/* SPDX-License-Identifier: MIT */
#include <float.h>
#include <math.h>

#include "calibrate.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CvoptSession *, cvopt_session_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(CalibrationStats *, calibration_stats_free);

typedef struct Collector {
        CalibrationStats *stats;
        unsigned pass;
} Collector;

static void stats_add(TensorStats *s, const CvoptTensor *t, unsigned pass) {
        const float *v = t->data;
        int64_t count = cvopt_tensor_count(t);

        if (t->dtype != CVOPT_DTYPE_FLOAT32 || !v || count <= 0)
                return;
        if (pass == 1) {
                float lo = s->seen ? s->min : FLT_MAX, hi = s->seen ? s->max : -FLT_MAX;

                for (int64_t i = 0; i < count; i++) {
                        if (!isfinite(v[i]))
                                continue;
                        lo = MIN(lo, v[i]);
                        hi = MAX(hi, v[i]);
                }
                s->min = lo;
                s->max = hi;
                s->seen = true;
                s->count += (uint64_t) count;
                /* Channel means over dim 1 (NCHW or [N, features]). */
                if (t->ndim >= 2 && s->channel_sum && s->channels == t->dims[1]) {
                        int64_t outer = t->dims[0], channels = t->dims[1], inner = count / MAX(outer * channels, 1);

                        for (int64_t o = 0; o < outer; o++)
                                for (int64_t c = 0; c < channels; c++) {
                                        const float *p = v + (o * channels + c) * inner;
                                        double sum = 0;

                                        for (int64_t i = 0; i < inner; i++)
                                                sum += p[i];
                                        s->channel_sum[c] += sum;
                                }
                        s->channel_count += (uint64_t) (outer * inner);
                }
                return;
        }
        if (!s->histogram || !(s->max > s->min))
                return;
        const double scale = CALIBRATION_BINS / ((double) s->max - s->min);
        for (int64_t i = 0; i < count; i++) {
                if (!isfinite(v[i]))
                        continue;
                int64_t bin = (int64_t) (((double) v[i] - s->min) * scale);
                s->histogram[CLAMP(bin, 0, CALIBRATION_BINS - 1)]++;
        }
}

static void observe(void *userdata, const CvoptGraph *g, uint32_t node_index, const CvoptTensor *const *inputs,
                    const CvoptTensor *const *outputs) {
        Collector *c = userdata;
        const CvoptNode *n = &g->nodes[node_index];

        (void) inputs;
        for (uint32_t i = 0; i < n->n_outputs; i++)
                if (n->outputs[i] >= 0)
                        stats_add(&c->stats->tensors[n->outputs[i]], outputs[i], c->pass);
}

CalibrationStats *calibration_stats_free(CalibrationStats *s) {
        if (!s)
                return NULL;
        for (uint32_t i = 0; i < s->n_tensors; i++) {
                free(s->tensors[i].histogram);
                free(s->tensors[i].channel_sum);
        }
        free(s->tensors);
        free(s);
        return NULL;
}

int calibration_collect(const CvoptGraph *g, size_t n_samples, CalibrationFeed feed, CalibrationProgress progress,
                        void *userdata, CalibrationStats **ret_stats) {
        _cleanup_(calibration_stats_freep) CalibrationStats *stats = NULL;
        _cleanup_(cvopt_session_freep) CvoptSession *session = NULL;
        Collector collector = {};
        int r;

        if (n_samples == 0)
                return cvopt_error_set(-CVOPT_E_DATA, "calibration set is empty");
        if (g->n_inputs != 1)
                return cvopt_error_set(-CVOPT_E_UNSUPPORTED, "calibration needs a model with one input (this one has %u)",
                                       g->n_inputs);
        stats = calloc(1, sizeof(*stats));
        if (!stats)
                return -ENOMEM;
        stats->tensors = calloc(MAX(g->n_tensors, 1u), sizeof(TensorStats));
        if (!stats->tensors)
                return -ENOMEM;
        stats->n_tensors = g->n_tensors;
        stats->n_samples = n_samples;
        for (uint32_t i = 0; i < g->n_tensors; i++) {
                const CvoptTensor *t = &g->tensors[i];
                TensorStats *s = &stats->tensors[i];

                if (t->is_constant || t->dtype != CVOPT_DTYPE_FLOAT32)
                        continue;
                if (t->ndim >= 2 && t->dims[1] > 0 && t->dims[1] <= (1 << 20)) {
                        s->channels = (uint32_t) t->dims[1];
                        s->channel_sum = calloc(s->channels, sizeof(double));
                        if (!s->channel_sum)
                                return -ENOMEM;
                }
        }

        collector.stats = stats;
        r = cvopt_session_new(g, &(CvoptSessionOptions) { .observer = observe, .observer_userdata = &collector },
                              &session);
        if (r < 0)
                return r;
        for (collector.pass = 1; collector.pass <= 2; collector.pass++) {
                if (collector.pass == 2)
                        for (uint32_t i = 0; i < stats->n_tensors; i++) {
                                TensorStats *s = &stats->tensors[i];

                                if (!s->seen)
                                        continue;
                                s->histogram = calloc(CALIBRATION_BINS, sizeof(uint64_t));
                                if (!s->histogram)
                                        return -ENOMEM;
                        }
                for (size_t k = 0; k < n_samples; k++) {
                        CvoptTensor *input = cvopt_session_input(session, 0);

                        r = feed(userdata, k, input);
                        if (r < 0)
                                return r;
                        stats_add(&stats->tensors[g->inputs[0]], input, collector.pass);
                        r = cvopt_session_run(session);
                        if (r < 0)
                                return cvopt_error_prefix(r, "calibration sample %zu", k);
                        if (progress)
                                progress(userdata, collector.pass, k + 1, n_samples);
                }
        }
        *ret_stats = TAKE_PTR(stats);
        return 0;
}

static const char *const method_names[_CALIBRATION_MAX] = {
        [CALIBRATION_MINMAX] = "minmax",   [CALIBRATION_PERCENTILE] = "percentile",
        [CALIBRATION_MSE] = "mse",         [CALIBRATION_ENTROPY] = "entropy",
        [CALIBRATION_AUTO] = "auto",
};

const char *calibration_method_name(CalibrationMethod m) {
        return (unsigned) m < _CALIBRATION_MAX ? method_names[m] : "invalid";
}

int calibration_method_from_name(const char *name) {
        for (int i = 0; i < _CALIBRATION_MAX; i++)
                if (streq(method_names[i], name))
                        return i;
        return -EINVAL;
}

void calibration_range_to_quant(float lo, float hi, float *ret_scale, int32_t *ret_zero_point) {
        float scale;

        lo = MIN(lo, 0.0f);
        hi = MAX(hi, 0.0f);
        scale = (hi - lo) / 255.0f;
        /* A tensor that is always 0 still needs a valid scale. */
        if (!(scale > 1e-12f)) {
                *ret_scale = 1.0f / 255.0f;
                *ret_zero_point = 0;
                return;
        }
        *ret_scale = scale;
        *ret_zero_point = (int32_t) CLAMP(lroundf(-lo / scale), 0, 255);
}

static double bin_center(const TensorStats *s, int bin) {
        return s->min + ((double) bin + 0.5) * ((double) s->max - s->min) / CALIBRATION_BINS;
}

double calibration_range_mse(const TensorStats *s, float lo, float hi) {
        float scale;
        int32_t zero_point;
        double error = 0;
        uint64_t total = 0;

        if (!s->histogram)
                return 0;
        calibration_range_to_quant(lo, hi, &scale, &zero_point);
        for (int b = 0; b < CALIBRATION_BINS; b++) {
                if (!s->histogram[b])
                        continue;
                double x = bin_center(s, b);
                double q = CLAMP(nearbyint(x / scale) + zero_point, 0, 255);
                double d = (q - zero_point) * scale - x;
                error += d * d * (double) s->histogram[b];
                total += s->histogram[b];
        }
        return total ? error / (double) total : 0;
}

/* Value below which fraction f of the samples lie. */
static float histogram_quantile(const TensorStats *s, double f) {
        uint64_t total = 0, seen = 0;

        for (int b = 0; b < CALIBRATION_BINS; b++)
                total += s->histogram[b];
        for (int b = 0; b < CALIBRATION_BINS; b++) {
                seen += s->histogram[b];
                if ((double) seen >= f * (double) total)
                        return (float) (s->min + (b + 1.0) * ((double) s->max - s->min) / CALIBRATION_BINS);
        }
        return s->max;
}

/* 99.99%: clips roughly one value in 10^4, the common default (PyTorch's
 * HistogramObserver and TensorRT's percentile calibrators use 99.9–99.999). */
#define PERCENTILE 0.9999

static void range_percentile(const TensorStats *s, float *lo, float *hi) {
        *lo = s->min >= 0 ? s->min : histogram_quantile(s, 1.0 - PERCENTILE);
        *hi = s->max <= 0 ? s->max : histogram_quantile(s, PERCENTILE);
}

/* Shrinks the range towards 0 by factors 1.0 .. 0.2 and keeps the best. */
static void range_mse(const TensorStats *s, float *lo, float *hi) {
        double best = INFINITY;

        for (int step = 0; step <= 80; step++) {
                float f = 1.0f - 0.01f * (float) step;
                float l = s->min * f, h = s->max * f;
                double e = calibration_range_mse(s, l, h);

                if (e < best) {
                        best = e;
                        *lo = l;
                        *hi = h;
                }
        }
}

/* KL-divergence calibration (as TensorRT's entropy calibrator), over the
 * upper end of the range: for each candidate threshold bin i, P is the
 * histogram up to i with the clipped tail folded into its last bin, Q is P
 * squeezed into the 255 levels a uint8 can take over that span and
 * expanded back; the threshold with the least KL(P||Q) wins. The lower end
 * stays at the minimum (0 after a ReLU). */
static void range_entropy(const TensorStats *s, float *lo, float *hi) {
        const int levels = 255;
        double best = INFINITY;
        int best_i = CALIBRATION_BINS;
        _cleanup_free_ double *p = malloc(CALIBRATION_BINS * sizeof(double));
        _cleanup_free_ double *q = malloc(CALIBRATION_BINS * sizeof(double));

        *lo = s->min;
        *hi = s->max;
        if (!p || !q)
                return;
        for (int i = levels; i <= CALIBRATION_BINS; i += 8) {
                double total = 0, kl = 0;

                for (int b = 0; b < i; b++)
                        p[b] = (double) s->histogram[b];
                for (int b = i; b < CALIBRATION_BINS; b++)
                        p[i - 1] += (double) s->histogram[b];
                for (int b = 0; b < i; b++)
                        total += p[b];
                if (total <= 0)
                        continue;
                /* Q: merge bins into levels, spread each level evenly over
                 * its non-empty bins. */
                for (int l = 0; l < levels; l++) {
                        int start = l * i / levels, end = (l + 1) * i / levels;
                        double sum = 0;
                        int nonzero = 0;

                        for (int b = start; b < end; b++) {
                                sum += p[b];
                                nonzero += p[b] > 0;
                        }
                        for (int b = start; b < end; b++)
                                q[b] = p[b] > 0 ? sum / nonzero : 0;
                }
                for (int b = 0; b < i; b++) {
                        if (p[b] <= 0)
                                continue;
                        double pp = p[b] / total, qq = q[b] / total;
                        kl += qq > 0 ? pp * log(pp / qq) : pp * 30.0; /* an empty Q bin under mass: heavy penalty */
                }
                if (kl < best) {
                        best = kl;
                        best_i = i;
                }
        }
        *hi = (float) (s->min + (double) best_i * ((double) s->max - s->min) / CALIBRATION_BINS);
        if (s->max <= 0)
                *hi = s->max;
}

int calibration_choose_range(const TensorStats *s, CalibrationMethod m, float *ret_lo, float *ret_hi) {
        float lo = s->min, hi = s->max;

        if (!s->seen)
                return cvopt_error_set(-CVOPT_E_DATA, "no calibration data reached this tensor");
        if (!s->histogram || !(s->max > s->min))
                m = CALIBRATION_MINMAX;
        switch (m) {
        case CALIBRATION_MINMAX:
                break;
        case CALIBRATION_PERCENTILE:
                range_percentile(s, &lo, &hi);
                break;
        case CALIBRATION_MSE:
                range_mse(s, &lo, &hi);
                break;
        case CALIBRATION_ENTROPY:
                range_entropy(s, &lo, &hi);
                break;
        case CALIBRATION_AUTO: {
                double best = INFINITY;

                for (CalibrationMethod k = CALIBRATION_MINMAX; k < CALIBRATION_AUTO; k++) {
                        float l, h;
                        double e;

                        calibration_choose_range(s, k, &l, &h);
                        e = calibration_range_mse(s, l, h);
                        if (e < best) {
                                best = e;
                                lo = l;
                                hi = h;
                        }
                }
                break;
        }
        default:
                return -EINVAL;
        }
        *ret_lo = MIN(lo, 0.0f);
        *ret_hi = MAX(hi, 0.0f);
        return 0;
}

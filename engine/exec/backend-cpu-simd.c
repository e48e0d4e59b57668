/* SPDX-License-Identifier: MIT */
/* The SIMD CPU backend: QConv (group 1) and QGemm on AVX2 or AVX-512 VNNI
 * kernels, with weights packed once per session. Everything else — and
 * everything on a CPU without AVX2, where this backend declines every op —
 * runs on the reference backend, which the executor does by itself. */
#include "cpu/q-ops.h"
#include "cpu/q-simd.h"
#include "cvopt/errors.h"
#include "exec/backend.h"
#include "macro.h"

typedef struct SimdNode {
        bool prepared;
        QPackedWeights weights;
        QWindow window;
        QRequantParams params;
        int64_t pixels, pixels_padded;
        void *cols;
        uint8_t *unrolled; /* im2col scratch: w->step rows of pixels_padded (+16) */
        uint8_t *padded;   /* the input with its pads, plane by plane (+16) */
        int64_t padded_h, padded_w;
        int32_t *acc;
        uint8_t *row; /* QGemm: one input row padded to row_length */
} SimdNode;

typedef struct SimdContext {
        QIsa isa;
        uint32_t n_nodes;
        SimdNode *nodes;
} SimdContext;

static int simd_init(const CvoptGraph *g, const CvoptSessionOptions *options, void **ret_ctx) {
        SimdContext *c;
        QIsa isa = q_isa_detect();

        (void) options;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->isa = isa;
        c->n_nodes = g->n_nodes;
        c->nodes = calloc(MAX(g->n_nodes, 1u), sizeof(SimdNode));
        if (!c->nodes) {
                free(c);
                return -ENOMEM;
        }
        *ret_ctx = c;
        return 0;
}

static void simd_done(void *ctx) {
        SimdContext *c = ctx;

        if (!c)
                return;
        for (uint32_t k = 0; k < c->n_nodes; k++) {
                q_packed_weights_done(&c->nodes[k].weights);
                free(c->nodes[k].cols);
                free(c->nodes[k].unrolled);
                free(c->nodes[k].padded);
                free(c->nodes[k].acc);
                free(c->nodes[k].row);
        }
        free(c->nodes);
        free(c);
}

/* The 2x2 stride-2 max pool without padding on even sizes: the one shape
 * the fast kernel covers (every other pool runs on the reference). */
static bool is_maxpool2(const CvoptNode *n, const CvoptTensor *x) {
        static const int64_t two[2] = { 2, 2 }, one[2] = { 1, 1 }, zero[4] = { 0, 0, 0, 0 };
        const CvoptAttr *k = cvopt_node_attr(n, "kernel_shape"), *s = cvopt_node_attr(n, "strides");
        const CvoptAttr *p = cvopt_node_attr(n, "pads"), *d = cvopt_node_attr(n, "dilations");

        return x && x->dtype == CVOPT_DTYPE_UINT8 && x->ndim == 4 && x->dims[2] % 2 == 0 && x->dims[3] % 2 == 0 && k &&
               k->count == 2 && !memcmp(k->ints, two, sizeof(two)) && s && s->count == 2 && !memcmp(s->ints, two, sizeof(two)) &&
               (!p || (p->count == 4 && !memcmp(p->ints, zero, sizeof(zero)))) &&
               (!d || (d->count == 2 && !memcmp(d->ints, one, sizeof(one))));
}

static bool simd_supports_op(void *ctx, const CvoptGraph *g, const CvoptNode *n) {
        const CvoptTensor *x = cvopt_node_input(g, n, 0), *w = cvopt_node_input(g, n, 1);

        if (((SimdContext *) ctx)->isa == Q_ISA_NONE)
                return false;
        if (n->op == CVOPT_OP_QMAX_POOL)
                return is_maxpool2(n, x);
        if (!x || !w || !w->is_constant || w->dtype != CVOPT_DTYPE_INT8 || x->dtype != CVOPT_DTYPE_UINT8)
                return false;
        if (n->op == CVOPT_OP_QCONV)
                return x->ndim == 4 && w->ndim == 4 && cvopt_node_get_int(n, "group", 1) == 1 && x->dims[0] == 1;
        return n->op == CVOPT_OP_QGEMM && x->ndim == 2 && w->ndim == 2;
}

static int simd_prepare_node(void *ctx, const CvoptGraph *g, const CvoptNode *n, uint32_t node_index) {
        SimdContext *c = ctx;
        SimdNode *s = &c->nodes[node_index];

        if (n->op == CVOPT_OP_QMAX_POOL) {
                s->prepared = true;
                return 0;
        }
        const CvoptTensor *x = cvopt_node_input(g, n, 0), *w = cvopt_node_input(g, n, 1), *y = cvopt_node_output(g, n, 0);
        const int64_t channels = w->dims[0], depth = cvopt_tensor_count(w) / MAX(channels, 1);
        int r;

        r = q_requant_params(n, (uint32_t) channels, y->dtype == CVOPT_DTYPE_FLOAT32, &s->params);
        if (r < 0)
                return r;
        r = q_pack_weights(c->isa, w->data, channels, depth, &s->weights);
        if (r < 0)
                return r;
        if (n->op == CVOPT_OP_QCONV) {
                r = q_window_init(n, x->dims[2], x->dims[3], w->dims[2], w->dims[3], false, &s->window);
                if (r < 0)
                        return r;
                s->pixels = s->window.out_h * s->window.out_w;
                s->pixels_padded = DIV_ROUND_UP(s->pixels, Q_PIXEL_BLOCK) * Q_PIXEL_BLOCK;
                /* Padding pixels of the scratch rows are never written and
                 * stay 0; rows past depth meet zero weights. */
                s->cols = calloc(1, q_cols_bytes(&s->weights, s->pixels));
                /* Rows are copied 16 bytes at a time: the last may run 15
                 * bytes over, into slack. */
                s->unrolled = calloc((size_t) (s->weights.step * s->pixels_padded + 16), 1);
                s->padded_h = x->dims[2] + s->window.pad_top + s->window.pad_bottom;
                s->padded_w = x->dims[3] + s->window.pad_left + s->window.pad_right;
                s->padded = calloc((size_t) (x->dims[1] * s->padded_h * s->padded_w + 16), 1);
                s->acc = malloc((size_t) (channels * s->pixels_padded) * sizeof(int32_t));
        } else {
                s->row = calloc((size_t) s->weights.row_length, 1);
                s->acc = malloc((size_t) channels * sizeof(int32_t));
        }
        if ((n->op == CVOPT_OP_QCONV && (!s->cols || !s->unrolled || !s->padded)) || !s->acc || (n->op == CVOPT_OP_QGEMM && !s->row))
                return -ENOMEM;
        s->prepared = true;
        return 0;
}

/* Copies n bytes in 16-byte moves: may write up to 15 bytes past dst + n
 * and read as far past src + n (both buffers have that slack). */
static inline void copy16(uint8_t *dst, const uint8_t *src, int64_t n) {
        for (int64_t i = 0; i < n; i += 16)
                memcpy(dst + i, src + i, 16);
}

/* One k = (kh, kw) of one padded input plane unrolled: the value each
 * output pixel sees there. Rows are written in order, so each one's
 * overrun is overwritten by the next. */
static void unroll_row(const SimdNode *s, const uint8_t *plane, int64_t kh, int64_t kw, uint8_t *row) {
        const QWindow *win = &s->window;

        for (int64_t oy = 0; oy < win->out_h; oy++) {
                const uint8_t *src = plane + (oy * win->stride_h + kh * win->dilation_h) * s->padded_w +
                                     kw * win->dilation_w;
                uint8_t *r = row + oy * win->out_w;

                if (win->stride_w == 1)
                        copy16(r, src, win->out_w);
                else
                        for (int64_t ox = 0; ox < win->out_w; ox++)
                                r[ox] = src[ox * win->stride_w];
        }
}

/* Unrolls the input into the packed column layout of the kernels, one step
 * (w->step values of k) at a time, from a copy of the input with its pads
 * in place, so no pixel needs a bounds check. */
static void simd_im2col(const SimdNode *s, const CvoptTensor *x, uint8_t pad) {
        const QWindow *win = &s->window;
        const int64_t in_c = x->dims[1], in_h = x->dims[2], in_w = x->dims[3];
        const int64_t plane = s->padded_h * s->padded_w, depth = s->weights.depth;
        const int step = s->weights.step;
        const uint8_t *xd = x->data;
        const uint8_t *rows[4];

        memset(s->padded, pad, (size_t) (in_c * plane));
        for (int64_t ch = 0; ch < in_c; ch++)
                for (int64_t y = 0; y < in_h; y++)
                        memcpy(s->padded + ch * plane + (y + win->pad_top) * s->padded_w + win->pad_left,
                               xd + (ch * in_h + y) * in_w, (size_t) in_w);
        for (int j = 0; j < step; j++)
                rows[j] = s->unrolled + j * s->pixels_padded;
        /* k = (ch * kernel_h + kh) * kernel_w + kw, counted up without
         * divisions (three 64-bit divisions per k were a tenth of the time). */
        int64_t k = 0, ch = 0, kh = 0, kw = 0;
        for (int64_t st = 0; st < s->weights.steps; st++) {
                /* Past depth the weights are 0: those rows' content is moot. */
                for (int j = 0; j < step && k < depth; j++, k++) {
                        unroll_row(s, s->padded + ch * plane, kh, kw, s->unrolled + j * s->pixels_padded);
                        if (++kw == win->kernel_w) {
                                kw = 0;
                                if (++kh == win->kernel_h) {
                                        kh = 0;
                                        ch++;
                                }
                        }
                }
                q_cols_pack_step(&s->weights, rows, s->pixels_padded, st, s->cols);
        }
}

static int simd_run_node(void *ctx, const CvoptGraph *g, const CvoptNode *n, uint32_t node_index,
                         const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        SimdContext *c = ctx;
        SimdNode *s = &c->nodes[node_index];
        const CvoptTensor *x = inputs[0], *b = n->n_inputs > 2 ? inputs[2] : NULL;
        const int32_t *bias = b ? b->data : NULL;
        CvoptTensor *y = outputs[0];

        (void) g;
        if (!s->prepared)
                return -CVOPT_E_BACKEND;
        if (n->op == CVOPT_OP_QMAX_POOL) {
                const int64_t planes = x->dims[0] * x->dims[1], h = x->dims[2], w = x->dims[3];

                for (int64_t p = 0; p < planes; p++)
                        q_maxpool2(c->isa, (const uint8_t *) x->data + p * h * w, h, w, (uint8_t *) y->data + p * (h / 2) * (w / 2));
                return 0;
        }
        if (n->op == CVOPT_OP_QCONV) {
                const int64_t channels = s->weights.channels;

                simd_im2col(s, x, (uint8_t) q_zero_point(x));
                q_gemm(&s->weights, s->cols, s->pixels_padded, s->acc);
                for (int64_t oc = 0; oc < channels; oc++) {
                        const int32_t *row = s->acc + oc * s->pixels_padded;
                        const int32_t start = bias ? bias[oc] : 0;
                        const QRequantParams *q = &s->params;

                        if (!q->out_scale && !q->lut) {
                                uint32_t k = q->count == 1 ? 0 : (uint32_t) oc;

                                q_requant_row(c->isa, row, s->pixels, start, (int32_t) q->multiplier[k], (int32_t) q->shift[k],
                                              q_zero_point(y), q->out_min, q->out_max,
                                              (uint8_t *) y->data + oc * s->pixels);
                                continue;
                        }
                        for (int64_t p = 0; p < s->pixels; p++)
                                q_store(q, y, (uint32_t) oc, start + row[p], y->data, (size_t) (oc * s->pixels + p));
                }
                return 0;
        }
        const int64_t channels = s->weights.channels;
        const int64_t rows = x->dims[0], depth = x->dims[1];
        for (int64_t i = 0; i < rows; i++) {
                memcpy(s->row, (const uint8_t *) x->data + i * depth, (size_t) depth);
                q_gemv(&s->weights, s->row, s->acc);
                for (int64_t j = 0; j < channels; j++)
                        q_store(&s->params, y, (uint32_t) j, (bias ? bias[j] : 0) + s->acc[j], y->data,
                                (size_t) (i * channels + j));
        }
        return 0;
}

const Backend backend_cpu_simd = {
        .name = "cpu-simd",
        .init = simd_init,
        .done = simd_done,
        .supports_op = simd_supports_op,
        .prepare_node = simd_prepare_node,
        .run_node = simd_run_node,
};

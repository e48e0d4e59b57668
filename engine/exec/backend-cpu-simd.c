/* SPDX-License-Identifier: MIT */
/* The SIMD CPU backend: QConv (group 1), QGemm and the 2x2 QMaxPool on
 * AVX2 or AVX-512 VNNI kernels, with weights packed once per session.
 * Everything else — and everything on a CPU without AVX2, where this
 * backend declines every op — runs on the reference backend, which the
 * executor does by itself.
 *
 * Threads (CvoptSessionOptions.threads): 0 or 1 runs every node on the
 * calling thread, as before threads existed; 0 stays one thread because an
 * inference of the small models this engine serves takes tens of
 * microseconds, where a second core gains little and costs a core that
 * spins (the daemon's capture and the other sessions want it), so more
 * threads is a choice the user makes. N > 1 starts a pool of N - 1
 * workers for the session (exec/thread-pool.h) and splits the work inside
 * each large enough node, the nodes still running one after the other:
 *
 *   QConv:    ranges of pixel blocks (Q_PIXEL_BLOCK): each task unrolls
 *             its pixels (im2col, into per-thread scratch), runs the GEMM
 *             of every output channel on them and requantizes them, so
 *             one dispatch per conv and no barrier inside it;
 *   QGemm:    rows, and each row's output channels (the GEMV) in fours;
 *   QMaxPool: planes.
 *
 * Every output value is computed by the same instructions in the same
 * order whatever the split, so results are bit-identical for any number of
 * threads (tests/kernels/test-kernels-int8.c checks 1, 2 and 3 threads
 * against the reference, and a graph on 1 and 4). Nodes with less work than
 * PARALLEL_MIN_MACS, and convs with fewer than 2 x CONV_MIN_TASK_BLOCKS
 * pixel blocks, stay on the calling thread; CVOPT_CPU_SPLIT=all splits
 * every node (tests). On the reference model (2 shared cores) this leaves
 * only its large Gemm split: see bench/ and docs/daemon.md. */
#include "cpu/q-ops.h"
#include "cpu/q-simd.h"
#include "cvopt/errors.h"
#include "exec/backend.h"
#include "exec/thread-pool.h"
#include "macro.h"

/* Nodes with fewer multiply-adds than this (bytes read, for pools) run on
 * one thread: a split costs a dispatch and a join, about a microsecond
 * with spinning workers, plus the cache lines that cross between cores
 * (outputs written by one thread and read by another in the next node),
 * and the work has to be several times that to gain. On the reference
 * model (2 cores, AVX-512 VNNI) its 6272x160 QGemm (1M MACs, 13 us) gains
 * a third on 2 threads; its first conv (230k MACs, 7 us) lost a third. */
#define PARALLEL_MIN_MACS 500000
/* A QConv is cut into ranges of at least this many pixel blocks (256
 * pixels). Threads write the output rows of every channel side by side,
 * and a 64-byte line shared by two threads' ranges bounces between their
 * cores: on the reference model's 14x14 and 7x7 convs, cut into single
 * blocks, two threads were slower than one. Long ranges share few lines. */
#define CONV_MIN_TASK_BLOCKS 8
/* Tasks per thread of a split node: tasks are claimed, not assigned, so
 * some more tasks than threads let the others make up for a thread that
 * starts late or is slowed by other work on its core. */
#define TASKS_PER_THREAD 4

/* CVOPT_CPU_SPLIT=all splits every node the pool can split, into the
 * smallest tasks, whatever its size: for tests, which check with small
 * shapes that results do not depend on the split. */
static bool split_all_forced(void) {
        const char *e = getenv("CVOPT_CPU_SPLIT");

        return e && streq(e, "all");
}

/* Memory that threads write side by side starts on a cache line of its
 * own (per-thread scratch, accumulator tiles): two cores writing the same
 * line take turns owning it, and made the unrolling 3x slower on two
 * threads than on one. */
#define CACHE_LINE 64

static void *aligned_calloc(size_t size) {
        void *p = aligned_alloc(CACHE_LINE, ALIGN_TO(MAX(size, 1u), CACHE_LINE));

        if (p)
                memset(p, 0, size);
        return p;
}

typedef struct SimdNode {
        bool prepared;
        bool parallel; /* split over the session's threads */
        QPackedWeights weights;
        QWindow window;
        QRequantParams params;
        int64_t pixels, pixels_padded;
        void *cols;
        /* im2col scratch, one per thread: w->step rows of pixels_padded
         * (+16), unrolled_bytes each. */
        uint8_t *unrolled;
        size_t unrolled_bytes;
        uint8_t *padded; /* the input with its pads, plane by plane (+16) */
        int64_t padded_h, padded_w;
        int32_t *acc;
        uint8_t *rows; /* QGemm: the input rows, each padded to row_length */
        int64_t n_rows;
} SimdNode;

typedef struct SimdContext {
        QIsa isa;
        uint32_t n_nodes;
        SimdNode *nodes;
        ThreadPool *pool; /* NULL: one thread */
        bool split_all;   /* CVOPT_CPU_SPLIT=all */
} SimdContext;

static void simd_done(void *ctx) {
        SimdContext *c = ctx;

        if (!c)
                return;
        thread_pool_free(c->pool);
        for (uint32_t k = 0; k < c->n_nodes; k++) {
                q_packed_weights_done(&c->nodes[k].weights);
                free(c->nodes[k].cols);
                free(c->nodes[k].unrolled);
                free(c->nodes[k].padded);
                free(c->nodes[k].acc);
                free(c->nodes[k].rows);
        }
        free(c->nodes);
        free(c);
}

static int simd_init(const CvoptGraph *g, const CvoptSessionOptions *options, void **ret_ctx) {
        SimdContext *c;
        int threads = options ? options->threads : 0;
        int r;

        if (threads < 0 || threads > (int) THREAD_POOL_MAX_THREADS)
                return cvopt_error_set(-EINVAL, "threads must be 0..%u, not %d", THREAD_POOL_MAX_THREADS, threads);
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->isa = q_isa_detect();
        c->split_all = split_all_forced();
        c->n_nodes = g->n_nodes;
        c->nodes = calloc(MAX(g->n_nodes, 1u), sizeof(SimdNode));
        if (!c->nodes) {
                simd_done(c);
                return -ENOMEM;
        }
        /* No pool where every op goes to the reference anyway. */
        if (threads > 1 && c->isa != Q_ISA_NONE) {
                r = thread_pool_new((uint32_t) threads, &c->pool);
                if (r < 0) {
                        simd_done(c);
                        return cvopt_error_set(r, "cannot start %d threads", threads);
                }
        }
        *ret_ctx = c;
        return 0;
}

/* Index space [0, outer) x [0, inner) cut into tasks: chunks of whole
 * outer items if there are enough of them for target tasks, else single
 * outer items times chunks of inner ones (a multiple of inner_align). */
typedef struct Split {
        int64_t outer, outer_chunk, n_outer;
        int64_t inner, inner_chunk, n_inner;
} Split;

static Split split_make(int64_t outer, int64_t inner, int64_t inner_align, int64_t target) {
        Split s = { .outer = outer, .inner = inner };

        target = MAX(target, 1);
        if (outer >= target) {
                s.outer_chunk = DIV_ROUND_UP(outer, target);
                s.inner_chunk = inner;
        } else {
                int64_t per_outer = DIV_ROUND_UP(target, MAX(outer, 1));

                s.outer_chunk = 1;
                s.inner_chunk = DIV_ROUND_UP(DIV_ROUND_UP(inner, per_outer), inner_align) * inner_align;
        }
        s.outer_chunk = MAX(s.outer_chunk, 1);
        s.inner_chunk = MAX(s.inner_chunk, 1);
        s.n_outer = DIV_ROUND_UP(outer, s.outer_chunk);
        s.n_inner = DIV_ROUND_UP(inner, s.inner_chunk);
        return s;
}

static uint32_t split_n_tasks(const Split *s) {
        return (uint32_t) (s->n_outer * s->n_inner);
}

/* Task t's ranges, outer-major: with the caller claiming from the front
 * and workers from the back, each thread mostly keeps the same outer items
 * (output channels: their weights stay in its cache). */
static void split_task(const Split *s, uint32_t t, int64_t *ret_outer_begin, int64_t *ret_outer_end,
                       int64_t *ret_inner_begin, int64_t *ret_inner_end) {
        int64_t o = (int64_t) t / s->n_inner, i = (int64_t) t % s->n_inner;

        *ret_outer_begin = o * s->outer_chunk;
        *ret_outer_end = MIN(s->outer, *ret_outer_begin + s->outer_chunk);
        *ret_inner_begin = i * s->inner_chunk;
        *ret_inner_end = MIN(s->inner, *ret_inner_begin + s->inner_chunk);
}

/* The tasks a node is cut into: one unless it runs in parallel. */
static int64_t node_target_tasks(const SimdContext *c, const SimdNode *s) {
        return s->parallel ? (int64_t) thread_pool_n_threads(c->pool) * TASKS_PER_THREAD : 1;
}

/* What a split node's tasks share. */
typedef struct SimdJob {
        const SimdContext *context;
        const SimdNode *node;
        const CvoptTensor *x;
        CvoptTensor *y;
        const int32_t *bias;
        Split split;
} SimdJob;

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
        const CvoptTensor *x = cvopt_node_input(g, n, 0);
        const uint32_t threads = thread_pool_n_threads(c->pool);

        if (n->op == CVOPT_OP_QMAX_POOL) {
                s->parallel = c->pool && (c->split_all || cvopt_tensor_count(x) >= PARALLEL_MIN_MACS);
                s->prepared = true;
                return 0;
        }
        const CvoptTensor *w = cvopt_node_input(g, n, 1), *y = cvopt_node_output(g, n, 0);
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
                s->parallel = c->pool && (c->split_all || (channels * depth * s->pixels >= PARALLEL_MIN_MACS &&
                                                          s->pixels_padded / Q_PIXEL_BLOCK >= 2 * CONV_MIN_TASK_BLOCKS));
                /* Padding pixels of the scratch rows are never written and
                 * stay 0; rows past depth meet zero weights. */
                s->cols = aligned_calloc(q_cols_bytes(&s->weights, s->pixels));
                /* Rows are copied 16 bytes at a time: the last may run 15
                 * bytes over, into slack. */
                s->unrolled_bytes = ALIGN_TO((size_t) (s->weights.step * s->pixels_padded + 16), CACHE_LINE);
                s->unrolled = aligned_calloc((s->parallel ? threads : 1) * s->unrolled_bytes);
                s->padded_h = x->dims[2] + s->window.pad_top + s->window.pad_bottom;
                s->padded_w = x->dims[3] + s->window.pad_left + s->window.pad_right;
                s->padded = calloc((size_t) (x->dims[1] * s->padded_h * s->padded_w + 16), 1);
                s->acc = aligned_calloc((size_t) (channels * s->pixels_padded) * sizeof(int32_t));
        } else {
                s->n_rows = x->dims[0];
                s->parallel = c->pool && (c->split_all || s->n_rows * channels * depth >= PARALLEL_MIN_MACS);
                /* Zeros past depth: the GEMV reads whole rows. */
                s->rows = calloc((size_t) (MAX(s->n_rows, 1) * s->weights.row_length), 1);
                s->acc = aligned_calloc((size_t) (MAX(s->n_rows, 1) * channels) * sizeof(int32_t));
        }
        if ((n->op == CVOPT_OP_QCONV && (!s->cols || !s->unrolled || !s->padded)) || !s->acc ||
            (n->op == CVOPT_OP_QGEMM && !s->rows))
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

/* Pixels [first, last) of one k = (kh, kw) of one padded input plane
 * unrolled: the value each output pixel sees there. Output rows are copied
 * in order, 16 bytes at a time, so each one's overrun is overwritten by the
 * next; the last one's lands past last, in pixels this range does not pack
 * or (when last is pixels_padded) in the next scratch row, written after
 * it, or in the slack after the last. */
static void unroll_row(const SimdNode *s, const uint8_t *plane, int64_t kh, int64_t kw, int64_t first, int64_t last,
                       uint8_t *row) {
        const QWindow *win = &s->window;
        int64_t oy = first / win->out_w, ox = first % win->out_w;

        last = MIN(last, s->pixels);
        for (int64_t p = first; p < last; oy++, ox = 0) {
                const int64_t n = MIN(win->out_w - ox, last - p);
                const uint8_t *src = plane + (oy * win->stride_h + kh * win->dilation_h) * s->padded_w +
                                     kw * win->dilation_w + ox * win->stride_w;

                if (win->stride_w == 1)
                        copy16(row + p, src, n);
                else
                        for (int64_t i = 0; i < n; i++)
                                row[p + i] = src[i * win->stride_w];
                p += n;
        }
}

/* The input with its pads in place, so that no pixel of the unrolling
 * needs a bounds check. */
static void simd_pad_input(const SimdNode *s, const CvoptTensor *x, uint8_t pad) {
        const QWindow *win = &s->window;
        const int64_t in_c = x->dims[1], in_h = x->dims[2], in_w = x->dims[3];
        const int64_t plane = s->padded_h * s->padded_w;
        const uint8_t *xd = x->data;

        memset(s->padded, pad, (size_t) (in_c * plane));
        for (int64_t ch = 0; ch < in_c; ch++)
                for (int64_t y = 0; y < in_h; y++)
                        memcpy(s->padded + ch * plane + (y + win->pad_top) * s->padded_w + win->pad_left,
                               xd + (ch * in_h + y) * in_w, (size_t) in_w);
}

/* Unrolls pixels [first, last) of the padded input into the packed column
 * layout of the kernels, one step (w->step values of k) at a time, through
 * the scratch rows of one thread. */
static void simd_im2col(const SimdNode *s, int64_t first, int64_t last, uint8_t *unrolled) {
        const QWindow *win = &s->window;
        const int64_t plane = s->padded_h * s->padded_w, depth = s->weights.depth;
        const int step = s->weights.step;
        const uint8_t *rows[4];

        for (int j = 0; j < step; j++)
                rows[j] = unrolled + j * s->pixels_padded;
        /* k = (ch * kernel_h + kh) * kernel_w + kw, counted up without
         * divisions (three 64-bit divisions per k were a tenth of the time). */
        int64_t k = 0, ch = 0, kh = 0, kw = 0;
        for (int64_t st = 0; st < s->weights.steps; st++) {
                /* Past depth the weights are 0: those rows' content is moot. */
                for (int j = 0; j < step && k < depth; j++, k++) {
                        unroll_row(s, s->padded + ch * plane, kh, kw, first, last, unrolled + j * s->pixels_padded);
                        if (++kw == win->kernel_w) {
                                kw = 0;
                                if (++kh == win->kernel_h) {
                                        kh = 0;
                                        ch++;
                                }
                        }
                }
                q_cols_pack_step(&s->weights, rows, s->pixels_padded, st, first, last, s->cols);
        }
}

/* A range of pixel blocks of a QConv: its unrolling, its part of the GEMM
 * for every output channel, and their requantization. Cutting by pixels,
 * not by channels, keeps each thread's columns, accumulators and scratch
 * in its own cache: a thread reads only the columns it wrote, and (the
 * caller claiming from the front, workers from the back) mostly the same
 * ones run after run. Cut by k steps and then by channels, every column
 * crossed between the cores twice per run, and two threads were slower
 * than one. */
static void conv_task(void *userdata, uint32_t task, uint32_t thread) {
        const SimdJob *job = userdata;
        const SimdNode *s = job->node;
        const QRequantParams *q = &s->params;
        const int64_t channels = s->weights.channels;
        QGemmTile tile = { .block_end = DIV_ROUND_UP(channels, Q_OC_BLOCK) };
        int64_t unused_begin, unused_end;

        split_task(&job->split, task, &tile.pixel_begin, &tile.pixel_end, &unused_begin, &unused_end);
        tile.pixel_begin *= Q_PIXEL_BLOCK;
        tile.pixel_end *= Q_PIXEL_BLOCK;
        simd_im2col(s, tile.pixel_begin, tile.pixel_end, s->unrolled + thread * s->unrolled_bytes);
        q_gemm(&s->weights, s->cols, s->pixels_padded, &tile, s->acc);

        const int64_t p_end = MIN(tile.pixel_end, s->pixels);
        const int32_t zero_point = q_zero_point(job->y);
        for (int64_t oc = 0; oc < channels; oc++) {
                const int32_t *row = s->acc + oc * s->pixels_padded;
                const int32_t start = job->bias ? job->bias[oc] : 0;

                if (!q->out_scale && !q->lut) {
                        uint32_t k = q->count == 1 ? 0 : (uint32_t) oc;

                        q_requant_row(job->context->isa, row + tile.pixel_begin, p_end - tile.pixel_begin, start,
                                      (int32_t) q->multiplier[k], (int32_t) q->shift[k], zero_point, q->out_min,
                                      q->out_max, (uint8_t *) job->y->data + oc * s->pixels + tile.pixel_begin);
                        continue;
                }
                for (int64_t p = tile.pixel_begin; p < p_end; p++)
                        q_store(q, job->y, (uint32_t) oc, start + row[p], job->y->data, (size_t) (oc * s->pixels + p));
        }
}

/* Rows (outer) times output channels (inner) of a QGemm. */
static void gemm_task(void *userdata, uint32_t task, uint32_t thread) {
        const SimdJob *job = userdata;
        const SimdNode *s = job->node;
        const int64_t channels = s->weights.channels;
        int64_t first_row, last_row, first_channel, last_channel;

        (void) thread;
        split_task(&job->split, task, &first_row, &last_row, &first_channel, &last_channel);
        for (int64_t i = first_row; i < last_row; i++) {
                int32_t *acc = s->acc + i * channels;

                q_gemv(&s->weights, s->rows + i * s->weights.row_length, first_channel, last_channel, acc);
                for (int64_t j = first_channel; j < last_channel; j++)
                        q_store(&s->params, job->y, (uint32_t) j, (job->bias ? job->bias[j] : 0) + acc[j], job->y->data,
                                (size_t) (i * channels + j));
        }
}

/* Planes of a 2x2 max pool. */
static void pool_task(void *userdata, uint32_t task, uint32_t thread) {
        const SimdJob *job = userdata;
        const int64_t h = job->x->dims[2], w = job->x->dims[3];
        int64_t first, last, unused_begin, unused_end;

        (void) thread;
        split_task(&job->split, task, &first, &last, &unused_begin, &unused_end);
        for (int64_t p = first; p < last; p++)
                q_maxpool2(job->context->isa, (const uint8_t *) job->x->data + p * h * w, h, w,
                           (uint8_t *) job->y->data + p * (h / 2) * (w / 2));
}


static void simd_run_split(SimdContext *c, SimdJob *job, ThreadPoolTask task) {
        thread_pool_run(job->node->parallel ? c->pool : NULL, split_n_tasks(&job->split), task, job);
}

static int simd_run_node(void *ctx, const CvoptGraph *g, const CvoptNode *n, uint32_t node_index,
                         const CvoptTensor *const *inputs, CvoptTensor *const *outputs) {
        SimdContext *c = ctx;
        SimdNode *s = &c->nodes[node_index];
        const CvoptTensor *x = inputs[0], *b = n->n_inputs > 2 ? inputs[2] : NULL;
        const int64_t target = node_target_tasks(c, s);
        SimdJob job = { .context = c, .node = s, .x = x, .y = outputs[0], .bias = b ? b->data : NULL };

        (void) g;
        if (!s->prepared)
                return -CVOPT_E_BACKEND;
        if (n->op == CVOPT_OP_QMAX_POOL) {
                job.split = split_make(x->dims[0] * x->dims[1], 1, 1, target);
                simd_run_split(c, &job, pool_task);
                return 0;
        }
        if (n->op == CVOPT_OP_QCONV) {
                simd_pad_input(s, x, (uint8_t) q_zero_point(x));
                const int64_t blocks = s->pixels_padded / Q_PIXEL_BLOCK;

                job.split = split_make(blocks, 1, 1, c->split_all ? target : MIN(target, blocks / CONV_MIN_TASK_BLOCKS));
                simd_run_split(c, &job, conv_task);
                return 0;
        }
        const int64_t depth = x->dims[1];
        if (x->dims[0] != s->n_rows)
                return -CVOPT_E_BACKEND;
        for (int64_t i = 0; i < s->n_rows; i++)
                memcpy(s->rows + i * s->weights.row_length, (const uint8_t *) x->data + i * depth, (size_t) depth);
        /* Channels in fours: the GEMV's blocking. */
        job.split = split_make(s->n_rows, s->weights.channels, 4, target);
        simd_run_split(c, &job, gemm_task);
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

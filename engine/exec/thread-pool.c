/* SPDX-License-Identifier: MIT */
/* The pool's protocol. One 64-bit atomic word, state, holds the job's
 * generation (high 32 bits), the next task to claim from the front (16
 * bits) and one past the last unclaimed task at the back (16 bits). The
 * caller writes the job (task, userdata, done = 0) and then publishes it by
 * storing state with the next generation and all tasks unclaimed. A thread
 * claims a task by a compare-and-swap on state that also checks the
 * generation, so a worker that wakes up late, for a job already finished,
 * can never claim a task of the next one with the previous job's function.
 * Each finished task increments done; the caller returns when done counts
 * every task, and only then may the job's fields change again, so a worker
 * reads them after its claim without a race.
 *
 * Workers wait for the next generation by spinning (pause instruction) for
 * THREAD_POOL_SPIN_NSEC, then sleep on a condition variable. The caller
 * signals it only when a worker says it sleeps (sleepers), so a dispatch to
 * spinning workers is one store and one load: no system call. */
#include <assert.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "exec/thread-pool.h"
#include "macro.h"

/* How long a worker spins after a job before it sleeps. Nodes of an
 * inference follow each other within microseconds, and the next inference
 * often comes right after the last one (benchmarks, batches of frames), so
 * this covers the gaps inside an inference and between back-to-back ones;
 * it is short enough that an idle pool costs a tenth of a millisecond of
 * CPU per inference, not a core. A wake-up from sleep costs tens of
 * microseconds (the caller does not wait for it: it takes the tasks). */
#define THREAD_POOL_SPIN_NSEC 100000
/* Clock reads while spinning: one per this many pause instructions (a
 * pause is 10..150 cycles depending on the CPU, a clock read ~20 ns). */
#define THREAD_POOL_SPINS_PER_CLOCK 32

/* The fields written by different threads at high rates get cache lines
 * of their own, so that claiming does not slow down finishing. */
#define CACHE_LINE 64

typedef struct Worker {
        ThreadPool *pool;
        uint32_t index;
        pthread_t thread;
} Worker;

struct ThreadPool {
        _Alignas(CACHE_LINE) _Atomic uint64_t state;
        _Alignas(CACHE_LINE) _Atomic uint32_t done;
        _Alignas(CACHE_LINE) _Atomic uint32_t sleepers;
        _Atomic bool stopping;
        /* The job: written by the caller only while no task is claimed. */
        ThreadPoolTask task;
        void *userdata;
        uint32_t n_threads, n_started;
        pthread_mutex_t lock;
        pthread_cond_t wake;
        Worker *workers;
};

static inline uint32_t state_generation(uint64_t s) {
        return (uint32_t) (s >> 32);
}

static inline uint64_t state_make(uint32_t generation, uint32_t front, uint32_t back) {
        return (uint64_t) generation << 32 | (uint64_t) front << 16 | back;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield");
#endif
}

static uint64_t now_nsec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * UINT64_C(1000000000) + (uint64_t) ts.tv_nsec;
}

/* The next task of generation, from the front or the back; -1 when none is
 * left (or the generation is over). */
static int64_t pool_claim(ThreadPool *pool, uint32_t generation, bool from_back) {
        uint64_t s = atomic_load_explicit(&pool->state, memory_order_acquire);

        for (;;) {
                uint32_t front = (uint32_t) (s >> 16) & 0xffff, back = (uint32_t) s & 0xffff;

                if (state_generation(s) != generation || front >= back)
                        return -1;
                uint64_t next = from_back ? state_make(generation, front, back - 1) : state_make(generation, front + 1, back);
                if (atomic_compare_exchange_weak_explicit(&pool->state, &s, next, memory_order_acq_rel,
                                                          memory_order_acquire))
                        return from_back ? (int64_t) back - 1 : (int64_t) front;
        }
}

static void pool_work(ThreadPool *pool, uint32_t generation, uint32_t thread) {
        int64_t t;

        while ((t = pool_claim(pool, generation, thread != 0)) >= 0) {
                /* The claim synchronized with the publication of the job,
                 * and the job cannot change before this task is done. */
                pool->task(pool->userdata, (uint32_t) t, thread);
                atomic_fetch_add_explicit(&pool->done, 1, memory_order_release);
        }
}

/* The generation after seen, once there is one: spinning first, then
 * asleep. */
static uint32_t worker_wait(ThreadPool *pool, uint32_t seen) {
        uint64_t deadline = now_nsec() + THREAD_POOL_SPIN_NSEC;
        uint32_t g;

        for (;;) {
                for (int i = 0; i < THREAD_POOL_SPINS_PER_CLOCK; i++) {
                        g = state_generation(atomic_load_explicit(&pool->state, memory_order_acquire));
                        if (g != seen)
                                return g;
                        cpu_relax();
                }
                if (now_nsec() >= deadline)
                        break;
        }
        /* sleepers is incremented before state is read again, and the
         * caller reads sleepers after it stores state (both sequentially
         * consistent): either the caller sees a sleeper and signals under
         * the lock, or this thread sees the new generation. */
        pthread_mutex_lock(&pool->lock);
        atomic_fetch_add(&pool->sleepers, 1);
        while ((g = state_generation(atomic_load(&pool->state))) == seen)
                pthread_cond_wait(&pool->wake, &pool->lock);
        atomic_fetch_sub(&pool->sleepers, 1);
        pthread_mutex_unlock(&pool->lock);
        return g;
}

static void *worker_main(void *userdata) {
        Worker *w = userdata;
        ThreadPool *pool = w->pool;
        /* The generation the pool was made with (not the current one: a
         * job, or the stop, may have been published already). */
        uint32_t seen = 0;

        for (;;) {
                seen = worker_wait(pool, seen);
                if (atomic_load(&pool->stopping))
                        return NULL;
                pool_work(pool, seen, w->index);
        }
}

/* Publishes a new generation, with tasks 0..n_tasks-1 unclaimed, and
 * returns it. */
static uint32_t pool_publish(ThreadPool *pool, uint32_t n_tasks) {
        uint32_t generation = state_generation(atomic_load_explicit(&pool->state, memory_order_relaxed)) + 1;

        atomic_store(&pool->state, state_make(generation, 0, n_tasks));
        if (atomic_load(&pool->sleepers) > 0) {
                pthread_mutex_lock(&pool->lock);
                pthread_cond_broadcast(&pool->wake);
                pthread_mutex_unlock(&pool->lock);
        }
        return generation;
}

ThreadPool *thread_pool_free(ThreadPool *pool) {
        if (!pool)
                return NULL;
        atomic_store(&pool->stopping, true);
        pool_publish(pool, 0);
        for (uint32_t i = 0; i < pool->n_started; i++)
                pthread_join(pool->workers[i].thread, NULL);
        pthread_cond_destroy(&pool->wake);
        pthread_mutex_destroy(&pool->lock);
        free(pool->workers);
        free(pool);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(ThreadPool *, thread_pool_free);

int thread_pool_new(uint32_t n_threads, ThreadPool **ret_pool) {
        _cleanup_(thread_pool_freep) ThreadPool *pool = NULL;
        int r;

        if (n_threads < 2 || n_threads > THREAD_POOL_MAX_THREADS)
                return -EINVAL;
        /* aligned_alloc: the cache-line alignment of the atomics. */
        pool = aligned_alloc(CACHE_LINE, ALIGN_TO(sizeof(ThreadPool), CACHE_LINE));
        if (!pool)
                return -ENOMEM;
        *pool = (ThreadPool) { .n_threads = n_threads };
        atomic_init(&pool->state, 0);
        atomic_init(&pool->done, 0);
        atomic_init(&pool->sleepers, 0);
        atomic_init(&pool->stopping, false);
        pthread_mutex_init(&pool->lock, NULL);
        pthread_cond_init(&pool->wake, NULL);
        pool->workers = calloc(n_threads - 1, sizeof(Worker));
        if (!pool->workers)
                return -ENOMEM;
        for (uint32_t i = 0; i < n_threads - 1; i++) {
                pool->workers[i] = (Worker) { .pool = pool, .index = i + 1 };
                r = pthread_create(&pool->workers[i].thread, NULL, worker_main, &pool->workers[i]);
                if (r != 0)
                        return -r;
                pool->n_started++;
        }
        *ret_pool = TAKE_PTR(pool);
        return 0;
}

uint32_t thread_pool_n_threads(const ThreadPool *pool) {
        return pool ? pool->n_threads : 1;
}

void thread_pool_run(ThreadPool *pool, uint32_t n_tasks, ThreadPoolTask task, void *userdata) {
        assert(n_tasks <= THREAD_POOL_MAX_TASKS);
        if (!pool || n_tasks <= 1) {
                for (uint32_t t = 0; t < n_tasks; t++)
                        task(userdata, t, 0);
                return;
        }
        pool->task = task;
        pool->userdata = userdata;
        atomic_store_explicit(&pool->done, 0, memory_order_relaxed);
        pool_work(pool, pool_publish(pool, n_tasks), 0);
        /* Only tasks that workers claimed and still run are left. A worker
         * can be descheduled in one (more threads than free cores): after
         * a while of spinning, give it the core. */
        for (unsigned spins = 0; atomic_load_explicit(&pool->done, memory_order_acquire) != n_tasks; spins++) {
                cpu_relax();
                if (spins % 4096 == 4095)
                        sched_yield();
        }
}

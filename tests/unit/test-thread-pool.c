/* SPDX-License-Identifier: MIT */
/* The intra-op thread pool (engine/exec/thread-pool.c): every task runs
 * exactly once per dispatch, whatever the number of threads and tasks,
 * whether the workers are spinning or asleep, and a pool stops cleanly
 * even before its workers first ran. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <time.h>

#include "exec/thread-pool.h"
#include "macro.h"

typedef struct Counts {
        _Atomic uint32_t runs[THREAD_POOL_MAX_TASKS];
        _Atomic uint32_t bad_thread;
        uint32_t n_threads;
} Counts;

static void count_task(void *userdata, uint32_t task, uint32_t thread) {
        Counts *c = userdata;

        atomic_fetch_add(&c->runs[task], 1);
        if (thread >= c->n_threads)
                atomic_fetch_add(&c->bad_thread, 1);
}

static void sleep_usec(long usec) {
        nanosleep(&(struct timespec) { .tv_nsec = usec * 1000 }, NULL);
}

static void check_pool(ThreadPool *pool) {
        static Counts c;
        static const uint32_t sizes[] = { 0, 1, 2, 3, 7, 16, 33, 100, THREAD_POOL_MAX_TASKS };

        c.n_threads = thread_pool_n_threads(pool);
        for (int round = 0; round < 300; round++) {
                uint32_t n = sizes[round % ELEMENTSOF(sizes)];

                for (uint32_t t = 0; t < n; t++)
                        atomic_store(&c.runs[t], 0);
                thread_pool_run(pool, n, count_task, &c);
                for (uint32_t t = 0; t < n; t++)
                        if (atomic_load(&c.runs[t]) != 1)
                                fail_msg("round %d: task %u of %u ran %u times", round, t, n, atomic_load(&c.runs[t]));
                /* Now and then long enough for the workers to go to sleep. */
                if (round % 50 == 49)
                        sleep_usec(2000);
        }
        assert_int_equal(atomic_load(&c.bad_thread), 0);
}

static void test_runs_every_task_once(void **state) {
        (void) state;

        check_pool(NULL);
        for (uint32_t threads = 2; threads <= 5; threads += 3) {
                ThreadPool *pool = NULL;

                assert_int_equal(thread_pool_new(threads, &pool), 0);
                assert_int_equal(thread_pool_n_threads(pool), threads);
                check_pool(pool);
                assert_null(thread_pool_free(pool));
        }
}

/* Freed at once, and freed after its workers fell asleep. */
static void test_pool_free(void **state) {
        ThreadPool *pool = NULL;
        (void) state;

        for (int i = 0; i < 20; i++) {
                assert_int_equal(thread_pool_new(3, &pool), 0);
                pool = thread_pool_free(pool);
        }
        assert_int_equal(thread_pool_new(2, &pool), 0);
        sleep_usec(5000);
        pool = thread_pool_free(pool);
        assert_null(thread_pool_free(NULL));
}

static void test_bad_sizes(void **state) {
        ThreadPool *pool = NULL;
        (void) state;

        assert_int_equal(thread_pool_new(0, &pool), -EINVAL);
        assert_int_equal(thread_pool_new(1, &pool), -EINVAL);
        assert_int_equal(thread_pool_new(THREAD_POOL_MAX_THREADS + 1, &pool), -EINVAL);
        assert_null(pool);
        assert_int_equal(thread_pool_n_threads(NULL), 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_runs_every_task_once),
                cmocka_unit_test(test_pool_free),
                cmocka_unit_test(test_bad_sizes),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

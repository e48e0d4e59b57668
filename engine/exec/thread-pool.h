/* SPDX-License-Identifier: MIT */
#pragma once

/* A small persistent pool of threads for the work inside one node (intra-op
 * parallelism), owned by one session's backend context.
 *
 * thread_pool_run() hands out tasks 0..n_tasks-1 of a function and returns
 * when all have run. The calling thread is thread 0 and takes tasks itself;
 * workers 1..n_threads-1 take the others. Nodes of a whole inference take a
 * few tens of microseconds, so a dispatch must cost far less than that:
 * workers spin briefly on the pool's generation counter after each job and
 * only then sleep on a condition variable, and tasks are claimed, not
 * assigned, so a worker that is late (asleep, or descheduled on a busy
 * machine) costs parallelism, never a wait: the caller takes its tasks.
 *
 * The caller claims tasks from the front, workers from the back: with two
 * threads each one mostly gets the same half of the work run after run, so
 * the data it touches (a half of a layer's weights) stays in its own cache.
 *
 * Which thread runs a task varies from run to run; results must not
 * depend on it (a task writes its own part of the output). The thread
 * index is given so that a task can use per-thread scratch memory. */

#include <stdint.h>

typedef struct ThreadPool ThreadPool;

typedef void (*ThreadPoolTask)(void *userdata, uint32_t task, uint32_t thread);

/* Tasks of one thread_pool_run(), at most (claims are 16-bit counters). */
#define THREAD_POOL_MAX_TASKS 4096u
/* Threads of a pool, at most (the daemon's configuration allows as many). */
#define THREAD_POOL_MAX_THREADS 256u

/* Starts n_threads - 1 workers (n_threads 2..THREAD_POOL_MAX_THREADS);
 * 0, -EINVAL, -ENOMEM or the error of pthread_create(). */
int thread_pool_new(uint32_t n_threads, ThreadPool **ret_pool);
/* Stops and joins the workers; accepts NULL, returns NULL. */
ThreadPool *thread_pool_free(ThreadPool *pool);

/* Threads including the caller; 1 for NULL. */
uint32_t thread_pool_n_threads(const ThreadPool *pool);

/* Runs task(userdata, i, thread) for every i in 0..n_tasks-1 (at most
 * THREAD_POOL_MAX_TASKS) and returns when all have returned. A NULL pool
 * runs them all on the caller, in order. Not reentrant: one caller at a
 * time, and tasks must not call it. */
void thread_pool_run(ThreadPool *pool, uint32_t n_tasks, ThreadPoolTask task, void *userdata);

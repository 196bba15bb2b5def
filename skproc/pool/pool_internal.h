/* SPDX-License-Identifier: MIT */
/*
 * The parent's private view of a pool and of its calls, shared by the files
 * that run in the parent: the lifecycle (pool.c), the call engine (call.c)
 * and the progress bar (progress.c). Nothing here is in memory a worker can
 * write.
 */
#ifndef SKPROC_POOL_INTERNAL_H
#define SKPROC_POOL_INTERNAL_H

#include "pool/transport.h"

#include <stdbool.h>
#include <stdint.h>

/* What the engine posted in a batch: its own record, by batch id. */
struct pool_posted {
    uint64_t first;
    uint32_t count;
};

struct sk_pool {
    sk_pool_config config;
    struct sk_pool_transport *t;
    int n_workers;
    struct sk_pool_call *live[POOL_CALLS]; /* the calls alive, by slot */
    struct pool_posted posted[POOL_BATCHES];
    bool closed, terminated;
    /* Event loops (sk_pool_fd, sk_pool_call_fd): once any fd was asked
     * for, every call into the pool ends by making them say the truth. */
    bool fds_on;
    int notify_fd; /* the transport's: readable after a batch is done */
    int fd;        /* sk_pool_fd: an epoll set of notify_fd and any_fd, or -1 */
    int any_fd;    /* an eventfd set while some call has something for its caller */
    bool any_set;
};

/* A call's pollable fd (sk_pool_call_fd): an epoll set of the pool's
 * notify fd (a batch is done: maybe news) and an eventfd of its own, set
 * while the call has something for its caller. */
struct pool_call_fd {
    int fd, own;
    bool set;
};

/* A done batch being read: what was posted, and what came back. */
struct pool_view {
    uint32_t id, count;
    uint64_t first;
    bool corrupt;      /* every item fails with SK_ECORRUPT */
    bool clean;        /* the workers say every item succeeded */
    bool errors_taken; /* its error records were copied (at its first failure) */
    bool has_lead;     /* lead holds its first failure's record (the kept errors were full) */
    struct pool_batch_out out;
    sk_error lead;
};

/* When a call's progress was last reported (progress.c): its start, its
 * last report (0: none yet), whether the bar is on the screen, and whether
 * the end was reported. */
struct pool_progress_state {
    int64_t started, last;
    bool drawn;
    bool finished_reported;
};

struct sk_pool_call {
    sk_pool *pool;
    int slot;
    struct pool_job job; /* the parent's copy: the arena's may be scribbled on */
    const unsigned char *items;
    size_t n; /* SIZE_MAX for a stream until the producer ends */
    sk_pool_producer produce;
    void *produce_state;
    unsigned char *produce_item;
    unsigned char *results;
    int *status;
    bool iterator, ordered, producer_done, posting_counted, produced_pending;
    size_t batch;
    uint64_t posted_items, collected_items;
    uint32_t fifo[POOL_BATCHES]; /* this call's batches in flight, in item order */
    int fifo_len;
    int cur; /* iterator: the batch being yielded (view), or -1 */
    uint32_t cur_pos;
    struct pool_view view;
    uint64_t failed;
    uint64_t retried; /* items that succeeded after a failed attempt (sk_pool_retried) */
    sk_error first_error;
    bool has_first_error;
    int first_code;
    sk_error *errors; /* copies of the workers' error records (POOL_ERRORS at most) */
    size_t n_errors;
    struct pool_progress_state progress;
    bool cancelled;        /* sk_pool_cancel: nothing more is posted */
    size_t n_cancelled;    /* items that will never run */
    bool outcome_reported; /* map: ready/wait/get said it is done */
    bool end_reported;     /* iterator: next said SK_ECLOSED */
    size_t *killed;        /* items sk_pool_kill_item killed (they fail with SK_EKILLED) */
    size_t n_killed;
    struct pool_call_fd cfd; /* fd -1: none asked for */
    /* The sk_pool_alloc allocations its items and results lie in (zero
     * copy: job.shared_items, job.shared_results), or NULL: sk_pool_free
     * refuses them while the call is alive. */
    const void *shared_start[2];
};

#endif

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
};

/* A done batch being read: what was posted, and what came back. */
struct pool_view {
    uint32_t id, count;
    uint64_t first;
    bool corrupt;      /* every item fails with SK_ECORRUPT */
    bool clean;        /* the workers say every item succeeded */
    bool errors_taken; /* its error records were copied (at its first failure) */
    struct pool_batch_out out;
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
};

#endif

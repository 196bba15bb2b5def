/* SPDX-License-Identifier: MIT */
/*
 * The shared-memory transport's arena: one memfd (named "skproc-pool"),
 * mapped before the workers are forked, that the parent (shm_transport.c)
 * and the workers (worker.c) both read and write:
 *
 *   [header: queue counters, worker slots, batch descriptors, call table]
 *   [call regions: the job's argument bytes and its error records]
 *   [batch regions: the item image in the first half, the result image
 *    in the second (batch.h)]
 *   past the mapping, in the memfd only: result images too big for their
 *   batch ("spilled"), written with pwrite and read with pread
 *
 * Everything here is writable by every worker, so the parent reads it as
 * untrusted input (see shm_transport.c).
 */
#ifndef SKPROC_POOL_SHM_ARENA_H
#define SKPROC_POOL_SHM_ARENA_H

#include "pool/batch.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SHM_MAX_WORKERS 512
#define SHM_SHARED_SIZE ((size_t)16 << 30) /* the shared region (sk_pool_alloc): address space */
#define SHM_SHARED_CHUNK ((size_t)2 << 20) /* a worker maps the shared region's pages by these */
#define SHM_SPILLED (UINT64_C(1) << 63)    /* in a result index: the image is past the mapping */

enum shm_batch_state { SHM_BATCH_FREE, SHM_BATCH_READY, SHM_BATCH_CLAIMED, SHM_BATCH_DONE };

/* A batch descriptor: written by the parent when it posts the batch; the
 * worker that claims it counts failures and marks it done. */
struct shm_batch {
    _Atomic uint32_t state;
    uint32_t call;  /* slot in the call table */
    uint64_t first; /* index of its first item in the call */
    uint32_t count;
    uint32_t failed;  /* (worker) items that failed, for the counters */
    uint32_t retried; /* (worker) items that failed at least once, then succeeded */
};

/* An error record is complete when its stamp equals its call's stamp:
 * workers reserve a record, fill it, then publish the stamp, so the parent
 * never reads one half written or left over from an earlier call. */
struct shm_error_record {
    _Atomic uint32_t stamp;
    uint64_t item;
    sk_error error;
};

/* A call's job as the workers read it, and the count of its error records
 * after each batch's first (those go to the batch's lead record). */
struct shm_job {
    struct pool_job job;
    _Atomic uint32_t n_errors;
    uint32_t stamp; /* this call's error records carry it; never 0 */
};

/* One cache line each: a worker writes `item` for every item it runs. */
struct shm_worker_slot {
    _Alignas(64) _Atomic uint32_t batch; /* descriptor + 1 of the batch in hand; 0: none */
    _Atomic uint32_t item;               /* its item in hand */
    /* A range function's run in hand, from item on: its length when it is
     * more than one item, 0 otherwise. A crash inside such a run is not
     * charged to `item`: the successor runs the run one item at a time. */
    _Atomic uint32_t run;
    uint32_t attempts;         /* failed attempts of attempts_item so far */
    uint32_t attempts_item;    /* the item of the batch in hand they belong to */
    _Atomic uint32_t recycled; /* it left on purpose (max_tasks), not by a fault */
    /* Written by the parent (sk_pool_stop_item, sk_pool_kill_item): a
     * SHM_CONTROL_* for the class item `control_item` of the batch
     * `control_batch` (descriptor + 1); the worker acts on it only while it
     * runs that very item, and clears it. */
    _Atomic uint32_t control;
    _Atomic uint32_t control_batch;
    _Atomic uint32_t control_item;
    /* Written by the worker around the pool's initializer (SHM_INIT_*),
     * and what it returned: read by the parent only to decide whether
     * sk_pool_create fails, and for the message. */
    _Atomic uint32_t init_state;
    int32_t init_rc;
};

enum shm_control { SHM_CONTROL_NONE, SHM_CONTROL_STOP, SHM_CONTROL_KILL };
enum shm_init { SHM_INIT_NONE, SHM_INIT_RUNNING, SHM_INIT_OK, SHM_INIT_FAILED };

struct shm_header {
    _Atomic uint64_t posted;
    char pad0[56];
    _Atomic uint64_t claimed;
    char pad1[56];
    _Atomic uint32_t post_seq; /* workers sleep on it */
    _Atomic uint32_t idle_workers;
    _Atomic uint32_t spinner;    /* an idle worker spins for posts: at most one at a time */
    _Atomic int32_t spinner_cpu; /* the CPU it spins on, plus one */
    _Atomic int32_t parent_cpu;  /* the CPU the caller last waited on, plus one */
    _Atomic uint32_t done_seq;   /* the parent sleeps on it */
    _Atomic uint32_t parent_waiting;
    _Atomic uint32_t closing;
    _Atomic uint32_t posting_calls; /* calls that may still post */
    _Atomic uint32_t notify;        /* non-zero: a worker that marks a batch done also
                                     * writes the arena's notify eventfd (sk_pool_fd) */
    _Atomic long done, failed, claimed_items;
    _Atomic uint32_t shared_epoch; /* moves when an allocation of the shared region is freed */
    _Atomic uint64_t spill_top;    /* bytes of result images spilled past the mapping */
    _Atomic uint32_t queue[POOL_BATCHES]; /* posted descriptors, in posting order */
    double item_timeout;                  /* the pool's settings, for reading only: each worker */
    int lives;                            /* runs by its own copy (worker.h), which no other */
    long max_tasks;                       /* worker can scribble on */
    struct shm_worker_slot workers[SHM_MAX_WORKERS];
    struct shm_batch batches[POOL_BATCHES];
    struct shm_job jobs[POOL_CALLS];
    /* Each batch's first failure, by descriptor: whatever the order the
     * workers meet failures in, the call's first failure (the first of
     * some batch) keeps its whole record when more than POOL_ERRORS fail.
     * Valid when its stamp is the call's and its item is in the batch
     * (a descriptor's earlier batch of the same call has other items). */
    struct shm_error_record batch_errors[POOL_BATCHES];
};

/* The arena as each side holds it (in its own memory). The shared region
 * (sk_pool_alloc's arrays) is a memfd of its own ("skproc-arrays"),
 * mapped next to the arena before the workers are forked: it holds values
 * only, never a word either side trusts, so it shares no page with the
 * arena's control data. */
struct shm_arena {
    int memfd;
    int shared_fd;
    unsigned char *shared;
    size_t shared_size;
    int notify_fd; /* an eventfd made before the workers are forked */
    unsigned char *base;
    size_t size; /* of the mapping; spilled images start here in the memfd */
    struct shm_header *h;
};

/* The arena's layout grain: regions start on 4 KiB boundaries. */
static inline size_t shm_page_round(size_t n)
{
    return (n + 4095) / 4096 * 4096;
}

static inline size_t shm_call_region_size(void)
{
    return shm_page_round(POOL_ARG_MAX + POOL_ERRORS * sizeof(struct shm_error_record));
}

static inline size_t shm_calls_offset(void)
{
    return shm_page_round(sizeof(struct shm_header));
}

static inline size_t shm_batches_offset(void)
{
    return shm_calls_offset() + POOL_CALLS * shm_call_region_size();
}

static inline size_t shm_arena_size(void)
{
    return shm_batches_offset() + (size_t)POOL_BATCHES * 2 * POOL_IMAGE_MAX;
}

static inline unsigned char *shm_call_arg(const struct shm_arena *a, uint32_t slot)
{
    return a->base + shm_calls_offset() + (size_t)slot * shm_call_region_size();
}

static inline struct shm_error_record *shm_call_errors(const struct shm_arena *a, uint32_t slot)
{
    return (struct shm_error_record *)(void *)(shm_call_arg(a, slot) + POOL_ARG_MAX);
}

static inline unsigned char *shm_batch_in(const struct shm_arena *a, uint32_t d)
{
    return a->base + shm_batches_offset() + (size_t)d * 2 * POOL_IMAGE_MAX;
}

static inline unsigned char *shm_batch_out(const struct shm_arena *a, uint32_t d)
{
    return shm_batch_in(a, d) + POOL_IMAGE_MAX;
}

#endif

/* SPDX-License-Identifier: MIT */
/*
 * The seam between the pool's call engine (call.c) and the way batches
 * reach the workers: shared memory today (shm_transport.c), other carriers
 * (MPI ranks exchanging byte images) later, each one file implementing
 * these ops.
 *
 * The engine is the only caller. It runs in the pool's parent, one thread
 * at a time (the thread using the pool), so no op needs locking against
 * another. An op is called once per batch or once per call, never once per
 * item of plain records (result_image is the exception: it serves tpl
 * results, whose decoding costs far more than a call).
 *
 * A batch is named by an id below POOL_BATCHES that the transport hands out
 * (take) and gets back (release). Between post and a poll that says it is
 * done, the batch belongs to the workers; the engine only polls it.
 *
 * Trust: workers are untrusted peers. Whatever a transport hands back from
 * them (statuses, results, images, error records) is checked by the
 * transport against its own copies of each batch's call, first item and
 * count, kept where no worker can write them; the engine checks each status
 * it reads. A bad value costs the items of that batch (SK_ECORRUPT), never a
 * crash, a hang or a read outside the batch.
 */
#ifndef SKPROC_POOL_TRANSPORT_H
#define SKPROC_POOL_TRANSPORT_H

#include "pool/batch.h"

#include <stdbool.h>
#include <stdint.h>

struct sk_pool_transport;

/* A free batch, as take hands it out: the engine writes the item image
 * (batch.h) to items, at most cap bytes. */
struct pool_batch_in {
    uint32_t id;
    unsigned char *items;
    size_t cap;
};

/* A done batch's result image, as output hands it over. Workers may still
 * write this memory: read each value once (pool_peer_load32), and take a
 * status other than SK_OK or SK_EPROCESS as SK_ECORRUPT. */
struct pool_batch_out {
    const int32_t *status;        /* count statuses */
    const unsigned char *results; /* plain results: count * result_size bytes */
    uint32_t failed;              /* the workers' count of failed items: 0 is their word
                                   * that every status is SK_OK (believing it costs no
                                   * more than believing their results) */
    uint32_t retried;             /* the workers' count of items that succeeded after a
                                   * failed attempt, at most count */
};

/* What poll says about a posted batch. */
enum pool_batch_state {
    POOL_BATCH_PENDING, /* the workers have it */
    POOL_BATCH_DONE,    /* its results can be read */
    POOL_BATCH_CORRUPT  /* done, but what came back does not match what was
                         * posted: every item of it fails with SK_ECORRUPT */
};

struct pool_transport_ops {
    /* ---- calls */

    /* A call starts in slot (below POOL_CALLS): job and arg_size bytes of
     * arg go to the workers (the transport copies both; the caller's
     * buffers are free on return). The slot may still post until
     * end_posting. SK_OK, or an error code and the call is not started. */
    int (*open_call)(struct sk_pool_transport *t, int slot, const struct pool_job *job,
                     const void *arg, size_t arg_size);
    /* The call in slot will post nothing more (after a close, the workers
     * leave once no call may post and every posted batch is done). */
    void (*end_posting)(struct sk_pool_transport *t, int slot);

    /* ---- batches */

    /* A free batch into *in, the warmest first. SK_OK, or SK_EFULL when
     * every batch is in use. The batch is the engine's until post or
     * release. */
    int (*take)(struct sk_pool_transport *t, struct pool_batch_in *in);
    /* Hands batch id, filled with count items of the call in slot starting
     * at item first, to the workers. The transport keeps its own copy of
     * slot, first and count. Workers may not see it before flush. SK_OK, or
     * an error code: the batch is then still the engine's, to release. */
    int (*post)(struct sk_pool_transport *t, uint32_t id, int slot, uint64_t first, uint32_t count);
    /* Optional (NULL: the engine copies). Before post, for plain records
     * only: batch id's items are the caller's, at items (count records in
     * a row), which stay valid and unchanged until the call is done; the
     * engine leaves the batch's image unwritten and the transport reads
     * them from there (rank 0 of skproc-mpi sends them as they lie). */
    void (*refer)(struct sk_pool_transport *t, uint32_t id, const void *items);
    /* Optional (NULL: results are read where output says). Before post,
     * for plain results that the call puts in the caller's array: batch
     * id's results belong at results (count records in a row), which stay
     * valid until the call is done. The transport may receive them straight
     * there; output then hands out.results == results and the engine
     * copies nothing (rank 0 of skproc-mpi receives a large result this
     * way). The transport writes there only results it has checked to be
     * the batch's whole answer (it zeroes what it wrote of one that failed
     * on the way). */
    void (*land)(struct sk_pool_transport *t, uint32_t id, void *results);
    /* After a run of posts: wakes workers that sleep. */
    void (*flush)(struct sk_pool_transport *t);
    /* Never blocks: enum pool_batch_state of a posted batch. Once DONE or
     * CORRUPT it stays so until release. */
    int (*poll)(struct sk_pool_transport *t, uint32_t id);
    /* A counter that moves whenever a batch is done: read it before
     * polling, then wait on it, so that no completion is missed. */
    uint32_t (*epoch)(struct sk_pool_transport *t);
    /* Sleeps until epoch has moved from seen, or for one slice (100 ms), or
     * until deadline (sk_now_ns, INT64_MAX: none), whichever is first, and
     * looks after the workers (a worker that ended is started again).
     * SK_ETIMEDOUT when deadline had passed on entry, else SK_OK: poll
     * again. */
    int (*wait)(struct sk_pool_transport *t, uint32_t seen, int64_t deadline);
    /* The result image of a DONE batch (not CORRUPT). Valid until release. */
    void (*output)(struct sk_pool_transport *t, uint32_t id, struct pool_batch_out *out);
    /* The tpl image of item k's result in a DONE batch, checked to lie
     * inside what the batch may hold: *img and *len, valid until release;
     * when the image had to be copied, *owned is the copy for the engine to
     * free (else NULL). SK_OK, SK_ECORRUPT, SK_ENOMEM or SK_ESYS. */
    int (*result_image)(struct sk_pool_transport *t, uint32_t id, uint32_t k, const void **img,
                        size_t *len, void **owned);
    /* Copies the error records of a DONE batch's failed items into out (at
     * most room): each with .item set to its index in the call, and its
     * strings NUL-terminated; a record that makes no sense reads as an
     * SK_ECORRUPT error. Returns how many. Only records that belong to the
     * batch's own items are copied. The batch's first failure comes first
     * (so room 1 asks for it alone): a transport keeps it whatever else it
     * drops, because the call's first failure is some batch's first. */
    size_t (*errors)(struct sk_pool_transport *t, uint32_t id, sk_error *out, size_t room);
    /* Gives a batch back: one taken and not posted, or one posted that poll
     * said is done or corrupt, or any batch once terminate has run. */
    void (*release)(struct sk_pool_transport *t, uint32_t id);
    /* No call is alive: memory that only busy calls need may be given back. */
    void (*idle)(struct sk_pool_transport *t);
    /* Takes back a posted batch that no worker has claimed (sk_pool_cancel):
     * true, and it is the engine's again, to release, and none of its items
     * runs; false when a worker has it (or had it), and it goes on. */
    bool (*revoke)(struct sk_pool_transport *t, uint32_t id);

    /* ---- event loops */

    /* An fd that polls readable after a batch is done; from the first call
     * on, every worker writes it when it marks a batch done. -1 when the
     * transport has none. Owned by the transport. */
    int (*notify_fd)(struct sk_pool_transport *t);
    /* Reads the notify fd empty (it polls readable again at the next batch
     * done), and makes sure the workers still write it. */
    void (*notify_clear)(struct sk_pool_transport *t);

    /* ---- class items */

    /* Asks the worker running item k of posted batch id (a class item) to
     * stop it (stop: its loop ends, its result is kept) or to kill it (it
     * fails). SK_OK when a worker says it runs that item (it acts within
     * about 50 ms, unless the item ended meanwhile), SK_ESTATE when none
     * does. */
    int (*control)(struct sk_pool_transport *t, uint32_t id, uint32_t k, bool kill);

    /* ---- shared arrays (sk_pool_alloc); a transport without them leaves these NULL */

    /* bytes of memory that the parent and every worker (present and future)
     * map at the same address, zeroed, page-aligned; it holds values only.
     * NULL with sk_refuse's reason (SK_EINVAL: 0 or too many bytes, SK_ENOMEM:
     * no room left, SK_ENOMEM: the bookkeeping). */
    void *(*shared_alloc)(struct sk_pool_transport *t, size_t bytes);
    /* Whether [p, p + bytes) lies inside one allocation: then *at is p's
     * offset in the shared region (what a job's items_at/results_at carry)
     * and *start the allocation's start. */
    bool (*shared_find)(struct sk_pool_transport *t, const void *p, size_t bytes, uint64_t *at,
                        const void **start);
    /* Gives back the allocation that starts at mem: SK_OK, or SK_EINVAL
     * (refused) when none does. The engine checks first that no live call
     * uses it. */
    int (*shared_free)(struct sk_pool_transport *t, void *mem);

    /* ---- workers */

    /* No more calls: the workers leave once no call may post and every
     * posted batch is done. Never blocks. */
    void (*close)(struct sk_pool_transport *t);
    /* Kills every worker now; batches in flight are never done (the engine
     * fails their items with SK_EKILLED and releases them). */
    void (*terminate)(struct sk_pool_transport *t);
    /* After close: waits until every worker has left. SK_OK, or
     * SK_ETIMEDOUT when deadline (sk_now_ns, INT64_MAX: none) passes. */
    int (*join)(struct sk_pool_transport *t, int64_t deadline);
    /* The items done, failed and in flight, as the workers count them (for
     * display: only made consistent, none below zero, failed within done). */
    void (*counters)(struct sk_pool_transport *t, sk_pool_counters *out);
    /* Kills what still runs, reaps every worker, frees t. */
    void (*destroy)(struct sk_pool_transport *t);
};

/* The base every transport embeds first. */
struct sk_pool_transport {
    const struct pool_transport_ops *ops;
    int workers; /* how many workers run items (for batch sizes and windows) */
};

#endif
